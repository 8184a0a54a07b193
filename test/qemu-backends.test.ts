import { expect } from 'chai';
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, copyFileSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { BackendError, type Backend, type Handle } from '../adapters/backend.ts';
import { startProcessBackend } from '../adapters/process.ts';
import { ProtocolClient } from '../adapters/protocol/client.ts';
import {
  ensureQemuSetup,
  QEMU_MACHINES,
  qemuCommand,
  startQemuBackend,
  type QemuBackend,
} from '../adapters/qemu.ts';
import { backendFactory } from '../adapters/registry.ts';
import { decodeStruct, encodeStruct, uintToBytes } from '../harness/abi/codec.ts';
import { packageRoot } from '../harness/paths.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import type { Arch } from '../harness/spec/types.ts';

const spec = loadSpec();
const endian = (arch: Arch) => spec.archInfo(arch).endian;

async function ioctl(backend: Backend, handle: Handle, name: string, value: bigint) {
  return backend.ioctl(handle, spec.ioctlNumber(name, backend.profile.arch), { kind: 'int', value });
}

/** Opens /dev/kvm and creates a VM of `type` and vCPU 0; fails the test when any step fails. */
async function vmAndVcpu(backend: Backend, type = 0n) {
  const kvm = await backend.open('/dev/kvm');
  if (!('handle' in kvm)) throw new Error(`open /dev/kvm: ${kvm.errno}`);
  const vm = await ioctl(backend, kvm.handle, 'KVM_CREATE_VM', type);
  expect(vm.errno, 'KVM_CREATE_VM').to.equal(null);
  const vcpu = await ioctl(backend, Number(vm.ret), 'KVM_CREATE_VCPU', 0n);
  expect(vcpu.errno, 'KVM_CREATE_VCPU').to.equal(null);
  return { kvm: kvm.handle, vm: Number(vm.ret), vcpu: Number(vcpu.ret) };
}

function registerId(arch: Arch, name: string): bigint {
  const register = spec.registers(arch).find((r) => r.name === name);
  if (!register) throw new Error(`spec has no ${arch} register ${name}`);
  return BigInt(register.id);
}

/** KVM_GET_ONE_REG of a register into a fresh 8-byte buffer (or the given target). */
async function getOneReg(
  backend: Backend,
  vcpu: Handle,
  id: bigint,
  target?: 'invalid' | { readonly: true },
) {
  const arch = backend.profile.arch;
  const layout = spec.layout('kvm_one_reg', { arch });
  const image = encodeStruct(layout, { id, addr: 0n }, endian(arch));
  const buffer =
    target === 'invalid' ? undefined : await backend.alloc({ size: 8, readonly: target !== undefined });
  const result = await backend.ioctl(vcpu, spec.ioctlNumber('KVM_GET_ONE_REG', arch), {
    kind: 'struct',
    image,
    pointers: [
      {
        offset: 8,
        target: buffer === undefined ? { kind: 'invalid' } : { kind: 'buffer', buffer, offset: 0, length: 8 },
      },
    ],
  });
  return { result, image };
}

