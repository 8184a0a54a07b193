/**
 * The adapter contract: everything a test case may do to a backend. A case is a sequence of these
 * operations — real KVM API calls and the user memory they point into — and nothing backend-specific,
 * so the same case runs on the bundled reference, on any program speaking the stdio protocol, and on
 * real Linux KVM. The stdio protocol (spec/schema/protocol) carries these operations one to one.
 */
import type { Arch } from '../harness/spec/types.ts';

/** An open file of the backend: the system device, a VM or a vCPU. Opaque to cases. */
export type Handle = number;
/** A piece of user memory the backend holds for the case (a struct's buffer, guest RAM, kvm_run). */
export type BufferId = number;

/**
 * Where a pointer points. Cases never see real addresses: the backend turns a target into one. `length`
 * says how many bytes from the target belong to this call; they come back in the result after the call.
 */
export type PointerTarget =
  | { kind: 'buffer'; buffer: BufferId; offset: number; length: number }
  | { kind: 'null' }
  /** An address the backend guarantees is not mapped, for EFAULT cases. */
  | { kind: 'invalid' };

export interface PointerPatch {
  /** Byte offset of the 8-byte pointer field inside the struct image. */
  offset: number;
  target: PointerTarget;
}

export type IoctlArg =
  /** The argument register holds a plain integer (KVM_CHECK_EXTENSION's capability, a vCPU id). */
  | { kind: 'int'; value: bigint }
  /** The argument is a pointer to user memory the case chose (or NULL / an invalid address). */
  | { kind: 'pointer'; target: PointerTarget }
  /**
   * The argument points to a struct image the backend places in its own memory, after writing each
   * pointer field (in the arch's byte order) with the real address of its target.
   */
  | { kind: 'struct'; image: Uint8Array; pointers: PointerPatch[] };

export interface IoctlResult {
  /** The ioctl's return value; -1 when it failed. */
  ret: bigint;
  /** The errno name (e.g. "ENOENT") when ret is -1, else null. */
  errno: string | null;
  /** The struct image after the call, its pointer fields restored to what the case sent. */
  image?: Uint8Array;
  /** After the call: the bytes of every buffer target named in the argument, in argument order. */
  spans: Uint8Array[];
}

export interface AllocRequest {
  size: number;
  /** Power of two; guest RAM on s390 needs 1 MiB. Defaults to the page size. */
  alignment?: number;
  init?: Uint8Array;
  /** Mapped read-only, so the kernel's writes to it fault (EFAULT cases). */
  readonly?: boolean;
}

/** What a backend says it is; checked against what it probes, stamped into every report. */
export interface BackendProfile {
  arch: Arch;
  /** e.g. "kvmspec-reference", "linux" */
  implementation: string;
  /** The implementation's version; for kernels and the reference, the kernel version modelled ("6.12"). */
  version: string;
  /** Spec revisions the backend implements; `upstream` unless it implements a proposal. */
  revisions: string[];
  /** Capability values the backend claims (by spec constant name), if it declares any. */
  capabilities?: Record<string, number>;
}

/** A failure of the backend itself (crash, garbage, broken pipe): the case is an error, not a failure. */
export class BackendError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackendError';
  }
}

/** An operation the backend does not implement, with its reason: the case is skipped, not failed. */
export class BackendSkip extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendSkip';
  }
}

export interface Backend {
  readonly profile: BackendProfile;
  /** Opens a device ("/dev/kvm"); ret is the handle, or -1 with errno. */
  open(path: string): Promise<{ handle: Handle } | { errno: string }>;
  ioctl(handle: Handle, request: bigint, arg: IoctlArg): Promise<IoctlResult>;
  close(handle: Handle): Promise<void>;
  alloc(request: AllocRequest): Promise<BufferId>;
  read(buffer: BufferId, offset: number, length: number): Promise<Uint8Array>;
  write(buffer: BufferId, offset: number, bytes: Uint8Array): Promise<void>;
  free(buffer: BufferId): Promise<void>;
  /** Maps `length` bytes of a vCPU handle (its kvm_run area) as a buffer. */
  mmap(handle: Handle, length: number, offset: number): Promise<BufferId>;
  /** Ends the backend: closes what is open, stops a process, powers off a VM. */
  dispose(): Promise<void>;
}

/** Builds a backend for one arch; the harness makes one per arch and run. */
export interface BackendFactory {
  readonly name: string;
  /** Arches this backend can serve (the host's for a real kernel). */
  arches(): Arch[];
  create(options: { arch: Arch; revision: string }): Promise<Backend>;
}
