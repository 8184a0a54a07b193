/** The kernel's way of failing a call: thrown inside the reference, turned into ret -1 + errno at the ioctl boundary. */
export type ErrnoName =
  | 'EPERM'
  | 'ENOENT'
  | 'ENXIO'
  | 'EINTR'
  | 'E2BIG'
  | 'ENOEXEC'
  | 'EBADF'
  | 'ENOMEM'
  | 'ENODEV'
  | 'EFAULT'
  | 'EBUSY'
  | 'EEXIST'
  | 'EINVAL'
  | 'ENOTTY'
  | 'ENOSPC'
  | 'EOPNOTSUPP'
  | 'ENOBUFS';

/**
 * Caught at the ioctl boundary and never shown, so it is built without a stack trace: capturing one cost
 * as much again as the throw itself (4.4 us a throw with one, 2.1 us without, Node 20).
 */
export class Errno extends Error {
  readonly errno: ErrnoName;

  constructor(errno: ErrnoName) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(errno);
    Error.stackTraceLimit = limit;
    this.errno = errno;
    this.name = 'Errno';
  }
}

export function fail(errno: ErrnoName): never {
  throw new Errno(errno);
}

/**
 * The call reached upstream behaviour the reference does not model. The reference backend reports it as a
 * skip naming what is missing, never as an answer the model would have had to guess.
 */
export class NotModelled extends Error {
  constructor(what: string) {
    super(what);
    this.name = 'NotModelled';
  }
}
