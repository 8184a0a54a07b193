// Timing helpers for the benchmarks: each figure is the median of a few repetitions, so one hiccup of
// a busy machine does not decide a ratio.

/** Loops run three times and report the median: the first warms the JIT, and one hiccup does not decide. */
export const REPETITIONS = 3;

export interface Measured {
  /** Median wall time of one repetition, in milliseconds. */
  ms: number;
  /** Every repetition, for the report. */
  samples: number[];
}

export async function measure(repetitions: number, body: () => Promise<void> | void): Promise<Measured> {
  const samples: number[] = [];
  for (let i = 0; i < repetitions; i++) {
    const t0 = performance.now();
    await body();
    samples.push(performance.now() - t0);
  }
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    ms: sorted[Math.floor(sorted.length / 2)]!,
    samples: samples.map((s) => Math.round(s * 1000) / 1000),
  };
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
export function costRatio(name: string, ours: number, baseline: number, unit: string, limit: number): Ratio {
  const ratio = ours / baseline;
  return { name, ours, baseline, unit, ratio, target: `<= ${limit}x`, met: ratio <= limit };
}

/** A share of throughput (higher is better): met when ours / baseline >= share. */
export function throughputShare(
  name: string,
  ours: number,
  baseline: number,
  unit: string,
  share: number,
): Ratio {
  const ratio = ours / baseline;
  return { name, ours, baseline, unit, ratio, target: `>= ${share * 100}%`, met: ratio >= share };
}
