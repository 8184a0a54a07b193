import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../paths.ts';
import type { Arch, ArchInfo } from '../../spec/types.ts';

/** One set of uapi headers to check the spec against. */
export interface HeaderSet {
  /** Shown in reports: where the headers come from. */
  name: string;
  arch: Arch;
  /** "major.minor", from the headers' own linux/version.h. */
  version: string;
  /** The folder holding linux/ and asm/. */
  includeDir: string;
  /** Extra gcc flags: for a foreign arch, the predefined macros its compiler would set. */
  cflags: string[];
}

export const abiCacheDir = path.join(packageRoot, '.cache', 'abi');
export const HOST_INCLUDE_DIR = '/usr/include';

/** Reads "6.12" out of a linux/version.h. */
export function headerVersion(includeDir: string): string {
  const text = readFileSync(path.join(includeDir, 'linux', 'version.h'), 'utf8');
  const code = /LINUX_VERSION_CODE\s+(\d+)/.exec(text)?.[1];
  if (!code) throw new Error(`${includeDir}/linux/version.h has no LINUX_VERSION_CODE`);
  const n = Number(code);
  return `${n >> 16}.${(n >> 8) & 0xff}`;
}

// The host compiler parses every arch's headers; these make it look like that arch's compiler to their #ifdefs.
const HOST_ARCH_MACROS = ['__x86_64__', '__x86_64', '__amd64__', '__amd64', '__i386__', '__aarch64__'];
const TARGET_MACROS: Record<ArchInfo['kernelArch'], string[]> = {
  x86: ['__x86_64__', '__x86_64', '__amd64__', '__amd64'],
  arm64: ['__aarch64__'],
  s390: ['__s390__', '__s390x__'],
  powerpc: ['__powerpc__', '__powerpc64__', '__PPC__', '__PPC64__', '__LITTLE_ENDIAN__'],
};

export function targetCflags(info: ArchInfo): string[] {
  const order = info.endian === 'big' ? '__ORDER_BIG_ENDIAN__' : '__ORDER_LITTLE_ENDIAN__';
  return [
    ...HOST_ARCH_MACROS.map((m) => `-U${m}`),
    ...TARGET_MACROS[info.kernelArch].map((m) => `-D${m}=1`),
    '-U__BYTE_ORDER__',
    `-D__BYTE_ORDER__=${order}`,
  ];
}

/** The headers this machine has installed (Debian's linux-libc-dev), for the arch the host runs. */
export function hostHeaderSet(arch: Arch): HeaderSet {
  const version = headerVersion(HOST_INCLUDE_DIR);
  return {
    name: `host /usr/include (linux ${version})`,
    arch,
    version,
    includeDir: HOST_INCLUDE_DIR,
    cflags: [],
  };
}

/** The headers `scripts/abi-headers.sh` installed for one arch from the kernel source package. */
export function cachedHeaderSet(arch: Arch, info: ArchInfo, cacheDir = abiCacheDir): HeaderSet {
  const includeDir = path.join(cacheDir, 'headers', info.kernelArch, 'include');
  if (!existsSync(path.join(includeDir, 'linux', 'version.h')))
    throw new Error(`no ${info.kernelArch} headers in ${includeDir}: run scripts/abi-headers.sh`);
  const version = headerVersion(includeDir);
  return {
    name: `linux ${version} uapi (ARCH=${info.kernelArch})`,
    arch,
    version,
    includeDir,
    cflags: ['-nostdinc', ...targetCflags(info)],
  };
}

/** Runs scripts/abi-headers.sh (download, unpack, headers_install; cached) for the given kernel arches. */
export function installHeaders(kernelArches: string[]): void {
  const script = path.join(packageRoot, 'scripts', 'abi-headers.sh');
  const result = spawnSync('bash', [script, ...kernelArches], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`scripts/abi-headers.sh failed (exit ${String(result.status)})`);
}
