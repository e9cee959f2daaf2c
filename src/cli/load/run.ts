/**
 * The engine of `fleet-provision load`: N provision() calls, C at a time, each on its own connection,
 * timed one by one, and the report made of them.
 */
import { provision } from '../../provision/provision.js';
import type { ProvisionOptions } from '../../provision/types.js';
import { errorLabel } from '../exit-codes.js';
import { type HistogramBucket, histogram, type LatencySummary, summarize } from './stats.js';

/** The figures of a run, as `--report` and `--json` write them. */
export interface LoadReport {
  devices: number;
  concurrency: number;
  target: { endpoint: string; simulator: boolean };
  keys: string;
  format: string;
  startedAt: string;
  durationMs: number;
  succeeded: number;
  failed: number;
  failuresByCode: Record<string, number>;
  retries: number;
  throughputPerSecond: number;
  latencyMs: LatencySummary | null;
  histogram: HistogramBucket[];
}

/** What a run gave, before it is turned into a report. */
export interface LoadOutcome {
  startedAt: Date;
  durationMs: number;
  /** Per device that succeeded, from the start of its connect to its last answer. */
  latencies: number[];
  /** By error label (`REJECTED`, `TIMEOUT` …): how many, and the first error seen. */
  failures: Map<string, { count: number; first: unknown }>;
  retries: number;
  done: number;
}

/**
 * Provision `devices` devices with `options`, `concurrency` at a time. Never throws: every failure is
 * counted. Stops starting new devices once `signal` fires.
 */
export async function provisionMany(
  options: ProvisionOptions,
  run: {
    devices: number;
    concurrency: number;
    signal: AbortSignal;
    parametersFor: (index: number) => Record<string, string>;
    onDone: (done: number, failed: number) => void;
  },
): Promise<LoadOutcome> {
  const outcome: LoadOutcome = {
    startedAt: new Date(),
    durationMs: 0,
    latencies: [],
    failures: new Map(),
    retries: 0,
    done: 0,
  };
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < run.devices && !run.signal.aborted) {
      const index = next++;
      const begin = performance.now();
      try {
        await provision({
          ...options,
          parameters: run.parametersFor(index),
          signal: run.signal,
          onProgress: (event) => {
            if (event.step === 'retrying') outcome.retries++;
          },
        });
        outcome.latencies.push(performance.now() - begin);
      } catch (error) {
        const label = errorLabel(error);
        const entry = outcome.failures.get(label) ?? { count: 0, first: error };
        entry.count++;
        outcome.failures.set(label, entry);
      }
      outcome.done++;
      run.onDone(outcome.done, outcome.done - outcome.latencies.length);
    }
  };
  await Promise.all(Array.from({ length: run.concurrency }, worker));
  outcome.durationMs = performance.now() - started;
  return outcome;
}

/** The report of a run. */
export function loadReport(
  outcome: LoadOutcome,
  run: { devices: number; concurrency: number; options: ProvisionOptions; target: LoadReport['target'] },
): LoadReport {
  const { latencies, durationMs } = outcome;
  const keys = run.options.keys;
  return {
    devices: run.devices,
    concurrency: run.concurrency,
    target: run.target,
    keys: typeof keys === 'object' ? ('csr' in keys ? 'csr' : keys.generate) : (keys ?? 'server'),
    format: run.options.format ?? 'json',
    startedAt: outcome.startedAt.toISOString(),
    durationMs: Math.round(durationMs),
    succeeded: latencies.length,
    failed: outcome.done - latencies.length,
    failuresByCode: Object.fromEntries([...outcome.failures].map(([code, { count }]) => [code, count])),
    retries: outcome.retries,
    throughputPerSecond: Number((latencies.length / (durationMs / 1000)).toFixed(1)),
    latencyMs: roundSummary(summarize(latencies)),
    histogram: histogram(latencies).map((b) => ({ ...b, fromMs: round(b.fromMs), toMs: round(b.toMs) })),
  };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function roundSummary(summary: LatencySummary | undefined): LatencySummary | null {
  if (summary === undefined) return null;
  return {
    count: summary.count,
    min: round(summary.min),
    mean: round(summary.mean),
    p50: round(summary.p50),
    p90: round(summary.p90),
    p99: round(summary.p99),
    max: round(summary.max),
  };
}
