// The reference's KVM_S390_MEM_OP: a 64 KiB logical read with DAT on (segment and page tables) and
// storage-key protection, in bytes per second, against Buffer.copy of 64 KiB.
import { createReferenceBackend } from '../adapters/reference.ts';
import { encodeStruct } from '../harness/abi/codec.ts';
import { KvmSession } from '../harness/session.ts';
import type { SpecTree } from '../harness/spec/tree.ts';
import { measure, measurePairs, REPETITIONS, throughputShare, type Ratio } from './measure.ts';

const MiB = 1 << 20;
const WARM_UP_CALLS = 10_000;
const SIZE = 64 * 1024;
/** Guest layout: code page, segment table, page table, then the 64 KiB the memop reads. */
const CODE = 0x1000;
const SEGMENT_TABLE = 0x10000;
const PAGE_TABLE = 0x20000;
const DATA = 0x80000;
/** Storage key of the data pages: access-control 3, no fetch protection; the memop uses key 3. */
const ACC = 3;

function entries(count: number, value: (i: number) => bigint): Uint8Array {
  const bytes = new Uint8Array(count * 8);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < count; i++) view.setBigUint64(i * 8, value(i));
  return bytes;
}

export async function memopBench(spec: SpecTree, calls: number): Promise<Ratio> {
  const arch = 's390x';
  const c = (name: string) => spec.constant(name, arch);
  const backend = createReferenceBackend(spec, arch);
  const kvm = new KvmSession(backend, spec, arch, 'upstream');
  const system = await kvm.openSystem();
  const vm = await kvm.setupHandle(system, 'KVM_CREATE_VM', 0n);
  const vcpu = await kvm.setupHandle(vm, 'KVM_CREATE_VCPU', 0n);
  const ram = await kvm.alloc(MiB, { alignment: MiB });
  await kvm.setup(vm, 'KVM_SET_USER_MEMORY_REGION', {
    struct: {
      slot: 0n,
      flags: 0n,
      guest_phys_addr: 0n,
      memory_size: BigInt(MiB),
      userspace_addr: { buf: ram, length: 0 },
    },
  });
  // Segment 0 maps its 256 pages one to one; every other segment is invalid (0x20).
  await kvm.write(
    ram,
    entries(2048, (i) => (i === 0 ? BigInt(PAGE_TABLE) : 0x20n)),
    SEGMENT_TABLE,
  );
  await kvm.write(
    ram,
    entries(256, (i) => BigInt(i << 12)),
    PAGE_TABLE,
  );
  await kvm.write(ram, Uint8Array.of(0x83, 0x00, 0x05, 0x01), CODE); // DIAGNOSE 0x501: exits to user space
  const sregs = await kvm.setup(vcpu, 'KVM_GET_SREGS', { struct: {} });
  const crs = [...(sregs.fields.crs as bigint[])];
  crs[1] = BigInt(SEGMENT_TABLE) | 3n; // primary ASCE: segment table, full length
  await kvm.setup(vcpu, 'KVM_SET_SREGS', { struct: { crs, acrs: sregs.fields.acrs as bigint[] } });
  const mask = c('S390_PSW_MASK_DAT') | c('S390_PSW_MASK_EA') | c('S390_PSW_MASK_BA');
  await kvm.setup(vcpu, 'KVM_S390_SET_INITIAL_PSW', { struct: { mask, addr: BigInt(CODE) } });
  await kvm.setup(vcpu, 'KVM_RUN', 0n);
  const keys = await kvm.alloc(SIZE / 4096, { init: new Uint8Array(SIZE / 4096).fill(ACC << 4) });
  await kvm.setup(vm, 'KVM_S390_SET_SKEYS', {
    struct: {
      start_gfn: BigInt(DATA >> 12),
      count: BigInt(SIZE / 4096),
      skeydata_addr: { buf: keys },
      flags: 0n,
    },
  });

  const buf = await backend.alloc({ size: SIZE });
  const layout = spec.layout('kvm_s390_mem_op', { arch });
  const image = encodeStruct(
    layout,
    {
      gaddr: BigInt(DATA),
      size: BigInt(SIZE),
      op: c('KVM_S390_MEMOP_LOGICAL_READ'),
      flags: c('KVM_S390_MEMOP_F_SKEY_PROTECTION'),
      key: BigInt(ACC),
    },
    spec.archInfo(arch).endian,
  );
  const offset = spec.field('kvm_s390_mem_op', 'buf', { arch }).offset;
  const arg = {
    kind: 'struct' as const,
    image,
    pointers: [{ offset, target: { kind: 'buffer' as const, buffer: buf, offset: 0, length: 0 } }],
  };
  const request = spec.ioctlNumber('KVM_S390_MEM_OP', arch);
  const first = await backend.ioctl(vcpu, request, arg);
  if (first.ret !== 0n) throw new Error(`the memop answered ${first.ret} ${first.errno ?? ''}`);
  // DAT is really on: segment 1 is invalid, so a read there ends with a segment-translation exception.
  const probe = image.slice();
  new DataView(probe.buffer).setBigUint64(0, BigInt(MiB));
  const unmapped = await backend.ioctl(vcpu, request, { ...arg, image: probe });
  if (unmapped.ret !== 0x10n) throw new Error(`DAT is off: a read of segment 1 answered ${unmapped.ret}`);
  // The same memop for 8 bytes: what every call costs before any page is translated or copied.
  const small = image.slice();
  new DataView(small.buffer).setUint32(spec.field('kvm_s390_mem_op', 'size', { arch }).offset, 8);
  const smallArg = { ...arg, image: small };
  // V8 optimises the page loop only after thousands of calls of both sizes; measured earlier, the first
  // repetitions measured the JIT (a 64 KiB call at 29 us, then 17, then 7).
  for (let i = 0; i < WARM_UP_CALLS; i++) {
    await backend.ioctl(vcpu, request, arg);
    await backend.ioctl(vcpu, request, smallArg);
  }
  const src = Buffer.alloc(SIZE, 0x5a);
  const dst = Buffer.alloc(SIZE);
  const COPIES_PER_CALL = 10;
  const paired = await measurePairs(
    REPETITIONS,
    async () => {
      for (let i = 0; i < calls; i++) await backend.ioctl(vcpu, request, arg);
    },
    () => {
      for (let i = 0; i < calls * COPIES_PER_CALL; i++) src.copy(dst);
    },
  );
  const fixed = await measure(REPETITIONS, async () => {
    for (let i = 0; i < calls; i++) await backend.ioctl(vcpu, request, smallArg);
  });
  await backend.dispose();
  const bytesPerSecond = (ms: number, n: number) => (SIZE * n) / (ms / 1000);
  const us = (ms: number, n: number) => ((ms * 1000) / n).toFixed(1);
  return {
    ...throughputShare(
      '64 KiB memop (DAT, key-protected) vs Buffer.copy of 64 KiB',
      bytesPerSecond(paired.ours.ms, calls) / 1e6,
      bytesPerSecond(paired.baseline.ms, calls * COPIES_PER_CALL) / 1e6,
      'MB/s',
      0.25,
      1 / (COPIES_PER_CALL * paired.ratio),
    ),
    note: `a call takes ${us(paired.ours.ms, calls)} us, the same memop of 8 bytes ${us(fixed.ms, calls)} us, the copy ${us(paired.baseline.ms, calls * COPIES_PER_CALL)} us`,
  };
}
