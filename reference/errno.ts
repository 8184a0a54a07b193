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

export class Errno extends Error {
  constructor(readonly errno: ErrnoName) {
    super(errno);
    this.name = 'Errno';
  }
}

export function fail(errno: ErrnoName): never {
  throw new Errno(errno);
}
