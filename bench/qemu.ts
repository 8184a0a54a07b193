// The arm64 suite inside QEMU, from command start (warm cache) to exit, when `npm run setup:qemu` has
// run; and the same command booting the same machine for one trivial case, which stands in for a boot
// whose agent exits at once (boot, handshake, one call, power-off).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { measurePairs, REPETITIONS } from './measure.ts';

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

function run(extra: string[]): number | null {
  return spawnSync(
    process.execPath,
    [path.join(root, 'bin/kvmspec.js'), 'run', '--backend', 'qemu-arm64', '--arch', 'arm64', ...extra],
    { cwd: root, stdio: 'ignore' },
  ).status;
}

/** Suite and one-case boot alternate, pair by pair (see measurePairs), five times: about two minutes. */
export async function qemuBench(): Promise<QemuFigures> {
  if (!existsSync(path.join(root, '.cache/qemu/arm64/kernel'))) return { skipped: 'run npm run setup:qemu' };
  const exitCodes: (number | null)[] = [];
  const paired = await measurePairs(
    REPETITIONS,
    () => void exitCodes.push(run([])),
    () => void exitCodes.push(run(['--filter', 'SYSTEM/SYSTEM-VAL-001/arm64/**'])),
  );
  const suiteSeconds = paired.ours.ms / 1000;
  return {
    suiteSeconds,
    bootSeconds: paired.baseline.ms / 1000,
    exitCodes,
    suiteMet: suiteSeconds <= 20,
    ratio: paired.ratio,
    ratioMet: paired.ratio <= 3,
  };
}
