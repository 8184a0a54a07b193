/**
 * Real arm64 and ppc64le KVM inside QEMU's software emulation. QEMU boots Debian's kernel with the
 * virtualization extensions on (EL2 on arm64, nested KVM-HV on POWER9) and an initramfs whose /init
 * starts kvmspec-agent on a virtio-serial port. That port is QEMU's stdio, so the harness talks to the
 * agent exactly as to any process backend, while the guest's console goes to a log file that is
 * attached to every backend error. `scripts/qemu/setup.sh` builds what is booted into .cache/qemu/.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readSync, closeSync, fstatSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { packageRoot } from '../harness/paths.ts';
import type { Arch } from '../harness/spec/types.ts';
import {
  BackendError,
  type AllocRequest,
  type Backend,
  type BackendFactory,
  type BufferId,
  type Handle,
  type IoctlArg,
  type IoctlResult,
} from './backend.ts';
import { TailBuffer } from './process.ts';
import { connectBackend } from './protocol/remote-backend.ts';

export interface QemuMachine {
  arch: Arch;
  binary: string;
  /** The `-M` machine type and properties that give the guest a working /dev/kvm. */
  machine: string;
  /** The `-cpu` model and properties. */
  cpu: string;
  console: string;
}

export const QEMU_MACHINES = {
  arm64: {
    arch: 'arm64',
    binary: 'qemu-system-aarch64',
    // pauth=off: emulating pointer authentication doubles boot time and changes nothing KVM reports.
    machine: 'virt,virtualization=on',
    cpu: 'max,pauth=off',
    console: 'ttyAMA0',
  },
  ppc64le: {
    arch: 'ppc64le',
    binary: 'qemu-system-ppc64',
    // KVM-HV needs nested HV (POWER9+); VOF instead of SLOF firmware boots ~8x faster.
    machine: 'pseries,cap-nested-hv=on,x-vof=on',
    cpu: 'POWER9',
    console: 'hvc0',
  },
} as const satisfies Record<string, QemuMachine>;

export type QemuArch = keyof typeof QEMU_MACHINES;

export interface QemuOptions {
  /** Where setup.sh leaves kernel and initramfs per arch. */
  cacheDir?: string;
  /** From starting QEMU to the agent's handshake; a kernel that does not boot fails after this. */
  bootTimeoutMs?: number;
  /** One request's deadline inside the emulated machine. */
  timeoutMs?: number;
  validate?: boolean;
  /**
   * arm64: a GICv3 instead of the virt machine's default GICv2. The guest's KVM then allows 512 vCPUs
   * rather than 8 (vCPU ids with Aff1) and hides PFR0.GIC at a VM's first run; its suite runs about 15 %
   * slower under emulation.
   */
  gicVersion?: 3;
}

export const DEFAULT_CACHE_DIR = path.join(packageRoot, '.cache', 'qemu');
const SETUP_SCRIPT = path.join(packageRoot, 'scripts', 'qemu', 'setup.sh');
const AGENT_PORT = 'org.kvmspec.agent';
const SETUP_TIMEOUT_MS = 15 * 60_000;
const DEFAULT_BOOT_TIMEOUT_MS = 180_000;
const DEFAULT_TIMEOUT_MS = 60_000;
const POWEROFF_GRACE_MS = 10_000;
const LOG_TAIL_BYTES = 16 * 1024;

/** The command line that boots `machine` with the cached kernel and initramfs. */
export function qemuCommand(
  machine: QemuMachine,
  archDir: string,
  serialLog: string,
  gicVersion?: QemuOptions['gicVersion'],
): string[] {
  return [
    machine.binary,
    ...['-M', gicVersion ? `${machine.machine},gic-version=${gicVersion}` : machine.machine],
    ...['-cpu', machine.cpu],
    // One vCPU: with two, every TLB flush and RCU grace period in the guest has to stop both emulated
    // CPUs. On a loaded host the suite ran twice as slow on both arches, and even on a quiet one the boot
    // took longer and the suite varied more. No case needs a second guest CPU.
    ...[
      '-smp',
      '1',
      '-m',
      '1024',
      '-nographic',
      '-nic',
      'none',
      '-no-reboot',
      '-monitor',
      'none',
      '-vga',
      'none',
    ],
    ...['-serial', `file:${serialLog}`],
    ...['-kernel', path.join(archDir, 'kernel'), '-initrd', path.join(archDir, 'initramfs.cpio.gz')],
    ...['-append', `console=${machine.console} panic=-1 quiet rdinit=/init`],
    ...['-chardev', 'stdio,id=agent,signal=off'],
    ...['-device', 'virtio-serial-pci', '-device', `virtserialport,chardev=agent,name=${AGENT_PORT}`],
  ];
}

