/**
 * `fleet-provision load`: provision N devices, C at a time, each on its own connection, and report
 * successes, failures by code, throughput and latency. Against an in-process simulator unless
 * `--endpoint` names a real one.
 */
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { provision } from '../../provision.js';
import type { ProvisionOptions } from '../../provision-options.js';
import { type Flags, parseFlags } from '../args.js';
import {
  CONNECTION_FLAGS_HELP,
  connectionFlagSpecs,
  provisionOptionsFrom,
  requestOptionsFrom,
} from '../connection-flags.js';
import type { CommandContext } from '../context.js';
import { EXIT, errorLabel, exitCodeOf } from '../exit-codes.js';
import { type HistogramBucket, histogram, type LatencySummary, summarize } from '../load-stats.js';
import { Output } from '../output.js';
import { ProgressBar } from '../progress-bar.js';
import { printSummary } from './load-summary.js';

/** `--help` of `load`. */
export const help = `Usage: fleet-provision load --devices N [--concurrency C] [--report <file>] [connection flags]

Provision N devices, C at a time, each on its own MQTT connection, with a progress bar on stderr, then
print successes, failures by code, throughput, latency percentiles and a latency histogram.
Without --endpoint it starts a simulator in this process (mutual TLS, server keys EC P-256). With
--endpoint it provisions real devices there: every one is a real thing and certificate.

Options:
  --devices <n>           how many devices to provision (required)
  --concurrency <c>       how many at a time (default 10)
  --report <file>         also write the figures as JSON
  --json                  print the figures as JSON on stdout instead of the summary
  --quiet                 no progress bar
${CONNECTION_FLAGS_HELP}
                          --template defaults to DemoTemplate; parameters default to
                          SerialNumber=load-<run>-<i>; "{i}" in a --param value becomes the device's number
  --help                  show this help

Exit codes: 0 when every device was provisioned; otherwise the exit code of the most frequent failure.

Example:
  fleet-provision load --devices 1000 --concurrency 100 --report load.json`;

const FLAGS = {
  ...connectionFlagSpecs(false),
  devices: { type: 'string' },
  concurrency: { type: 'string' },
  report: { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean' },
} as const;

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

/** Run the load test; resolves with the exit code. */
export async function run(argv: string[], context: CommandContext): Promise<number> {
  const flags = parseFlags('load', argv, FLAGS, context.env);
  const devices = flags.integer('devices', { min: 1, max: 1_000_000 });
  if (devices === undefined) throw flags.usage('missing required flag --devices.');
  const concurrency = Math.min(devices, flags.integer('concurrency', { min: 1, max: 10_000 }) ?? 10);
  const json = flags.boolean('json');
  const output = new Output({
    stdout: context.stdout,
    stderr: context.stderr,
    quiet: flags.boolean('quiet'),
  });
  const reportPath = flags.string('report');
  // Each provision() in flight listens for the abort: C at a time is expected, not a leak.
  setMaxListeners(concurrency * 4 + 10, context.signal);

  const simulated = !flags.has('endpoint');
  let close = async () => {};
  let base: ProvisionOptions & { endpoint: string };
  if (simulated) {
    base = await simulatorOptions(flags, (stop) => {
      close = stop;
    });
  } else {
    base = await provisionOptionsFrom(flags);
    output.warn(
      `load against ${base.endpoint} creates ${devices} real things and certificates there, ` +
        'and does not delete them.',
    );
  }

  try {
    const runId = randomBytes(3).toString('hex');
    const latencies: number[] = [];
    const failures = new Map<string, { count: number; example: unknown }>();
    let retries = 0;
    let next = 0;
    let done = 0;
    const bar = new ProgressBar(output, devices);
    const startedAt = new Date();
    const started = performance.now();
    const worker = async () => {
      while (next < devices && !context.signal.aborted) {
        const index = next++;
        const begin = performance.now();
        try {
          await provision({
            ...base,
            parameters: parametersFor(base.parameters, index, runId),
            signal: context.signal,
            onProgress: (event) => {
              if (event.step === 'retrying') retries++;
            },
          });
          latencies.push(performance.now() - begin);
        } catch (error) {
          const label = errorLabel(error);
          const entry = failures.get(label) ?? { count: 0, example: error };
          entry.count++;
          failures.set(label, entry);
        }
        done++;
        bar.update(done, done - latencies.length);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    output.finish();
    const durationMs = performance.now() - started;
    const report: LoadReport = {
      devices,
      concurrency,
      target: { endpoint: simulated ? 'in-process simulator' : base.endpoint, simulator: simulated },
      keys:
        typeof base.keys === 'object'
          ? 'csr' in base.keys
            ? 'csr'
            : base.keys.generate
          : (base.keys ?? 'server'),
      format: base.format ?? 'json',
      startedAt: startedAt.toISOString(),
      durationMs: Math.round(durationMs),
      succeeded: latencies.length,
      failed: done - latencies.length,
      failuresByCode: Object.fromEntries([...failures].map(([code, { count }]) => [code, count])),
      retries,
      throughputPerSecond: Number((latencies.length / (durationMs / 1000)).toFixed(1)),
      latencyMs: roundSummary(summarize(latencies)),
      histogram: histogram(latencies).map((b) => ({ ...b, fromMs: round(b.fromMs), toMs: round(b.toMs) })),
    };
    if (reportPath !== undefined) {
      await writeFile(resolve(reportPath), `${JSON.stringify(report, null, 2)}\n`);
    }
    if (json) output.printRaw(`${JSON.stringify(report, null, 2)}\n`);
    else printSummary(output, report, reportPath);
    for (const [code, { example }] of failures) {
      const message = example instanceof Error ? example.message : String(example);
      output.note(`first ${code}: ${message}`);
    }
    if (context.signal.aborted) return EXIT.timeout;
    const worst = [...failures.values()].sort((a, b) => b.count - a.count)[0];
    return worst === undefined ? EXIT.ok : exitCodeOf(worst.example);
  } finally {
    await close();
  }
}

/** A simulator in this process, and the options that reach it. */
async function simulatorOptions(
  flags: Flags,
  onClose: (close: () => Promise<void>) => void,
): Promise<ProvisionOptions & { endpoint: string }> {
  for (const name of ['claim-cert', 'claim-key', 'ca', 'client-id']) {
    if (flags.has(name))
      throw flags.usage(`--${name} needs --endpoint: the in-process simulator has its own.`);
  }
  const request = await requestOptionsFrom(flags, { templateName: 'DemoTemplate' });
  const { startSimulator } = await import('../../simulator/index.js');
  const sim = await startSimulator({ serverKeyType: 'ec-p256' });
  onClose(() => sim.close());
  return {
    ...request,
    endpoint: sim.url,
    caCertificate: sim.caCertificate,
    claimCertificate: sim.claimCertificate,
    claimPrivateKey: sim.claimPrivateKey,
  };
}

/** Each device's parameters: `{i}` replaced by its number, or a unique SerialNumber by default. */
function parametersFor(
  parameters: Record<string, string> | undefined,
  index: number,
  runId: string,
): Record<string, string> {
  if (parameters === undefined) return { SerialNumber: `load-${runId}-${index}` };
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(parameters)) out[key] = value.replaceAll('{i}', String(index));
  return out;
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
