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
import { costRatio, measure, REPETITIONS, type Ratio } from './measure.ts';

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
  const [cGetNs, cCheckNs] = execFileSync(binary, [
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
    const oursGet = await measure(REPETITIONS, async () => {
      for (let i = 0; i < calls; i++) await backend.ioctl(vcpu, get, arg);
    });
    const check = number('KVM_CHECK_EXTENSION');
    const oursCheck = await measure(REPETITIONS, async () => {
      for (let i = 0; i < calls; i++) await backend.ioctl(kvm, check, { kind: 'int', value: cap });
    });
    // The floor under any awaited in-process backend: the same call through koffi alone, awaited.
    const ioctl = koffi
      .load('libc.so.6')
      .func('int ioctl(int fd, unsigned long request, unsigned long arg)') as (
      fd: number,
      request: bigint,
      arg: bigint,
    ) => number;
    const floorCheck = await measure(REPETITIONS, async () => {
      for (let i = 0; i < calls; i++) await Promise.resolve(ioctl(kvm, check, cap));
    });
    const checkFloorNs = (floorCheck.ms * 1e6) / calls;
    return [
      costRatio(
        `linux backend KVM_GET_ONE_REG (${reg.name}) vs C loop`,
        (oursGet.ms * 1e6) / calls,
        cGetNs!,
        'ns/call',
        1.5,
      ),
      {
        ...costRatio(
          'linux backend KVM_CHECK_EXTENSION vs C loop',
          (oursCheck.ms * 1e6) / calls,
          cCheckNs!,
          'ns/call',
          2,
        ),
        note: `floor: the bare koffi call, awaited, ${checkFloorNs.toFixed(0)} ns = ${(checkFloorNs / cCheckNs!).toFixed(2)}x`,
      },
    ];
  } finally {
    await backend.dispose();
  }
}