/** The last bytes of a file as text, whole lines only; '' when it does not exist. */
export function fileTail(file: string, bytes = LOG_TAIL_BYTES): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(0, size - bytes);
    const buffer = Buffer.alloc(size - start);
    readSync(fd, buffer, 0, buffer.length, start);
    const text = buffer.toString('utf8');
    return (start > 0 ? text.slice(text.indexOf('\n') + 1) : text).trimEnd();
  } finally {
    closeSync(fd);
  }
}

/**
 * Makes sure the arch's kernel and initramfs are ready. For the default cache this runs setup.sh, which
 * returns silently in well under a second when nothing changed and rebuilds the initramfs when the agent
 * did; its progress goes to our stderr. Another cache directory is used as it is.
 */
export async function ensureQemuSetup(arch: QemuArch, cacheDir = DEFAULT_CACHE_DIR): Promise<string> {
  const archDir = path.join(cacheDir, arch);
  if (cacheDir !== DEFAULT_CACHE_DIR) {
    if (existsSync(path.join(archDir, '.ready'))) return archDir;
    throw new BackendError(`no QEMU ${arch} image in ${cacheDir}; run \`npm run setup:qemu -- ${arch}\``);
  }
  const output = new TailBuffer(16 * 1024);
  const setup = spawn('bash', [SETUP_SCRIPT, '-q', arch], { stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [setup.stdout, setup.stderr]) {
    stream.on('data', (chunk: Buffer) => {
      output.push(chunk);
      process.stderr.write(chunk);
    });
  }
  // A stalled download must not hang the run: setup gets a generous but finite time.
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    setup.kill('SIGTERM');
  }, SETUP_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => {
    setup.on('error', () => resolve(null));
    setup.on('close', resolve);
  });
  clearTimeout(timer);
  if (code !== 0 || !existsSync(path.join(archDir, '.ready'))) {
    const why = timedOut ? `timed out after ${SETUP_TIMEOUT_MS / 1000} s` : 'failed';
    throw new BackendError(`QEMU setup for ${arch} ${why} (scripts/qemu/setup.sh):\n${output.tail()}`);
  }
  return archDir;
}

type QemuChild = ChildProcessByStdio<Writable, Readable, Readable>;

/** One booted machine: the QEMU process, its serial log and its stderr. */
class QemuVm {
  readonly exited: Promise<string>;
  private readonly stderr = new TailBuffer(16 * 1024);

  constructor(
    readonly arch: QemuArch,
    readonly child: QemuChild,
    private readonly logDir: string,
  ) {
    child.stderr.on('data', (chunk: Buffer) => this.stderr.push(chunk));
    // Writes after QEMU died fail with EPIPE; the protocol client reports that.
    child.stdin.on('error', () => undefined);
    this.exited = new Promise<string>((resolve) => {
      child.on('error', (err) => resolve(`could not be started: ${err.message}`));
      child.on('close', (code, signal) =>
        resolve(signal ? `was killed by ${signal}` : `exited with code ${code}`),
      );
    });
  }

  get serialLog(): string {
    return path.join(this.logDir, 'serial.log');
  }

  /** What to attach to an error: QEMU's own complaints and the end of the guest's console. */
  report(): string {
    const parts: string[] = [];
    const stderr = this.stderr.tail();
    if (stderr) parts.push(`QEMU stderr:\n${indent(stderr)}`);
    const serial = fileTail(this.serialLog);
    parts.push(serial ? `serial console (last lines):\n${indent(serial)}` : 'serial console: (empty)');
    return parts.join('\n');
  }

  /** Waits for QEMU to power off; kills it when it does not. Removes the log afterwards. */
  async stop(graceMs = POWEROFF_GRACE_MS): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.logDir, { recursive: true, force: true });
  }

  /** A backend error with the machine's report attached; other errors pass through. */
  explained(err: unknown): unknown {
    return err instanceof BackendError
      ? new BackendError(`qemu-${this.arch}: ${err.message}\n${this.report()}`, { cause: err })
      : err;
  }
}

/** A Backend served by the agent inside a booted machine; every backend error carries the serial log. */
export class QemuBackend implements Backend {
  constructor(
    private readonly inner: Backend,
    private readonly vm: QemuVm,
  ) {}

