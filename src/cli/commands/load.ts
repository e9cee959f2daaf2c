/**
 * `fleet-provision load`: provision N devices, C at a time, each on its own connection, and report
 * successes, failures by code, throughput and latency. Against an in-process simulator unless
 * `--endpoint` names a real one.
 */
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { withoutCredentials } from '../../provision/endpoint.js';
import type { ProvisionOptions } from '../../provision/types.js';
import { type Flags, parseFlags } from '../args.js';
import type { CommandContext } from '../context.js';
import { EXIT, exitCodeOf } from '../exit-codes.js';
import { ProgressBar } from '../load/progress-bar.js';
import { loadReport, provisionMany } from '../load/run.js';
import { printSummary } from '../load/summary.js';
import { Output } from '../output.js';
import {
  CONNECTION_FLAGS_HELP,
  connectionFlagSpecs,
  provisionOptionsFrom,
  requestOptionsFrom,
} from '../provision-flags.js';

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
                          Without --endpoint, --template defaults to DemoTemplate (the simulator's);
                          with --endpoint it is required. Parameters default to
                          SerialNumber=load-<run>-<i>; "{i}" in a --param value becomes the device's number;
                          --client-id is refused: every device connects with its own
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

/** Run the load test; resolves with the exit code. */
export async function run(argv: string[], context: CommandContext): Promise<number> {
  const flags = parseFlags('load', argv, FLAGS, context.env);
  const devices = flags.integer('devices', { min: 1, max: 1_000_000 });
  if (devices === undefined) throw flags.usage('missing required flag --devices.');
  const concurrency = Math.min(devices, flags.integer('concurrency', { min: 1, max: 10_000 }) ?? 10);
  if (flags.has('client-id')) {
    throw flags.usage('--client-id cannot be used with load: every device needs its own client id.');
  }
  const json = flags.boolean('json');
  const quiet = flags.boolean('quiet');
  const output = new Output({ stdout: context.stdout, stderr: context.stderr, quiet });
  const reportPath = flags.string('report');
  // Each provision() in flight listens for the abort: C at a time is expected, not a leak.
  setMaxListeners(concurrency * 4 + 10, context.signal);

  const target = flags.has('endpoint')
    ? await endpointTarget(flags, (line) => output.warn(line))
    : await simulatorTarget(flags);
  if (!target.simulator) {
    output.warn(
      `load against ${withoutCredentials(target.options.endpoint)} creates ${devices} real things and certificates there, ` +
        'and does not delete them.',
    );
  }
  try {
    const runId = randomBytes(3).toString('hex');
    const bar = new ProgressBar(output, devices);
    const outcome = await provisionMany(target.options, {
      devices,
      concurrency,
      signal: context.signal,
      parametersFor: (index) => parametersFor(target.options.parameters, index, runId),
      onDone: (done, failed) => bar.update(done, failed),
    });
    output.finish();
    const report = loadReport(outcome, {
      devices,
      concurrency,
      options: target.options,
      target: {
        endpoint: target.simulator ? 'in-process simulator' : target.options.endpoint,
        simulator: target.simulator,
      },
    });
    if (reportPath !== undefined)
      await writeFile(resolve(reportPath), `${JSON.stringify(report, null, 2)}\n`);
    if (json) output.printJson(report);
    else printSummary(output, report, reportPath);
    for (const [code, { first }] of outcome.failures) {
      output.note(`first ${code}: ${first instanceof Error ? first.message : String(first)}`);
    }
    if (context.signal.aborted) return EXIT.timeout;
    const worst = [...outcome.failures.values()].sort((a, b) => b.count - a.count)[0];
    return worst === undefined ? EXIT.ok : exitCodeOf(worst.first);
  } finally {
    await target.close();
  }
}

/** Where the devices are provisioned, and how to let go of it. */
interface Target {
  options: ProvisionOptions & { endpoint: string };
  simulator: boolean;
  close(): Promise<void>;
}

async function endpointTarget(flags: Flags, warn: (line: string) => void): Promise<Target> {
  return { options: await provisionOptionsFrom(flags, warn), simulator: false, close: async () => {} };
}

/** A simulator in this process (EC P-256 server keys: RSA key generation would dominate the figures). */
async function simulatorTarget(flags: Flags): Promise<Target> {
  for (const name of ['claim-cert', 'claim-key', 'ca', 'insecure']) {
    if (flags.has(name))
      throw flags.usage(`--${name} needs --endpoint: the in-process simulator has its own.`);
  }
  const request = await requestOptionsFrom(flags, { templateName: 'DemoTemplate' });
  const { startSimulator } = await import('../../simulator/index.js');
  const sim = await startSimulator({ serverKeyType: 'ec-p256' });
  return {
    options: {
      ...request,
      endpoint: sim.url,
      caCertificate: sim.caCertificate,
      claimCertificate: sim.claimCertificate,
      claimPrivateKey: sim.claimPrivateKey,
    },
    simulator: true,
    close: () => sim.close(),
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
