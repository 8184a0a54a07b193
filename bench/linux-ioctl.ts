// The linux backend (koffi) against a C loop of the same ioctls on this host's /dev/kvm. The C is
// compiled with gcc at bench time; request numbers and the register id come from the spec.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import koffi from 'koffi';
import { linuxFactory } from '../adapters/linux.ts';
import { encodeStruct } from '../harness/abi/codec.ts';
import type { SpecTree } from '../harness/spec/tree.ts';
import { costRatio, median, REPETITIONS, type Ratio } from './measure.ts';

const hex = (v: bigint) => `0x${v.toString(16)}`;

export async function linuxIoctlBench(spec: SpecTree, calls: number): Promise<Ratio[]> {
  const arch = linuxFactory.arches()[0];
  if (!arch) throw new Error('no KVM on this host');
  const number = (name: string) => spec.ioctlNumber(name, arch);
  const reg = spec.registers(arch)[0];
  if (!reg) throw new Error(`the spec has no ${arch} register`);
  const regId = BigInt(reg.id);
  const cap = spec.constant('KVM_CAP_ONE_REG', arch);

  const dir = mkdtempSync(path.join(tmpdir(), 'kvmspec-bench-'));
  const binary = path.join(dir, 'ioctl-loop');
  execFileSync('gcc', ['-O2', '-o', binary, path.join(import.meta.dirname, 'ioctl-loop.c')]);
  /** One run of the C loop: ns per KVM_GET_ONE_REG and per KVM_CHECK_EXTENSION. */
  const cLoop = (): [number, number] => {
    const [get, check] = execFileSync(binary, [
      ...['KVM_CREATE_VM', 'KVM_CREATE_VCPU', 'KVM_GET_ONE_REG', 'KVM_CHECK_EXTENSION'].map((n) =>
        hex(number(n)),
      ),
      hex(regId),
      hex(cap),
      String(calls),
    ])
      .toString()
      .trim()
      .split(' ')
      .map(Number);
    return [get!, check!];
  };

  const backend = await linuxFactory.create({ arch, revision: 'upstream' });
  try {
    const opened = await backend.open('/dev/kvm');
    if (!('handle' in opened)) throw new Error(`open /dev/kvm: ${opened.errno}`);
    const kvm = opened.handle;
    const vm = Number((await backend.ioctl(kvm, number('KVM_CREATE_VM'), { kind: 'int', value: 0n })).ret);
    const vcpu = Number((await backend.ioctl(vm, number('KVM_CREATE_VCPU'), { kind: 'int', value: 0n })).ret);
    const value = await backend.alloc({ size: 8 });
    const layout = spec.layout('kvm_one_reg', { arch });
    const addr = spec.field('kvm_one_reg', 'addr', { arch }).offset;
    const image = encodeStruct(layout, { id: regId, addr: 0n }, spec.archInfo(arch).endian);
    const arg = {
      kind: 'struct' as const,
      image,
      pointers: [{ offset: addr, target: { kind: 'buffer' as const, buffer: value, offset: 0, length: 8 } }],
    };
    const get = number('KVM_GET_ONE_REG');
    const first = await backend.ioctl(vcpu, get, arg);
    if (first.ret !== 0n) throw new Error(`KVM_GET_ONE_REG ${reg.name}: ${first.errno}`);
    const ioctl = koffi
      .load('libc.so.6')
      .func('int ioctl(int fd, unsigned long request, unsigned long arg)') as (
      fd: number,
      request: bigint,
      arg: bigint,
    ) => number;
    const check = number('KVM_CHECK_EXTENSION');
    const nsPerCall = async (body: () => Promise<unknown>) => {
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) await body();
      return ((performance.now() - t0) * 1e6) / calls;
    };
    // The C loop and ours alternate, repetition by repetition, so a slow spell of the machine slows both
    // halves of a pair (see measurePairs); each figure is a median, each ratio the median of the pairs'.
    const samples = {
      cGet: [] as number[],
      cCheck: [] as number[],
      get: [] as number[],
      check: [] as number[],
      floor: [] as number[],
    };
    for (let r = 0; r < REPETITIONS; r++) {
      const [cGet, cCheck] = cLoop();
      samples.cGet.push(cGet);
      samples.cCheck.push(cCheck);
      samples.get.push(await nsPerCall(() => backend.ioctl(vcpu, get, arg)));
      samples.check.push(await nsPerCall(() => backend.ioctl(kvm, check, { kind: 'int', value: cap })));
      // The floor under any awaited in-process backend: the same call through koffi alone, awaited.
      samples.floor.push(await nsPerCall(() => Promise.resolve(ioctl(kvm, check, cap))));
    }
    const pairRatio = (ours: number[], c: number[]) => median(ours.map((x, i) => x / c[i]!));
    const checkFloorNs = median(samples.floor);
    return [
      costRatio(
        `linux backend KVM_GET_ONE_REG (${reg.name}) vs C loop`,
        median(samples.get),
        median(samples.cGet),
        'ns/call',
        1.5,
        pairRatio(samples.get, samples.cGet),
      ),
      {
        ...costRatio(
          'linux backend KVM_CHECK_EXTENSION vs C loop',
          median(samples.check),
          median(samples.cCheck),
          'ns/call',
          2,
          pairRatio(samples.check, samples.cCheck),
        ),
        note: `floor: the bare koffi call, awaited, ${checkFloorNs.toFixed(0)} ns = ${pairRatio(samples.floor, samples.cCheck).toFixed(2)}x`,
      },
    ];
  } finally {
    await backend.dispose();
  }
}