  get profile() {
    return this.inner.profile;
  }
  /** The QEMU process, for whoever needs to watch or stop the machine from outside. */
  get pid(): number | undefined {
    return this.vm.child.pid;
  }
  open(devicePath: string): Promise<{ handle: Handle } | { errno: string }> {
    return this.guard(this.inner.open(devicePath));
  }
  ioctl(handle: Handle, request: bigint, arg: IoctlArg): Promise<IoctlResult> {
    return this.guard(this.inner.ioctl(handle, request, arg));
  }
  close(handle: Handle): Promise<void> {
    return this.guard(this.inner.close(handle));
  }
  alloc(request: AllocRequest): Promise<BufferId> {
    return this.guard(this.inner.alloc(request));
  }
  read(buffer: BufferId, offset: number, length: number): Promise<Uint8Array> {
    return this.guard(this.inner.read(buffer, offset, length));
  }
  write(buffer: BufferId, offset: number, bytes: Uint8Array): Promise<void> {
    return this.guard(this.inner.write(buffer, offset, bytes));
  }
  free(buffer: BufferId): Promise<void> {
    return this.guard(this.inner.free(buffer));
  }
  mmap(handle: Handle, length: number, offset: number): Promise<BufferId> {
    return this.guard(this.inner.mmap(handle, length, offset));
  }
  dispose(): Promise<void> {
    return this.inner.dispose();
  }

  private guard<T>(operation: Promise<T>): Promise<T> {
    return operation.catch((err: unknown) => {
      throw this.vm.explained(err);
    });
  }
}

/** Boots a machine for `arch` (running setup first if needed) and connects to its agent. */
export async function startQemuBackend(arch: QemuArch, options: QemuOptions = {}): Promise<QemuBackend> {
  const machine = QEMU_MACHINES[arch];
  const archDir = await ensureQemuSetup(arch, options.cacheDir);
  const logDir = mkdtempSync(path.join(tmpdir(), `kvmspec-qemu-${arch}-`));
  const [binary, ...args] = qemuCommand(
    machine,
    archDir,
    path.join(logDir, 'serial.log'),
    options.gicVersion,
  );
  const child: QemuChild = spawn(binary!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const vm = new QemuVm(arch, child, logDir);
  try {
    const inner = await connectBackend(child.stdout, child.stdin, {
      handshakeTimeoutMs: options.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      validate: options.validate,
      peer: `agent in ${machine.binary} (pid ${child.pid ?? '?'})`,
      peerGone: () => vm.exited,
      onDispose: () => vm.stop(),
    });
    const problem = await guestProblem(inner, arch);
    if (problem) throw new BackendError(problem);
    return new QemuBackend(inner, vm);
  } catch (err) {
    // Read the report before the log goes away with the stopped machine.
    const explained = vm.explained(err);
    child.kill('SIGKILL');
    await vm.stop();
    throw explained;
  }
}

/** Why a booted guest cannot serve the suite (wrong agent, KVM missing), or undefined when it can. */
async function guestProblem(agent: Backend, arch: QemuArch): Promise<string | undefined> {
  if (agent.profile.arch !== arch) return `the agent serves ${agent.profile.arch}, not ${arch}`;
  const kvm = await agent.open('/dev/kvm');
  if ('errno' in kvm)
    return `the guest has no usable /dev/kvm (open: ${kvm.errno}); see the kvmspec-init lines below`;
  await agent.close(kvm.handle);
  return undefined;
}

/** A `qemu-<arch>` backend; the registry's entries use the defaults, a caller may pass options (validation). */
export function qemuFactory(
  arch: QemuArch,
  options: QemuOptions = {},
  name = `qemu-${arch}`,
): BackendFactory {
  return {
    name,
    arches: () => [arch],
    create: async ({ arch: wanted }) => {
      if (wanted !== arch) throw new BackendError(`${name} serves ${arch}, not ${wanted}`);
      return startQemuBackend(arch, options);
    },
  };
}

export const qemuArm64Factory = qemuFactory('arm64');
/** The same arm64 machine with a GICv3: the cases that need more than 8 vCPUs or a GICv3 host run there. */
export const qemuArm64Gicv3Factory = qemuFactory('arm64', { gicVersion: 3 }, 'qemu-arm64-gicv3');
export const qemuPpc64leFactory = qemuFactory('ppc64le');

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  | ${l}`)
    .join('\n');
}
