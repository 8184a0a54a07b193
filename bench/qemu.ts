// The arm64 suite inside QEMU, from command start (warm cache) to exit, when `npm run setup:qemu` has
// run; and the same command booting the same machine for one trivial case, which stands in for a boot
// whose agent exits at once (boot, handshake, one call, power-off).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

export interface QemuFigures {
  skipped?: string;
  suiteSeconds?: number;
  bootSeconds?: number;
  exitCodes?: (number | null)[];
  suiteMet?: boolean;
  ratio?: number;
  ratioMet?: boolean;
}

function timedRun(extra: string[]): { seconds: number; status: number | null } {
  const t0 = performance.now();
  const r = spawnSync(
    process.execPath,
    [path.join(root, 'bin/kvmspec.js'), 'run', '--backend', 'qemu-arm64', '--arch', 'arm64', ...extra],
    { cwd: root, stdio: 'ignore' },
  );
  return { seconds: (performance.now() - t0) / 1000, status: r.status };
}

export function qemuBench(): QemuFigures {
  if (!existsSync(path.join(root, '.cache/qemu/arm64/kernel'))) return { skipped: 'run npm run setup:qemu' };
  const suite = timedRun([]);
  const boot = timedRun(['--filter', 'SYSTEM/SYSTEM-VAL-001/arm64/**']);
  const ratio = suite.seconds / boot.seconds;
  return {
    suiteSeconds: suite.seconds,
    bootSeconds: boot.seconds,
    exitCodes: [suite.status, boot.status],
    suiteMet: suite.seconds <= 20,
    ratio,
    ratioMet: ratio <= 3,
  };
}
