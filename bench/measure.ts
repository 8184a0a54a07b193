// Timing helpers for the benchmarks: each figure is the median of a few repetitions, so one hiccup of
// a busy machine does not decide a ratio.

/**
 * Loops run five times and report the median: the first warms the JIT, and two hiccups do not decide (with
 * three, one slow spell of this shared machine moved a paired ratio by a third from run to run).
 */
export const REPETITIONS = 5;

export interface Measured {
  /** Median wall time of one repetition, in milliseconds. */
  ms: number;
  /** Every repetition, for the report. */
  samples: number[];
}

/** The middle sample (the upper middle of an even count). */
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function summary(samples: number[]): Measured {
  return { ms: median(samples), samples: samples.map((s) => Math.round(s * 1000) / 1000) };
}

async function timed(body: () => Promise<void> | void): Promise<number> {
  const t0 = performance.now();
  await body();
  return performance.now() - t0;
}

export async function measure(repetitions: number, body: () => Promise<void> | void): Promise<Measured> {
  const samples: number[] = [];
  for (let i = 0; i < repetitions; i++) samples.push(await timed(body));
  return summary(samples);
}

export interface Paired {
  ours: Measured;
  baseline: Measured;
  /** The median of each pair's ours / baseline. */
  ratio: number;
}

/**
 * Ours and its baseline timed in alternation, pair by pair. A shared machine has slow spells of seconds to
 * minutes; one slows both halves of a pair, so the ratio of each pair holds where two medians taken apart
 * drift (a memop share of 24 % in one run, 17 % in the next).
 */
export async function measurePairs(
  repetitions: number,
  ours: () => Promise<void> | void,
  baseline: () => Promise<void> | void,
): Promise<Paired> {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < repetitions; i++) {
    a.push(await timed(ours));
    b.push(await timed(baseline));
  }
  return { ours: summary(a), baseline: summary(b), ratio: median(a.map((x, i) => x / b[i]!)) };
}

/** One comparison: ours against a baseline, with the target the ratio must meet. */
export interface Ratio {
  name: string;
  ours: number;
  baseline: number;
  unit: string;
  /** ours / baseline (or baseline / ours for throughput, see `higherIsBetter`). */
  ratio: number;
  target: string;
  met: boolean;
  note?: string;
}

/** A ratio of costs (lower is better): met when ours / baseline <= limit. */
export function costRatio(
  name: string,
  ours: number,
  baseline: number,
  unit: string,
  limit: number,
  ratio = ours / baseline,
): Ratio {
  return { name, ours, baseline, unit, ratio, target: `<= ${limit}x`, met: ratio <= limit };
}

/** A share of throughput (higher is better): met when ours / baseline >= share. */
export function throughputShare(
  name: string,
  ours: number,
  baseline: number,
  unit: string,
  share: number,
  ratio = ours / baseline,
): Ratio {
  return { name, ours, baseline, unit, ratio, target: `>= ${share * 100}%`, met: ratio >= share };
}
