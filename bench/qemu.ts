// The arm64 suite inside QEMU, from command start (warm cache) to exit, when `npm run setup:qemu` has run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

export interface QemuFigures {
  skipped?: string;
  seconds?: number;
  exitCode?: number | null;
  met?: boolean;
}

export function qemuBench(): QemuFigures {
  if (!existsSync(path.join(root, '.cache/qemu/arm64/kernel'))) return { skipped: 'run npm run setup:qemu' };
  const t0 = performance.now();
  const r = spawnSync(
    process.execPath,
    [path.join(root, 'bin/kvmspec.js'), 'run', '--backend', 'qemu-arm64', '--arch', 'arm64'],
    {
      cwd: root,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, exitCode: r.status, met: seconds <= 20 };
}
