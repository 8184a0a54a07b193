// Random struct bytes and pointers into every reference ioctl the spec numbers, on every arch: the
// reference must answer each with ret/errno or say what it does not model (a skip, never another throw),
// and leave every memslot's bytes unchanged whenever it answers an errno.
import fc from 'fast-check';
import { BackendSkip, type BufferId, type IoctlArg, type PointerTarget } from '../../adapters/backend.ts';
import { createReferenceBackend, type ReferenceBackend } from '../../adapters/reference.ts';
import { fieldSpan, pointerFields, writeUint, type Endian } from '../../harness/abi/codec.ts';
import { KvmSession } from '../../harness/session.ts';
import { leafFields, type SpecTree } from '../../harness/spec/tree.ts';
import { ARCHES, type Arch } from '../../harness/spec/types.ts';
import type { VmFile } from '../../reference/kernel.ts';

type FdKind = 'system' | 'vm' | 'vcpu';

export interface IoctlTarget {
  arch: Arch;
  name: string;
  fd: FdKind;
  request: bigint;
  /** Size of the struct the argument points to; absent for integer arguments. */
  structSize?: number;
  /** Offsets of the pointer fields in that struct. */
  pointers: number[];
  /** The struct's scalar integer fields, which the fuzzer sometimes gives small, meaningful values. */
  scalars: { offset: number; size: 1 | 2 | 4 | 8 }[];
  endian: Endian;
}

export interface FuzzOutcome {
  target: IoctlTarget;
  runs: number;
  /** Calls answered with an errno, each checked for untouched guest memory. */
  errnoAnswers: number;
  /** Calls the reference answered with what it does not model (the suite would skip such a case). */
  notModelled: number;
  failure?: string;
}

/** The smallest memslot every arch accepts: s390 needs a 1 MiB segment, 64 KiB covers any page size. */
const guestBytes = (arch: Arch) => (arch === 's390x' ? 1 << 20 : 1 << 16);
const SCRATCH_BYTES = 4096;

/** Every (arch, ioctl, fd) the spec defines a number for. */
export function ioctlTargets(spec: SpecTree, arches: readonly Arch[] = ARCHES): IoctlTarget[] {
  const out: IoctlTarget[] = [];
  for (const { doc } of spec.ioctls.values())
    for (const arch of arches.filter((a) => doc.arches.includes(a)))
      for (const fd of doc.fds as FdKind[]) {
        const struct = doc.number.struct;
        const layout = struct ? spec.layout(struct, { arch }) : undefined;
        out.push({
          arch,
          name: doc.name,
          fd,
          request: spec.ioctlNumber(doc.name, arch),
          ...(layout ? { structSize: layout.size } : {}),
          pointers: layout ? pointerFields(layout).map((f) => f.offset) : [],
          scalars: layout
            ? [...leafFields(layout.fields)]
                .filter((f) => !f.pointer && !f.count && !f.flexible)
                .map(fieldSpan)
                .filter((f): f is { offset: number; size: 1 | 2 | 4 | 8 } => [1, 2, 4, 8].includes(f.size))
            : [],
          endian: spec.archInfo(arch).endian,
        });
      }
  return out;
}

interface Machine {
  backend: ReferenceBackend;
  fds: Record<FdKind, number>;
  scratch: BufferId;
}

/**
 * The bytes of every memslot of the VM, read in place from the reference's user memory (copying them
 * on every call would dominate the run time). Keyed by slot; a slot whose memory is unmapped is absent.
 */
function guestMemory(m: Machine): Map<number, Uint8Array> {
  const vm = m.backend.kernel.file(m.fds.vm) as VmFile;
  const out = new Map<number, Uint8Array>();
  for (const s of vm.memslots.values()) {
    const bytes = m.backend.kernel.mem.view(s.hva, Number(s.size));
    if (bytes) out.set(s.slot, bytes);
  }
  return out;
}

/** The slot whose bytes differ from the snapshot, if any. */
function changedSlot(now: Map<number, Uint8Array>, snapshot: Map<number, Uint8Array>): number | undefined {
  for (const [slot, bytes] of now) {
    const before = snapshot.get(slot);
    if (!before || Buffer.compare(bytes, before) !== 0) return slot;
  }
  return undefined;
}

const copyOf = (memory: Map<number, Uint8Array>) => new Map([...memory].map(([k, v]) => [k, v.slice()]));

/**
 * A reference with a VM, one memslot at guest address 0 and a vCPU (initialised on arm64), set up as a VMM
 * does: on x86 the in-kernel irqchip comes first, so the irqchip and local APIC ioctls get past their checks.
 */
