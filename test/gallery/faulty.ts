// What a gallery entry is, and the small wrappers every entry builds its bug from.
import type { Backend, IoctlArg, IoctlResult } from '../../adapters/backend.ts';
import { fieldSpan, readUint, writeUint, type Endian } from '../../harness/abi/codec.ts';
import type { SpecTree } from '../../harness/spec/tree.ts';
import type { Arch } from '../../harness/spec/types.ts';

/** A deliberately broken backend: one realistic implementer bug on top of the reference. */
export interface FaultyBackend {
  name: string;
  /** The bug, as an implementer would have written it. */
  bug: string;
  arches: Arch[];
  revision?: string;
  /** Spec ioctls the bug lives in; the entry is only meaningful once they are in spec/. */
  requires: string[];
  /** Narrows the run to the APIs concerned, to keep the gallery fast. */
  filter: string[];
  make(spec: SpecTree, arch: Arch): Backend;
  /** Case IDs the suite must fail on this backend (and pass on the plain reference). */
  caughtBy: string[];
}

type Ioctl = Backend['ioctl'];

/** `inner` with its ioctl replaced; every other operation goes to `inner` unchanged. */
export function withIoctl(
  inner: Backend,
  ioctl: (next: Ioctl, ...args: Parameters<Ioctl>) => Promise<IoctlResult>,
): Backend {
  const next: Ioctl = (h, req, arg) => inner.ioctl(h, req, arg);
  return Object.assign(Object.create(inner) as Backend, {
    profile: inner.profile,
    ioctl: (h: number, req: bigint, arg: IoctlArg) => ioctl(next, h, req, arg),
  });
}

/**
 * The reference behind an ioctl that clears `mask` in the integer of `size` bytes at `offset` of its struct
 * argument first: an implementation that drops a control bit user space set.
 */
export function droppingBits(
  inner: Backend,
  request: bigint,
  at: { offset: number; size: 4 | 8 },
  mask: bigint,
  endian: Endian,
): Backend {
  return withIoctl(inner, (next, h, req, arg) => {
    if (req !== request || arg.kind !== 'struct') return next(h, req, arg);
    const image = arg.image.slice();
    writeUint(image, at.offset, at.size, readUint(image, at.offset, at.size, endian) & ~mask, endian);
    return next(h, req, { ...arg, image });
  });
}

/** Reads and writes named fields of a struct image, in the arch's layout and byte order. */
export class StructView {
  constructor(
    private readonly spec: SpecTree,
    private readonly struct: string,
    private readonly arch: Arch,
  ) {}

  private at(field: string) {
    const span = fieldSpan(this.spec.field(this.struct, field, { arch: this.arch }));
    return { ...span, endian: this.spec.archInfo(this.arch).endian };
  }

  get(image: Uint8Array, field: string): bigint {
    const { offset, size, endian } = this.at(field);
    return readUint(image, offset, size, endian);
  }

  set(image: Uint8Array, field: string, value: bigint): void {
    const { offset, size, endian } = this.at(field);
    writeUint(image, offset, size, value, endian);
  }
}

export const failed = (errno: string): IoctlResult => ({ ret: -1n, errno, spans: [] });

/** The answer of a call that claims success without doing anything: the argument's bytes as they are. */
export async function pretendSuccess(inner: Backend, arg: IoctlArg): Promise<IoctlResult> {
  const targets =
    arg.kind === 'struct' ? arg.pointers.map((p) => p.target) : arg.kind === 'pointer' ? [arg.target] : [];
  const spans: Uint8Array[] = [];
  for (const t of targets)
    if (t.kind === 'buffer') spans.push(await inner.read(t.buffer, t.offset, t.length));
  return { ret: 0n, errno: null, ...(arg.kind === 'struct' ? { image: arg.image.slice() } : {}), spans };
}
