/**
 * The figures `fleet-provision load` reports: nearest-rank percentiles, histogram buckets that hold every
 * latency exactly once, and the bars drawn from them. (Pure functions; kept beside the CLI's tests.)
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { drawHistogram, formatMs, histogram, percentile, summarize } from '../../src/cli/load/stats.js';

describe('load statistics', () => {
  it('takes nearest-rank percentiles', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 90)).toBe(90);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
    expect(summarize([30, 10, 20])).toEqual({
      count: 3,
      min: 10,
      mean: 20,
      p50: 20,
      p90: 30,
      p99: 30,
      max: 30,
    });
    expect(summarize([])).toBeUndefined();
  });

  it('puts every latency in exactly one bucket, in order, from min to max', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.01, max: 60_000, noNaN: true }), { minLength: 1, maxLength: 300 }),
        (values) => {
          const buckets = histogram(values);
          expect(buckets.reduce((sum, b) => sum + b.count, 0)).toBe(values.length);
          expect(buckets[0]?.fromMs).toBe(Math.min(...values));
          expect(buckets.at(-1)?.toMs).toBeCloseTo(Math.max(...values), 6);
          for (let i = 1; i < buckets.length; i++) {
            expect(buckets[i]?.fromMs).toBeCloseTo(buckets[i - 1]?.toMs ?? Number.NaN, 6);
          }
        },
      ),
    );
  });

  it('spaces buckets geometrically over a long tail, linearly otherwise', () => {
    const tail = histogram([1, 2, 3, 1000], 3);
    expect(tail.map((b) => Math.round(b.toMs))).toEqual([10, 100, 1000]);
    const narrow = histogram([100, 150, 200], 2);
    expect(narrow.map((b) => b.toMs)).toEqual([150, 200]);
    expect(narrow.map((b) => b.count)).toEqual([1, 2]);
  });

  it('draws bars scaled to the fullest bucket, with a sliver for any non-empty one', () => {
    const lines = drawHistogram(
      [
        { fromMs: 10, toMs: 20, count: 100 },
        { fromMs: 20, toMs: 30, count: 1 },
        { fromMs: 30, toMs: 40, count: 0 },
      ],
      10,
    );
    expect(lines[0]).toBe('10.0 – 20.0 ms │██████████  100');
    expect(lines[1]).toBe('20.0 – 30.0 ms │▌           1');
    expect(lines[2]).toBe('30.0 – 40.0 ms │            0');
    expect(formatMs(0.844)).toBe('0.84');
    expect(formatMs(1234.4)).toBe('1234');
  });
});