async function machine(spec: SpecTree, arch: Arch): Promise<Machine> {
  const backend = createReferenceBackend(spec, arch);
  const kvm = new KvmSession(backend, spec, arch, 'upstream');
  const system = await kvm.openSystem();
  const vm = await kvm.setupHandle(system, 'KVM_CREATE_VM', 0n);
  const size = guestBytes(arch);
  const ram = await kvm.alloc(size, { alignment: size });
  await kvm.write(
    ram,
    Uint8Array.from({ length: size }, (_, i) => (i * 131 + 7) & 0xff),
  );
  await kvm.setup(vm, 'KVM_SET_USER_MEMORY_REGION', {
    struct: {
      slot: 0n,
      flags: 0n,
      guest_phys_addr: 0n,
      memory_size: BigInt(size),
      userspace_addr: { buf: ram },
    },
  });
  if (arch === 'x86_64') await kvm.setup(vm, 'KVM_CREATE_IRQCHIP');
  const vcpu = await kvm.setupHandle(vm, 'KVM_CREATE_VCPU', 0n);
  if (arch === 'arm64') {
    const preferred = await kvm.setup(vm, 'KVM_ARM_PREFERRED_TARGET', { struct: { target: 0n } });
    await kvm.setup(vcpu, 'KVM_ARM_VCPU_INIT', {
      struct: { target: preferred.fields.target as bigint, features: [1n << 2n, 0n, 0n, 0n, 0n, 0n, 0n] },
    });
  }
  const scratch = await backend.alloc({ size: SCRATCH_BYTES });
  return { backend, fds: { system, vm, vcpu }, scratch };
}

function pointerTarget(scratch: BufferId): fc.Arbitrary<PointerTarget> {
  return fc.oneof(
    fc.constant<PointerTarget>({ kind: 'null' }),
    fc.constant<PointerTarget>({ kind: 'invalid' }),
    fc
      .integer({ min: 0, max: SCRATCH_BYTES })
      .chain((offset) =>
        fc
          .integer({ min: 0, max: SCRATCH_BYTES - offset })
          .map((length): PointerTarget => ({ kind: 'buffer', buffer: scratch, offset, length })),
      ),
  );
}

/** Random arguments of the ioctl's shape: a struct image with random pointers, a bad struct pointer, or an int. */
function argument(target: IoctlTarget, scratch: BufferId): fc.Arbitrary<IoctlArg> {
  const int = fc
    .oneof(fc.bigInt({ min: 0n, max: 512n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }))
    .map((value): IoctlArg => ({ kind: 'int', value }));
  if (target.structSize === undefined) return int;
  const size = target.structSize;
  // Random bytes alone almost never get past the first argument check: each scalar field is often
  // set to a value a check looks for (0, a flag bit, a size) so the fuzzer reaches the deeper paths.
  const small = fc.oneof(
    fc.constantFrom(0n, 1n, 2n, 4n, 8n, 16n, 0x1000n, 0x10000n),
    fc.bigInt({ min: 0n, max: 64n }),
  );
  const image = fc
    .tuple(
      fc.uint8Array({ minLength: size, maxLength: size }),
      fc.tuple(...target.scalars.map(() => fc.option(small, { freq: 2 }))),
    )
    .map(([bytes, picks]) => {
      target.scalars.forEach((f, i) => {
        const v = picks[i];
        if (v !== null && v !== undefined)
          writeUint(bytes, f.offset, f.size, v & ((1n << BigInt(8 * f.size)) - 1n), target.endian);
      });
      return bytes;
    });
  const struct = fc
    .tuple(image, fc.tuple(...target.pointers.map(() => pointerTarget(scratch))))
    .map(([bytes, targets]): IoctlArg => ({
      kind: 'struct',
      image: bytes,
      pointers: target.pointers.map((offset, i) => ({ offset, target: targets[i]! })),
    }));
  const pointer = pointerTarget(scratch).map((t): IoctlArg => ({ kind: 'pointer', target: t }));
  return fc.oneof(
    { arbitrary: struct, weight: 8 },
    { arbitrary: pointer, weight: 1 },
    { arbitrary: int, weight: 1 },
  );
}

/** Fuzzes one target on a fresh machine; the first counterexample (shrunk) is the failure. */
export async function fuzzIoctl(
  spec: SpecTree,
  target: IoctlTarget,
  runs: number,
  seed: number,
): Promise<FuzzOutcome> {
  const m = await machine(spec, target.arch);
  let snapshot = copyOf(guestMemory(m));
  let errnoAnswers = 0;
  let notModelled = 0;
  const details = await fc.check(
    fc.asyncProperty(argument(target, m.scratch), async (arg) => {
      let r;
      try {
        r = await m.backend.ioctl(m.fds[target.fd], target.request, arg);
      } catch (err) {
        if (!(err instanceof BackendSkip)) throw err;
        notModelled++;
        return;
      }
      if (typeof r.ret !== 'bigint' || (r.ret === -1n) !== (r.errno !== null))
        throw new Error(`malformed answer: ret ${String(r.ret)}, errno ${String(r.errno)}`);
      const now = guestMemory(m);
      const changed = changedSlot(now, snapshot);
      if (changed !== undefined) snapshot = copyOf(now);
      if (r.errno === null) return;
      errnoAnswers++;
      if (changed !== undefined)
        throw new Error(`answered ${r.errno} but changed the bytes of memslot ${changed}`);
    }),
    // The machine's state carries over between runs, so a shrunk counterexample would not replay: no shrinking.
    { numRuns: runs, seed, endOnFailure: true },
  );
  await m.backend.dispose();
  const outcome: FuzzOutcome = { target, runs: details.numRuns, errnoAnswers, notModelled };
  if (details.failed) {
    const cause =
      details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    outcome.failure = `${cause} (seed ${seed}, path ${details.counterexamplePath ?? ''}, counterexample ${fc.stringify(details.counterexample)})`;
  }
  return outcome;
}
