// npm run bench [-- --quick]: every ratio measured side by side in this one run; prints them and writes
// reports/bench.json. A missed target is printed with its figure; the exit code stays 0 (a benchmark
// on a busy machine is a measurement, not a gate).
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { linuxIoctlBench } from '../bench/linux-ioctl.ts';
import { REPETITIONS, type Ratio } from '../bench/measure.ts';
import { memopBench } from '../bench/memop.ts';
import { protocolBench } from '../bench/protocol.ts';
import { qemuBench } from '../bench/qemu.ts';
import { specScaleBench } from '../bench/spec-scale.ts';
import { suiteVsMocha } from '../bench/suite-vs-mocha.ts';
import { loadSpec } from '../harness/spec/loader.ts';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const scale = values.quick ? 0.1 : 1;
const spec = loadSpec();
const report: Record<string, unknown> = {
  at: new Date().toISOString(),
  host: { cpus: os.cpus().length, load: os.loadavg(), node: process.version },
};

const show = (r: Ratio) => {
  const figure = r.target.startsWith('>=') ? `${(r.ratio * 100).toFixed(1)}%` : `${r.ratio.toFixed(2)}x`;
  console.log(
    `${r.met ? 'met   ' : 'MISSED'} ${r.name}: ${r.ours.toFixed(1)} vs ${r.baseline.toFixed(1)} ${r.unit} = ${figure} (target ${r.target})${r.note ? `; ${r.note}` : ''}`,
  );
};

/** Runs one benchmark; a failure to run is recorded and printed, and the others still run. */
async function section<T>(name: string, body: () => Promise<T> | T, print: (v: T) => void): Promise<void> {
  try {
    const value = await body();
    report[name] = value;
    print(value);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    report[name] = { error: message };
    console.log(`ERROR  ${name}: ${message}`);
  }
}

await section('suiteVsMocha', () => suiteVsMocha(spec, REPETITIONS), show);
await section(
  'protocol',
  () => protocolBench(spec, Math.round(20000 * scale)),
  (p) => {
    show(p.roundTrip);
    console.log(
      `${p.pipelinedTargetMet ? 'met   ' : 'MISSED'} pipelined protocol calls: ${p.pipelinedCallsPerSecond} calls/s (target >= 50000)`,
    );
  },
);
await section(
  'linux',
  () => linuxIoctlBench(spec, Math.round(50000 * scale)),
  (rs) => rs.forEach(show),
);
if (spec.ioctls.has('KVM_S390_MEM_OP'))
  await section('memop', () => memopBench(spec, Math.round(2000 * scale)), show);
else console.log('skipped: 64 KiB memop (KVM_S390_MEM_OP is not in spec/)');
await section(
  'specScale',
  () => specScaleBench(),
  (s) => {
    for (const p of s.points)
      console.log(
        `       spec ${p.factor}x: ${p.cases} cases, generate ${p.generateMs.toFixed(0)} ms, run ${p.runMs.toFixed(0)} ms`,
      );
    const fmt = (g: Record<string, number>) =>
      Object.entries(g)
        .map(([k, v]) => `${k} ${v.toFixed(2)}`)
        .join(', ');
    console.log(
      `${s.met ? 'met   ' : 'MISSED'} spec growth (time per unit of size relative to 1x; 1 = linear, target <= 1.2): generate ${fmt(s.generateGrowth)}; run ${fmt(s.runGrowth)}`,
    );
  },
);
await section('qemuArm64', qemuBench, (q) => {
  if (q.skipped) return console.log(`skipped: ${q.skipped}`);
  console.log(
    `${q.suiteMet ? 'met   ' : 'MISSED'} arm64 suite in QEMU: ${q.suiteSeconds?.toFixed(1)} s from command start to exit (exit codes ${q.exitCodes?.join(', ')}; target <= 20 s)`,
  );
  console.log(
    `${q.ratioMet ? 'met   ' : 'MISSED'} arm64 suite vs the same boot for one case: ${q.suiteSeconds?.toFixed(1)} vs ${q.bootSeconds?.toFixed(1)} s = ${q.ratio?.toFixed(2)}x (target <= 3x)`,
  );
});

mkdirSync('reports', { recursive: true });
writeFileSync('reports/bench.json', `${JSON.stringify(report, null, 2)}\n`);
console.log('wrote reports/bench.json');
