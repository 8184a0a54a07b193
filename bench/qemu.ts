// The arm64 suite inside QEMU, from command start (warm cache) to exit, when `npm run setup:qemu` has
// run; and the same command booting the same machine for one trivial case, which stands in for a boot
// whose agent exits at once (boot, handshake, one call, power-off).
//
// The suite runs as docs/qemu-backends.md recommends, on two machines (`--jobs 2`): a machine's one
// emulated CPU keeps one host core busy, and these hosts have two. The one-machine run is measured too,
// paired with the same boot, and reported beside it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { measurePairs, REPETITIONS } from './measure.ts';

const root = path.resolve(import.meta.dirname, '..');
const QEMU_SUITE_JOBS = 2;

export interface QemuFigures {
  skipped?: string;
  jobs?: number;
  suiteSeconds?: number;
  bootSeconds?: number;
  exitCodes?: (number | null)[];
  suiteMet?: boolean;
  ratio?: number;
  ratioMet?: boolean;
  /** The same suite on one machine (no --jobs), and its ratio to the one-case boot of its own pairs. */
  oneMachineSeconds?: number;
  oneMachineRatio?: number;
}

function run(extra: string[]): number | null {
  return spawnSync(
    process.execPath,
    [path.join(root, 'bin/kvmspec.js'), 'run', '--backend', 'qemu-arm64', '--arch', 'arm64', ...extra],
    { cwd: root, stdio: 'ignore' },
  ).status;
}

/** Each suite run alternates with a one-case boot, pair by pair (see measurePairs): about three minutes. */
export async function qemuBench(): Promise<QemuFigures> {
  if (!existsSync(path.join(root, '.cache/qemu/arm64/kernel'))) return { skipped: 'run npm run setup:qemu' };
  const exitCodes: (number | null)[] = [];
  const oneCase = () => void exitCodes.push(run(['--filter', 'SYSTEM/SYSTEM-VAL-001/arm64/**']));
  const parallel = await measurePairs(
    REPETITIONS,
    () => void exitCodes.push(run(['--jobs', String(QEMU_SUITE_JOBS)])),
    oneCase,
  );
  const single = await measurePairs(REPETITIONS, () => void exitCodes.push(run([])), oneCase);
  const suiteSeconds = parallel.ours.ms / 1000;
  return {
    jobs: QEMU_SUITE_JOBS,
    suiteSeconds,
    bootSeconds: parallel.baseline.ms / 1000,
    exitCodes,
    suiteMet: suiteSeconds <= 20,
    ratio: parallel.ratio,
    ratioMet: parallel.ratio <= 3,
    oneMachineSeconds: single.ours.ms / 1000,
    oneMachineRatio: single.ratio,
  };
}
