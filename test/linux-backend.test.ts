import { existsSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { Backend, IoctlArg, PointerTarget } from '../adapters/backend.ts';
import { errnoName, hostArch, kernelVersion, linuxFactory } from '../adapters/linux.ts';
import { processFactory } from '../adapters/process.ts';
import { runSuite } from '../harness/run/runner.ts';
import { loadSpec } from '../harness/spec/loader.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

// Request numbers and register ids come from the spec, as every case gets them.
const spec = loadSpec();
const nr = (name: string) => spec.ioctlNumber(name, 'x86_64');
const KVM_GET_API_VERSION = nr('KVM_GET_API_VERSION');
const KVM_CREATE_VM = nr('KVM_CREATE_VM');
const KVM_CHECK_EXTENSION = nr('KVM_CHECK_EXTENSION');
const KVM_GET_VCPU_MMAP_SIZE = nr('KVM_GET_VCPU_MMAP_SIZE');
const KVM_CREATE_VCPU = nr('KVM_CREATE_VCPU');
const KVM_GET_ONE_REG = nr('KVM_GET_ONE_REG');
const KVM_SET_ONE_REG = nr('KVM_SET_ONE_REG');
const KVM_CAP_ONE_REG = spec.constant('KVM_CAP_ONE_REG', 'x86_64');
const msrReg = (index: number) =>
  spec.constant('KVM_REG_X86') |
  spec.constant('KVM_REG_SIZE_U64') |
  (spec.constant('KVM_X86_REG_TYPE_MSR', 'x86_64') << 32n) |
  BigInt(index);
const IA32_SYSENTER_CS = 0x174;

const int = (value: bigint): IoctlArg => ({ kind: 'int', value });

/** A kvm_one_reg image (id, then the 8-byte addr field) whose addr points at `target`. */
function oneReg(id: bigint, target: PointerTarget): IoctlArg {
  const image = new Uint8Array(16);
  new DataView(image.buffer).setBigUint64(0, id, true);
  return { kind: 'struct', image, pointers: [{ offset: 8, target }] };
}

function isOpen(fd: number): boolean {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`).startsWith('anon_inode:kvm');
  } catch {
    return false;
  }
}

describe('linux backend (this machine’s /dev/kvm)', function () {
  let backend: Backend;
  let system: number;
  let vcpu: number;

  before(async function () {
    if (!existsSync('/dev/kvm') || hostArch() !== 'x86_64') {
      console.warn(`    skipped: needs /dev/kvm on an x86_64 host (arch ${hostArch() ?? 'unknown'})`);
      this.skip();
    }
    backend = await linuxFactory.create({ arch: 'x86_64', revision: 'upstream' });
    const opened = await backend.open('/dev/kvm');
    if ('errno' in opened) {
      console.warn(`    skipped: cannot open /dev/kvm (${opened.errno})`);
      this.skip();
    }
    system = opened.handle;
    const vm = await backend.ioctl(system, KVM_CREATE_VM, int(0n));
    expect(vm.errno).to.equal(null);
    const created = await backend.ioctl(Number(vm.ret), KVM_CREATE_VCPU, int(0n));
    expect(created.errno).to.equal(null);
    vcpu = Number(created.ret);
  });

  after(async () => {
    await backend?.dispose();
  });

  it('describes the host in its profile', () => {
    expect(backend.profile).to.deep.equal({
      arch: 'x86_64',
      implementation: 'linux',
      version: kernelVersion(),
      revisions: ['upstream'],
    });
    expect(backend.profile.version).to.match(/^\d+\.\d+$/);
    expect(kernelVersion('6.18.44-fc-v595')).to.equal('6.18');
  });

  it('names errnos from the host table, preferring the names the kernel documents', () => {
    expect([errnoName(22), errnoName(14), errnoName(95), errnoName(11)]).to.deep.equal([
      'EINVAL',
      'EFAULT',
      'EOPNOTSUPP',
      'EAGAIN',
    ]);
  });

  it('uses the request numbers and register id of the brief', () => {
    expect([KVM_GET_ONE_REG, msrReg(IA32_SYSENTER_CS)]).to.deep.equal([0x4010aeabn, 0x2030000200000174n]);
  });

  it('KVM_GET_API_VERSION is 12 and KVM_CAP_ONE_REG is present', async () => {
    expect(await backend.ioctl(system, KVM_GET_API_VERSION, int(0n))).to.deep.equal({
      ret: 12n,
      errno: null,
      spans: [],
    });
    expect((await backend.ioctl(system, KVM_CHECK_EXTENSION, int(KVM_CAP_ONE_REG))).ret).to.equal(1n);
  });

  it('KVM_GET_ONE_REG of an MSR fills the target buffer and restores the image’s pointer field', async () => {
    const buffer = await backend.alloc({ size: 8 });
    const arg = oneReg(msrReg(IA32_SYSENTER_CS), { kind: 'buffer', buffer, offset: 0, length: 8 });
    const r = await backend.ioctl(vcpu, KVM_GET_ONE_REG, arg);
    expect(r).to.include({ ret: 0n, errno: null });
    expect(r.image).to.deep.equal((arg as { image: Uint8Array }).image);
    expect(r.spans).to.have.length(1);
    expect(r.spans[0]).to.deep.equal(await backend.read(buffer, 0, 8));
  });

  it('KVM_SET_ONE_REG reads its value from a read-only buffer', async () => {
    const value = new Uint8Array(8);
    const buffer = await backend.alloc({ size: 8, init: value, readonly: true });
    const target: PointerTarget = { kind: 'buffer', buffer, offset: 0, length: 8 };
    expect(await backend.ioctl(vcpu, KVM_SET_ONE_REG, oneReg(msrReg(IA32_SYSENTER_CS), target))).to.include({
      ret: 0n,
    });
  });

  it('gives EINVAL for an unknown MSR and EFAULT for NULL, invalid and read-only targets', async () => {
    const buffer = await backend.alloc({ size: 8 });
    const unknown = oneReg(msrReg(0x9999), { kind: 'buffer', buffer, offset: 0, length: 8 });
    expect(await backend.ioctl(vcpu, KVM_GET_ONE_REG, unknown)).to.include({ ret: -1n, errno: 'EINVAL' });
    const id = msrReg(IA32_SYSENTER_CS);
    for (const target of [{ kind: 'null' }, { kind: 'invalid' }] as PointerTarget[]) {
      expect(await backend.ioctl(vcpu, KVM_GET_ONE_REG, oneReg(id, target)), target.kind).to.include({
        ret: -1n,
        errno: 'EFAULT',
      });
    }
    const readonly = await backend.alloc({ size: 8, readonly: true });
    const r = await backend.ioctl(
      vcpu,
      KVM_GET_ONE_REG,
      oneReg(id, { kind: 'buffer', buffer: readonly, offset: 0, length: 8 }),
    );
    expect(r).to.include({ ret: -1n, errno: 'EFAULT' });
    expect(r.spans).to.deep.equal([new Uint8Array(8)]);
  });

  it('writes to read-only buffers host-side, as a VMM may', async () => {
    const buffer = await backend.alloc({ size: 16, readonly: true });
    await backend.write(buffer, 4, Uint8Array.of(1, 2, 3));
    expect(await backend.read(buffer, 3, 5)).to.deep.equal(Uint8Array.of(0, 1, 2, 3, 0));
    // Still read-only for the kernel afterwards.
    const r = await backend.ioctl(
      vcpu,
      KVM_GET_ONE_REG,
      oneReg(msrReg(IA32_SYSENTER_CS), { kind: 'buffer', buffer, offset: 0, length: 8 }),
    );
    expect(r.errno).to.equal('EFAULT');
  });

  it('aligns buffers as asked (guest RAM on s390 needs 1 MiB)', async () => {
    // KVM_SET_USER_MEMORY_REGION rejects a userspace_addr that is not page aligned, so a successful
    // registration of a 1 MiB-aligned buffer at offset 4096 proves the alignment reached the kernel.
    const buffer = await backend.alloc({ size: 2 << 20, alignment: 1 << 20 });
    await backend.write(buffer, (2 << 20) - 4, Uint8Array.of(1, 2, 3, 4));
    expect(await backend.read(buffer, (2 << 20) - 4, 4)).to.deep.equal(Uint8Array.of(1, 2, 3, 4));
  });

  it('maps the vCPU’s kvm_run area as a buffer', async () => {
    const size = await backend.ioctl(system, KVM_GET_VCPU_MMAP_SIZE, int(0n));
    expect(size.ret > 0n).to.equal(true);
    const run = await backend.mmap(vcpu, Number(size.ret), 0);
    expect(await backend.read(run, 0, 8)).to.have.length(8);
  });

  it('answers EBADF for handles it did not open, without touching them', async () => {
    expect(await backend.ioctl(1, KVM_GET_API_VERSION, int(0n))).to.deep.include({
      ret: -1n,
      errno: 'EBADF',
    });
  });

  it('reports open failures as errnos', async () => {
    expect(await backend.open('/nonexistent/kvm')).to.deep.equal({ errno: 'ENOENT' });
  });

  it('gives the same outcomes served over the protocol as in process', async () => {
    const outcomes = (cases: { id: string; status: string }[]) => cases.map((c) => `${c.id} ${c.status}`);
    const direct = await runSuite({ backend: 'linux', factory: linuxFactory });
    const served = await runSuite({
      backend: 'process',
      arches: ['x86_64'],
      factory: processFactory({
        command: [process.execPath, '--import', 'tsx', path.join(here, 'fixtures', 'serve.ts'), 'linux'],
        validate: true,
      }),
    });
    expect(outcomes(served.results.cases)).to.deep.equal(outcomes(direct.results.cases));
    expect(served.results.profiles).to.deep.equal(direct.results.profiles);
  });

  it('refuses other arches, and closes every file it opened on dispose', async () => {
    const err = await linuxFactory.create({ arch: 'arm64', revision: 'upstream' }).catch((e: unknown) => e);
    expect(String(err)).to.contain('not arm64');
    const own = await linuxFactory.create({ arch: 'x86_64', revision: 'upstream' });
    const opened = await own.open('/dev/kvm');
    if (!('handle' in opened)) throw new Error('cannot open /dev/kvm');
    const vm = Number((await own.ioctl(opened.handle, KVM_CREATE_VM, int(0n))).ret);
    const cpu = Number((await own.ioctl(vm, KVM_CREATE_VCPU, int(0n))).ret);
    expect([vm, cpu].map(isOpen)).to.deep.equal([true, true]);
    await own.dispose();
    expect([vm, cpu].map(isOpen)).to.deep.equal([false, false]);
  });
});
