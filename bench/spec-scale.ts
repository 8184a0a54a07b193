// Generation (load + plan) and run time for a synthetic spec at 1x, 4x and 16x the size of spec/: every
// rule of every ioctl repeated under new IDs, so cases, checks and reports all grow by the factor.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultSpecRoot } from '../harness/paths.ts';
import { buildPlan } from '../harness/plan/plan.ts';
import { runSuite } from '../harness/run/runner.ts';
import { listSpecFiles, loadSpec } from '../harness/spec/loader.ts';
import type { Arch } from '../harness/spec/types.ts';
import { families } from '../suites/index.ts';
import { measure, REPETITIONS } from './measure.ts';

const ARCHES: Arch[] = ['x86_64'];

interface RuleJson {
  id: string;
}

/** A copy of spec/ where each ioctl's rules appear `factor` times (IDs API-KIND-NNN become API-KINDSYNTHA-NNN, …). */
function syntheticSpec(factor: number): string {
  const dir = mkdtempSync(path.join(tmpdir(), `kvmspec-scale-${factor}x-`));
  cpSync(defaultSpecRoot, dir, { recursive: true });
  for (const file of listSpecFiles(path.join(dir, 'ioctls'))) {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { rules: RuleJson[] };
    const copies = Array.from({ length: factor - 1 }, (_, c) =>
      doc.rules.map((r) => ({
        ...r,
        id: r.id.replace(/-([A-Z]+)-(\d{3})$/, `-$1SYNTH${String.fromCharCode(65 + c)}-$2`),
      })),
    );
    doc.rules = doc.rules.concat(...copies);
    writeFileSync(file, JSON.stringify(doc));
  }
  return dir;
}

export interface ScalePoint {
  factor: number;
  cases: number;
  generateMs: number;
  runMs: number;
}

export interface ScaleFigures {
  points: ScalePoint[];
  /** (time at k / time at 1x) / k: 1 is linear. */
  generateGrowth: Record<string, number>;
  runGrowth: Record<string, number>;
  met: boolean;
}

export async function specScaleBench(factors = [1, 4, 16]): Promise<ScaleFigures> {
  const points: ScalePoint[] = [];
  for (const factor of factors) {
    const root = syntheticSpec(factor);
    try {
      let cases = 0;
      const generate = await measure(REPETITIONS, () => {
        cases = buildPlan(loadSpec({ root }), families, { arches: ARCHES, revision: 'upstream' }).length;
      });
      const spec = loadSpec({ root });
      // A single run at 1x lasts tens of milliseconds, too short to be one sample.
      const run = await measure(REPETITIONS, async () => {
        await runSuite({ backend: 'reference', spec, arches: ARCHES });
      });
      points.push({ factor, cases, generateMs: generate.ms, runMs: run.ms });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  const base = points[0]!;
  const growth = (pick: (p: ScalePoint) => number) =>
    Object.fromEntries(
      points.slice(1).map((p) => [`${p.factor}x`, pick(p) / pick(base) / (p.factor / base.factor)]),
    );
  const generateGrowth = growth((p) => p.generateMs);
  const runGrowth = growth((p) => p.runMs);
  // Linear within 20%: no factor costs more than 1.2x its share; cheaper than linear is fine.
  const met = [...Object.values(generateGrowth), ...Object.values(runGrowth)].every((g) => g <= 1.2);
  return { points, generateGrowth, runGrowth, met };
}
