/**
 * The figures of a load run: latency percentiles, a histogram, and how they are drawn in a terminal.
 */

/** Latency figures in ms. */
export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** One bar of the histogram: latencies in [fromMs, toMs) (the last bar includes toMs). */
export interface HistogramBucket {
  fromMs: number;
  toMs: number;
  count: number;
}

/** The nearest-rank percentile of ascending values: the smallest value with p% at or below it. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

/** Percentiles and extremes of `latencies`, or undefined when there are none. */
export function summarize(latencies: readonly number[]): LatencySummary | undefined {
  if (latencies.length === 0) return undefined;
  const sorted = [...latencies].sort((a, b) => a - b);
  const sum = sorted.reduce((total, value) => total + value, 0);
  return {
    count: sorted.length,
    min: sorted[0] ?? Number.NaN,
    mean: sum / sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

/**
 * `bars` buckets from the fastest to the slowest latency: geometric when they span more than a factor
 * of 8 (latencies have long tails, and linear bars would put nearly everything in the first), linear
 * otherwise.
 */
export function histogram(latencies: readonly number[], bars = 12): HistogramBucket[] {
  if (latencies.length === 0) return [];
  // A loop, not Math.min(...values): spreading a million latencies overflows the stack.
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const value of latencies) {
    if (value < min) min = value;
    if (value > max) max = value;
  }
  if (max - min < 1e-9) return [{ fromMs: min, toMs: max, count: latencies.length }];
  const geometric = min > 0 && max / min > 8;
  const edge = (i: number) => (geometric ? min * (max / min) ** (i / bars) : min + ((max - min) * i) / bars);
  const buckets: HistogramBucket[] = [];
  for (let i = 0; i < bars; i++) buckets.push({ fromMs: edge(i), toMs: edge(i + 1), count: 0 });
  for (const value of latencies) {
    let index = buckets.findIndex((b) => value < b.toMs);
    if (index === -1) index = bars - 1;
    const bucket = buckets[index];
    if (bucket !== undefined) bucket.count++;
  }
  return buckets;
}

/** A latency in ms as people read it: `0.84`, `12.3`, `512`. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (ms < 10) return ms.toFixed(2);
  if (ms < 100) return ms.toFixed(1);
  return Math.round(ms).toString();
}

/** The histogram as lines: `   80 –  120 ms │█████▌          12`. */
export function drawHistogram(buckets: readonly HistogramBucket[], width = 40): string[] {
  const most = Math.max(1, ...buckets.map((b) => b.count));
  const from = buckets.map((b) => formatMs(b.fromMs));
  const to = buckets.map((b) => formatMs(b.toMs));
  const fromWidth = Math.max(...from.map((s) => s.length));
  const toWidth = Math.max(...to.map((s) => s.length));
  return buckets.map((bucket, i) => {
    const cells = (bucket.count / most) * width;
    const whole = Math.floor(cells);
    // A half block for a remainder, and at least a sliver for any non-empty bar.
    const tail = cells - whole >= 0.5 || (bucket.count > 0 && whole === 0) ? '▌' : '';
    const bar = '█'.repeat(whole) + tail;
    return `${(from[i] ?? '').padStart(fromWidth)} – ${(to[i] ?? '').padStart(toWidth)} ms │${bar.padEnd(width + 1)} ${bucket.count}`;
  });
}
