// npm run bench [-- --quick] [--only memop,linux] [--out file] [--timeout seconds]: every ratio measured
// side by side in this one run; prints them and writes reports/bench.json (or --out). A missed target is
// printed with its figure and the exit code stays 0 (a benchmark on a busy machine is a measurement, not
// a gate); a benchmark that crashes or outlives --timeout is recorded as an error, the others still run,
// and the exit code is 1.
//
// Each benchmark runs in a process of its own (this script with --section), as JMH forks one per
// benchmark: V8 optimises code for what it has seen, and a memop timed after three whole suite runs ran
// at 10 us a call instead of 6, slowed by type feedback from every other API.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { linuxIoctlBench } from '../bench/linux-ioctl.ts';
import { REPETITIONS, type Ratio } from '../bench/measure.ts';
import { memopBench } from '../bench/memop.ts';
import { protocolBench, type ProtocolFigures } from '../bench/protocol.ts';
import { qemuBench, type QemuFigures } from '../bench/qemu.ts';
import { specScaleBench, type ScaleFigures } from '../bench/spec-scale.ts';
import { suiteVsMocha } from '../bench/suite-vs-mocha.ts';
import { writeReportsAtomically } from '../harness/report/write.ts';
import { loadSpec } from '../harness/spec/loader.ts';
import { parseScriptArgs, positive, usage } from './args.ts';

const { values } = parseScriptArgs('bench', {
  quick: { type: 'boolean', default: false },
  only: { type: 'string' },
  out: { type: 'string', default: 'reports/bench.json' },
  // The QEMU pairs take about a minute; ten is far beyond any benchmark that is still working.
  timeout: { type: 'string', default: '600' },
  section: { type: 'string' },
});
const scale = values.quick ? 0.1 : 1;

const show = (r: Ratio) => {
  const figure = r.target.startsWith('>=') ? `${(r.ratio * 100).toFixed(1)}%` : `${r.ratio.toFixed(2)}x`;
  console.log(
    `${r.met ? 'met   ' : 'MISSED'} ${r.name}: ${r.ours.toFixed(1)} vs ${r.baseline.toFixed(1)} ${r.unit} = ${figure} (target ${r.target})${r.note ? `; ${r.note}` : ''}`,
  );
};

interface Section {
  run: () => Promise<unknown>;
  /** Prints the figures the child wrote as JSON: the shape its own `run` returned. */
  print: (value: unknown) => void;
}
const section = <T>(run: () => Promise<T>, print: (value: T) => void): Section => ({
  run,
  print: (value) => print(value as T),
});

const SECTIONS: Record<string, Section> = {
  suiteVsMocha: section(() => suiteVsMocha(loadSpec(), REPETITIONS), show),
  protocol: section(
    () => protocolBench(loadSpec(), Math.round(20000 * scale)),
    (p: ProtocolFigures) => {
      show(p.roundTrip);
      console.log(
        `${p.pipelinedTargetMet ? 'met   ' : 'MISSED'} pipelined protocol calls: ${p.pipelinedCallsPerSecond} calls/s (target >= 50000)`,
      );
    },
  ),
  linux: section(
    () => linuxIoctlBench(loadSpec(), Math.round(50000 * scale)),
    (rs: Ratio[]) => rs.forEach(show),
  ),
  memop: section(async () => {
    const spec = loadSpec();
    if (!spec.ioctls.has('KVM_S390_MEM_OP')) throw new Error('KVM_S390_MEM_OP is not in spec/');
    return memopBench(spec, Math.round(20000 * scale));
  }, show),
  specScale: section(
    () => specScaleBench(),
    (s: ScaleFigures) => {
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
  ),
  qemuArm64: section(qemuBench, (q: QemuFigures) => {
    if (q.skipped) return console.log(`skipped: ${q.skipped}`);
    console.log(
      `${q.suiteMet ? 'met   ' : 'MISSED'} arm64 suite in QEMU (--jobs ${q.jobs}): ${q.suiteSeconds?.toFixed(1)} s from command start to exit (exit codes ${q.exitCodes?.join(', ')}; target <= 20 s)`,
    );
    console.log(
      `${q.ratioMet ? 'met   ' : 'MISSED'} arm64 suite vs the same boot for one case: ${q.suiteSeconds?.toFixed(1)} vs ${q.bootSeconds?.toFixed(1)} s = ${q.ratio?.toFixed(2)}x (target <= 3x); on one machine ${q.oneMachineSeconds?.toFixed(1)} s = ${q.oneMachineRatio?.toFixed(2)}x`,
    );
  }),
};

const known = Object.keys(SECTIONS);
if (values.section !== undefined) {
  // The child: one benchmark, its figures as JSON on stdout.
  const chosen =
    SECTIONS[values.section] ??
    usage('bench', `no benchmark ${values.section}; there are ${known.join(', ')}`);
  process.stdout.write(JSON.stringify(await chosen.run()));
} else {
  const names = values.only?.split(',') ?? known;
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0)
    usage('bench', `--only: no benchmark ${unknown.join(', ')}; there are ${known.join(', ')}`);
  const timeoutSeconds = positive('bench', 'timeout', values.timeout);
  const report: Record<string, unknown> = {
    at: new Date().toISOString(),
    host: { cpus: os.cpus().length, load: os.loadavg(), node: process.version },
  };
  let failed = 0;
  for (const name of names) {
    const child = spawnSync(
      process.execPath,
      [...process.execArgv, import.meta.filename, '--section', name, ...(values.quick ? ['--quick'] : [])],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        maxBuffer: 1 << 24,
        timeout: timeoutSeconds * 1000,
        killSignal: 'SIGKILL',
      },
    );
    // A benchmark that fails to run is recorded and printed, and the others still run.
    try {
      if (child.error) {
        const code = (child.error as NodeJS.ErrnoException).code;
        throw new Error(code === 'ETIMEDOUT' ? `timed out after ${timeoutSeconds} s` : child.error.message);
      }
      if (child.status !== 0) throw new Error(child.stderr.trim().split('\n').slice(-3).join(' / '));
      const value: unknown = JSON.parse(child.stdout);
      report[name] = value;
      SECTIONS[name]!.print(value);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      report[name] = { error: message };
      failed++;
      console.log(`ERROR  ${name}: ${message}`);
    }
  }
  writeReportsAtomically([{ path: values.out, content: `${JSON.stringify(report, null, 2)}\n` }]);
  console.log(`wrote ${values.out}`);
  if (failed > 0) process.exitCode = 1;
}
