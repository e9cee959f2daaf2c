/**
 * `fleet-provision demo` (what `npm start` runs): one device end to end against an in-process simulator
 * over mutual TLS, each step printed, the files in a fresh folder, and a reconnect with the new
 * certificate to prove it works. Needs nothing but `npm install`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { provision } from '../../provision/provision.js';
import { parseFlags } from '../args.js';
import type { CommandContext } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { Output } from '../output.js';
import { describeProgress } from '../progress-text.js';

/** `--help` of `demo`. */
export const help = `Usage: fleet-provision demo [--keys generate|server] [--format json|cbor] [--out <dir>]

Provision one device end to end against a simulator started in this process (mutual TLS, its own CA):
make a key here, get a certificate for it, register the thing, write the credentials to a fresh folder,
then reconnect with the new certificate. Each step is printed. \`npm start\` runs this.

Options:
  --keys generate|server  generate (default): an EC P-256 key made here, sent as a CSR, so the private
                          key never crosses the network; server: CreateKeysAndCertificate
  --format json|cbor      payload format (default json)
  --out <dir>             where to write the device's files (default: a new folder under ${tmpdir()})
  --help                  show this help

Example:
  fleet-provision demo --keys server --format cbor`;

const FLAGS = {
  keys: { type: 'string' },
  format: { type: 'string' },
  out: { type: 'string' },
} as const;

/** Run the demonstration; exit 0 only when the new certificate connected. */
export async function run(argv: string[], context: CommandContext): Promise<number> {
  const flags = parseFlags('demo', argv, FLAGS, context.env);
  const keys = flags.choice('keys', ['generate', 'server'] as const) ?? 'generate';
  const format = flags.choice('format', ['json', 'cbor'] as const) ?? 'json';
  const outFlag = flags.string('out');
  // The demo's output is its result: plain lines on stdout, readable in a terminal and in a log.
  const output = new Output({ stdout: context.stdout, stderr: context.stderr });
  let n = 0;
  const step = (name: string, text: string) =>
    output.print(`  ${String(++n).padStart(2)}. ${name.padEnd(12)}${text}`);
  const started = performance.now();

  output.print('fleet-provision demo: one device, end to end, against a local AWS IoT simulator');
  output.print('');
  const { startSimulator } = await import('../../simulator/index.js');
  const sim = await startSimulator({ serverKeyType: 'ec-p256' });
  try {
    // Made only once the simulator runs, so that a failed start leaves no empty folder behind.
    const out =
      outFlag === undefined ? await mkdtemp(join(tmpdir(), 'fleet-provision-demo-')) : resolve(outFlag);
    step('simulator', `listening on ${sim.url} (mutual TLS, its own CA, template DemoTemplate)`);
    const serial = `demo-${randomBytes(3).toString('hex')}`;
    const device = await provision({
      endpoint: sim.url,
      caCertificate: sim.caCertificate,
      claimCertificate: sim.claimCertificate,
      claimPrivateKey: sim.claimPrivateKey,
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: serial },
      keys,
      format,
      outDir: out,
      verify: true,
      signal: context.signal,
      onProgress: (event) => {
        const { step: name, text } = describeProgress(event);
        step(name, text);
      },
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    output.print('');
    const record = sim.certificates().find((c) => c.certificateId === device.certificateId);
    output.print(
      `The simulator now has thing ${device.thingName ?? '(none)'} with certificate ` +
        `${device.certificateId.slice(0, 12)}… (${record?.status ?? 'unknown'}), issued by ${record?.issuedBy ?? '?'}.`,
    );
    output.print(
      keys === 'generate'
        ? 'Keys: generated on this machine (EC P-256); only the CSR crossed the network.'
        : 'Keys: made by the service (CreateKeysAndCertificate) and sent over the claim connection.',
    );
    output.print(`The device's files (${out}):`);
    const files = device.files;
    for (const path of [files?.certificate, files?.privateKey, files?.deviceJson]) {
      if (path === undefined) continue;
      const mode = ((await stat(path)).mode & 0o777).toString(8).padStart(4, '0');
      output.print(`  ${path}  (mode ${mode})`);
    }
    output.print('');
    if (device.verified !== true) {
      output.error('the broker refused the new certificate.');
      return EXIT.connection;
    }
    output.print(`Done in ${seconds} s: provisioned, saved, and the new certificate connects.`);
    output.print('Next: `fleet-provision simulate` runs the simulator on its own; see docs/cli.md.');
    return EXIT.ok;
  } finally {
    await sim.close();
  }
}