describe('kvmspec-agent as a process backend on this host', function () {
  this.timeout(60_000);
  let backend: Backend;

  before(async function () {
    // Needs an x86_64 host with a usable /dev/kvm, gcc and make.
    if (process.arch !== 'x64') this.skip();
    try {
      accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
      execFileSync('make', ['-s', '-C', path.join(packageRoot, 'agent'), 'x86_64'], { stdio: 'pipe' });
    } catch {
      this.skip();
    }
    backend = await startProcessBackend({
      command: [path.join(packageRoot, 'agent', 'build', 'x86_64', 'kvmspec-agent')],
      validate: true,
    });
  });
  after(async () => backend?.dispose());

  it('states the host arch and the running kernel major.minor in its handshake', () => {
    const [major, minor] = os.release().split('.');
    expect(backend.profile).to.deep.equal({
      arch: 'x86_64',
      implementation: 'kvmspec-agent',
      version: `${major}.${minor}`,
      revisions: ['upstream'],
    });
  });

  it('answers open with a handle or the errno name', async () => {
    expect(await backend.open('/dev/kvm-does-not-exist')).to.deep.equal({ errno: 'ENOENT' });
    const kvm = await backend.open('/dev/kvm');
    expect(kvm).to.have.property('handle');
    if ('handle' in kvm) await backend.close(kvm.handle);
  });

  it('passes integer arguments and returns the ioctl result', async () => {
    const { kvm } = await vmAndVcpu(backend);
    const version = await ioctl(backend, kvm, 'KVM_GET_API_VERSION', 0n);
    expect(version).to.deep.include({ ret: 12n, errno: null });
    expect(await ioctl(backend, 4242, 'KVM_GET_API_VERSION', 0n)).to.deep.include({
      ret: -1n,
      errno: 'EBADF',
    });
  });

  it('patches pointer fields with real addresses and restores them in the returned image', async function () {
    const [major = 0, minor = 0] = os.release().split('.').map(Number);
    if (major < 6 || (major === 6 && minor < 18)) this.skip(); // x86 ONE_REG is new in 6.18
    const { vcpu } = await vmAndVcpu(backend);
    const pat = registerId('x86_64', 'IA32_PAT');
    const read = await getOneReg(backend, vcpu, pat);
    expect(read.result).to.deep.include({ ret: 0n, errno: null });
    expect(read.result.image).to.deep.equal(read.image);
    expect(read.result.spans).to.have.length(1);
    // The power-on PAT value: what the kernel wrote proves the address reached it.
    expect(read.result.spans[0]).to.deep.equal(uintToBytes(0x0007040600070406n, 8, 'little'));
    expect((await getOneReg(backend, vcpu, pat, 'invalid')).result.errno).to.equal('EFAULT');
    expect((await getOneReg(backend, vcpu, pat, { readonly: true })).result.errno).to.equal('EFAULT');
  });

  it('maps a vCPU run area and reports unknown buffers as backend errors', async () => {
    const { kvm, vcpu } = await vmAndVcpu(backend);
    const size = await ioctl(backend, kvm, 'KVM_GET_VCPU_MMAP_SIZE', 0n);
    const run = await backend.mmap(vcpu, Number(size.ret), 0);
    expect(await backend.read(run, 0, 2)).to.deep.equal(new Uint8Array(2));
    await backend.free(run);
    let error: unknown;
    await backend.read(run, 0, 1).catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(BackendError);
  });

  it('reports an alloc it cannot make at the next request, with its reason', async () => {
    const buffer = await backend.alloc({ size: 8, alignment: 3 });
    const err = await backend.read(buffer, 0, 8).catch((e: unknown) => e);
    expect(err)
      .to.be.instanceOf(BackendError)
      .with.property('message')
      .that.contains('alignment 3 is not a power of two');
    await backend.free(buffer);
  });

  /** The agent on raw protocol requests, for what RemoteBackend never sends. */
  async function withAgent(use: (client: ProtocolClient) => Promise<void>): Promise<void> {
    const agent = spawn(path.join(packageRoot, 'agent', 'build', 'x86_64', 'kvmspec-agent'), {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const client = new ProtocolClient(agent.stdout, agent.stdin, { validate: true });
    try {
      await client.handshake();
      await use(client);
      await client.request({ op: 'shutdown' });
    } finally {
      client.close();
      agent.kill();
    }
  }

  it('answers requests that arrive together one by one, a failed one among them', async () => {
    await withAgent(async (client) => {
      // Sent in one write, so the agent reads them together and answers them in one write.
      const [made, unknown, read] = await Promise.allSettled([
        client.request({ op: 'alloc', buffer: 1, size: 2, init: 'AQI=' }),
        client.request({ op: 'read', buffer: 9, offset: 0, length: 1 }),
        client.request({ op: 'read', buffer: 1, offset: 0, length: 2 }),
      ]);
      expect(made).to.deep.equal({ status: 'fulfilled', value: { seq: 1, ok: true } });
      expect(unknown).to.have.property('status', 'rejected');
      expect(String((unknown as PromiseRejectedResult).reason)).to.contain('unknown buffer 9');
      expect(read).to.deep.equal({ status: 'fulfilled', value: { seq: 3, ok: true, data: 'AQI=' } });
    });
  });

  it('closes a handle before the next request, though it answers the close first', async () => {
    await withAgent(async (client) => {
      const opened = await client.request({ op: 'open', path: '/dev/kvm' });
      if (!('handle' in opened)) throw new Error(`open /dev/kvm: ${opened.errno}`);
      const getApiVersion = `0x${spec.ioctlNumber('KVM_GET_API_VERSION', 'x86_64').toString(16)}`;
      const call = {
        op: 'ioctl',
        handle: opened.handle,
        request: getApiVersion,
        arg: { int: '0x0' },
      } as const;
      expect(await client.request(call)).to.deep.include({ ret: 12, errno: null });
      // Pipelined: the close is queued when the ioctl arrives, and must be done before it runs.
      const [, after] = await Promise.all([
        client.request({ op: 'close', handle: opened.handle }),
        client.request(call),
      ]);
      expect(after).to.deep.include({ ret: -1, errno: 'EBADF' });
    });
  });

  it('refuses a new buffer under an id in use', async () => {
    await withAgent(async (client) => {
      await client.request({ op: 'alloc', buffer: 7, size: 8 });
      for (const second of [
        client.request({ op: 'alloc', buffer: 7, size: 8 }),
        client.request({ op: 'mmap', buffer: 7, handle: 3, length: 4096, offset: 0 }),
      ]) {
        const err = await second.catch((e: unknown) => e);
        expect(err)
          .to.be.instanceOf(BackendError)
          .with.property('message')
          .that.contains('buffer 7 is already in use');
      }
      await client.request({ op: 'free', buffer: 7 });
    });
  });
});

/** Real arm64 / ppc64le KVM inside QEMU: minutes of setup on first use, ~5–10 s per boot. */
describe('QEMU machines', () => {
  it("boots arm64 with the virt machine's GICv2, and with a GICv3 for qemu-arm64-gicv3", async () => {
    const at = (args: string[], flag: string) => args[args.indexOf(flag) + 1];
    const plain = qemuCommand(QEMU_MACHINES.arm64, '/cache/arm64', '/tmp/serial.log');
    expect(at(plain, '-M')).to.equal('virt,virtualization=on');
    expect(at(plain, '-cpu')).to.equal('max,pauth=off');
    const gicv3 = qemuCommand(QEMU_MACHINES.arm64, '/cache/arm64', '/tmp/serial.log', 3);
    expect(at(gicv3, '-M')).to.equal('virt,virtualization=on,gic-version=3');
    const factory = backendFactory('qemu-arm64-gicv3');
    expect(factory.arches()).to.deep.equal(['arm64']);
    await factory.create({ arch: 'ppc64le', revision: 'upstream' }).then(
      () => expect.fail('a qemu-arm64-gicv3 backend for ppc64le'),
      (err: unknown) => expect(String(err)).to.include('qemu-arm64-gicv3 serves arm64, not ppc64le'),
    );
  });
});

describe('QEMU backends (KVMSPEC_QEMU=1)', function () {
  this.timeout(600_000);
  before(function () {
    if (process.env.KVMSPEC_QEMU !== '1') {
      console.log(
        '    (skipped: set KVMSPEC_QEMU=1 to boot arm64 and ppc64le KVM in QEMU, as npm run test:full does)',
      );
      this.skip();
    }
  });

  describe('qemu-arm64', () => {
    let backend: QemuBackend;
    before(async () => {
      backend = await startQemuBackend('arm64', { validate: true });
    });
    after(async () => backend?.dispose());

    it('boots real arm64 KVM and answers through the agent', async () => {
      expect(backend.profile).to.include({ arch: 'arm64', implementation: 'kvmspec-agent' });
      const kvm = await backend.open('/dev/kvm');
      if (!('handle' in kvm)) throw new Error(`open /dev/kvm: ${kvm.errno}`);
      const cap = spec.constant('KVM_CAP_ARM_SUPPORTED_REG_MASK_RANGES');
      expect(await ioctl(backend, kvm.handle, 'KVM_CHECK_EXTENSION', cap)).to.deep.include({
        ret: 1n,
        errno: null,
      });
    });

    it('initialises a vCPU with the preferred target and reads its PC through ONE_REG', async () => {
      const { vm, vcpu } = await vmAndVcpu(backend);
      const layout = spec.layout('kvm_vcpu_init', { arch: 'arm64' });
      const blank = encodeStruct(layout, { target: 0n, features: Array<bigint>(7).fill(0n) }, 'little');
      const preferred = await backend.ioctl(vm, spec.ioctlNumber('KVM_ARM_PREFERRED_TARGET', 'arm64'), {
        kind: 'struct',
        image: blank,
        pointers: [],
      });
      expect(preferred.errno).to.equal(null);
      const init = await backend.ioctl(vcpu, spec.ioctlNumber('KVM_ARM_VCPU_INIT', 'arm64'), {
        kind: 'struct',
        image: preferred.image!,
        pointers: [],
      });
      const target = decodeStruct(layout, preferred.image!, 'little').target as bigint;
      expect(init.errno, `KVM_ARM_VCPU_INIT with target ${target}`).to.equal(null);
      const pc = await getOneReg(backend, vcpu, registerId('arm64', 'PC'));
      expect(pc.result).to.deep.include({ ret: 0n, errno: null });
      expect(pc.result.spans[0]).to.have.length(8);
    });

    it('reports an agent that dies with the serial log attached', async () => {
      const doomed = await startQemuBackend('arm64');
      try {
        process.kill(doomed.pid!, 'SIGKILL');
        const error = await doomed.open('/dev/kvm').then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(error).to.be.instanceOf(BackendError);
        expect((error as Error).message)
          .to.match(/killed by SIGKILL/)
          .and.match(/kvmspec-init: starting the agent/);
      } finally {
        await doomed.dispose();
      }
    });

    it('reports a kernel that cannot start init within the boot timeout, with the serial log', async () => {
      const real = await ensureQemuSetup('arm64');
      const broken = mkdtempSync(path.join(os.tmpdir(), 'kvmspec-broken-'));
      try {
        mkdirSync(path.join(broken, 'arm64'));
        copyFileSync(path.join(real, 'kernel'), path.join(broken, 'arm64', 'kernel'));
        // An initramfs holding only the cpio trailer: no /init, so the kernel panics and QEMU exits.
        writeFileSync(path.join(broken, 'arm64', 'initramfs.cpio.gz'), gzipSync(cpioTrailer()));
        writeFileSync(path.join(broken, 'arm64', '.ready'), 'broken on purpose\n');
        const started = Date.now();
        const error = await startQemuBackend('arm64', { cacheDir: broken, bootTimeoutMs: 60_000 }).then(
          async (b) => b.dispose(),
          (err: unknown) => err,
        );
        expect(error).to.be.instanceOf(BackendError);
        expect((error as Error).message)
          .to.match(/serial console/)
          .and.match(/Kernel panic/);
        expect(Date.now() - started).to.be.below(60_000);
      } finally {
        rmSync(broken, { recursive: true, force: true });
      }
    });
  });

  describe('qemu-ppc64le', () => {
    let backend: QemuBackend;
    before(async () => {
      backend = await startQemuBackend('ppc64le', { validate: true });
    });
    after(async () => backend?.dispose());

    it('creates a KVM-HV VM (type 1) and reads DAR through ONE_REG', async () => {
      expect(backend.profile).to.include({ arch: 'ppc64le', implementation: 'kvmspec-agent' });
      const { vcpu } = await vmAndVcpu(backend, 1n);
      const dar = await getOneReg(backend, vcpu, registerId('ppc64le', 'KVM_REG_PPC_DAR'));
      expect(dar.result).to.deep.include({ ret: 0n, errno: null });
      expect(dar.result.spans[0]).to.have.length(8);
    });

    it('refuses a guest whose /dev/kvm is missing, naming the cause from the serial log', async () => {
      const real = await ensureQemuSetup('ppc64le');
      const broken = mkdtempSync(path.join(os.tmpdir(), 'kvmspec-nokvm-'));
      try {
        // The real image with kvm.ko and kvm-hv.ko taken out of the boot-time module list.
        const tree = path.join(broken, 'tree');
        mkdirSync(path.join(broken, 'ppc64le'));
        mkdirSync(tree);
        copyFileSync(path.join(real, 'kernel'), path.join(broken, 'ppc64le', 'kernel'));
        writeFileSync(path.join(broken, 'ppc64le', '.ready'), 'without KVM on purpose\n');
        execFileSync('sh', [
          '-c',
          `gzip -dc "$0/initramfs.cpio.gz" | (cd "$1" && cpio -id --quiet) &&
           sed -i '/^kvm/d' "$1/modules.order" &&
           (cd "$1" && find . | cpio -o -H newc --quiet | gzip) >"$2/ppc64le/initramfs.cpio.gz"`,
          real,
          tree,
          broken,
        ]);
        const error = await startQemuBackend('ppc64le', { cacheDir: broken }).then(
          async (b) => b.dispose(),
          (err: unknown) => err,
        );
        expect(error).to.be.instanceOf(BackendError);
        expect((error as Error).message)
          .to.match(/no usable \/dev\/kvm/)
          .and.match(/kvmspec-init: \/dev\/kvm is missing/);
      } finally {
        rmSync(broken, { recursive: true, force: true });
      }
    });
  });
});

/** The smallest valid newc archive: just its "TRAILER!!!" record. */
function cpioTrailer(): Buffer {
  const name = 'TRAILER!!!\0';
  const fields = [
    '070701',
    ...Array<string>(11).fill('00000000'),
    name.length.toString(16).padStart(8, '0'),
    '00000000',
  ];
  const header = Buffer.from(fields.join('') + name);
  return Buffer.concat([header, Buffer.alloc((4 - (header.length % 4)) % 4)]);
}
