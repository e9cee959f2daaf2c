/**
 * `fleet-provision rotate`: the device replaces its own certificate (see rotate()). With
 * `--if-expires-within <days>` it does nothing unless the current certificate expires within that
 * window, so a daily cron job or systemd timer can run it unconditionally.
 */
import { resolve } from 'node:path';
import { optional } from '../../internal/optional.js';
import { rotate } from '../../provision/rotate.js';
import { parseFlags } from '../args.js';
import type { CommandContext } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { Output } from '../output.js';
import { progressLine } from '../progress-text.js';
import { KEYS_CHOICES, parametersFrom, readPem } from '../provision-flags.js';
import { readSetStatus } from '../set-status.js';

/** `--help` of `rotate`. */
export const help = `Usage: fleet-provision rotate --out <dir> --template <name> [options]

Replace this device's certificate. Connects to the endpoint recorded in <dir>/device.json with the
current certificate, using the thing name as client id; gets a new certificate (a key made here by
default); registers it with the rotation template; connects with the new certificate; and only then
switches the files in <dir> to the new set, in one atomic step. Until then the current set stays in
place and usable. An interrupted run leaves the new set staged: run the same command again to finish.
The previous certificate stays ACTIVE in AWS: deactivate it once the device uses the new one.

Options:
  --out <dir>                  the device's credentials directory (required)
  --template <name>            the rotation template (attaches the new certificate to the thing)
  --param KEY=VALUE            template parameter; repeat for more
  --params-json <json>         template parameters as a JSON object of strings (--param wins)
  --ca <file>                  CA of the server certificate (PEM; default: Node's roots)
  --keys <source>              generate (EC P-256 made here, default) | ec-p256 | ec-p384 | rsa-2048
                               | rsa-3072 (made here, sent as a CSR) | server (CreateKeysAndCertificate)
  --format json|cbor           payload format (default json)
  --timeout <ms>               deadline of each connection and operation (default 30000)
  --retries <n>                retries of 429/5xx answers, timeouts and lost connections (default 3)
  --if-expires-within <days>   do nothing (exit 0) unless the certificate expires within <days> days
  --no-verify                  switch without connecting with the new certificate first
  --json                       print one JSON object on stdout; progress stays on stderr
  --quiet                      no progress on stderr (errors still show)
  --help                       show this help

Every flag can also come from the environment (FLEET_PROVISION_OUT, FLEET_PROVISION_TEMPLATE, …,
FLEET_PROVISION_IF_EXPIRES_WITHIN). The command line wins.

Exit codes: 0 rotated (or nothing to do); 1 unexpected; 2 usage, invalid argument or no complete set
in --out; 3 rejected; 4 timeout or aborted; 5 connection, subscribe, publish or TLS failure (also:
the broker refused the new certificate); 6 invalid response; 7 credentials could not be written.
In every failure the current set stays in place.

Example (a daily timer):
  fleet-provision rotate --out /etc/device/credentials --template RotationTemplate \\
    --param ThingName=sensor-0042 --ca AmazonRootCA1.pem --if-expires-within 30 --json`;

const DAY_MS = 24 * 60 * 60 * 1000;

const FLAGS = {
  out: { type: 'string', env: true },
  template: { type: 'string', env: true },
  param: { type: 'string', multiple: true, env: true },
  'params-json': { type: 'string', env: true },
  ca: { type: 'string', env: true },
  keys: { type: 'string', env: true },
  format: { type: 'string', env: true },
  timeout: { type: 'string', env: true },
  retries: { type: 'string', env: true },
  'if-expires-within': { type: 'string', env: true },
  'no-verify': { type: 'boolean', env: true },
  json: { type: 'boolean', env: true },
  quiet: { type: 'boolean', env: true },
} as const;

/** Run `rotate`; resolves with the exit code. Errors propagate to main's exit-code table. */
export async function run(argv: string[], context: CommandContext): Promise<number> {
  const flags = parseFlags('rotate', argv, FLAGS, context.env);
  const json = flags.boolean('json');
  const output = new Output({
    stdout: context.stdout,
    stderr: context.stderr,
    quiet: flags.boolean('quiet'),
  });
  const outDir = resolve(flags.required('out'));
  const templateName = flags.required('template');
  const word = flags.choice('keys', KEYS_CHOICES) ?? 'generate';
  // A key made here by default: a rotation is the moment to stop trusting a key that travelled.
  const keys = word === 'server' || word === 'generate' ? word : { generate: word };
  const parameters = parametersFrom(flags);
  const format = flags.choice('format', ['json', 'cbor'] as const);
  const timeoutMs = flags.integer('timeout', { min: 1 });
  const retries = flags.integer('retries', { min: 0, max: 99 });
  const window = flags.integer('if-expires-within', { min: 0 });
  const caCertificate = flags.has('ca') ? await readPem(flags, 'ca', 'CA certificate') : undefined;

  if (window !== undefined) {
    const status = await readSetStatus(outDir);
    const expiresInMs = status.expiresInMs;
    if (expiresInMs !== undefined && expiresInMs > window * DAY_MS) {
      output.note(
        `certificate ${status.certificateId ?? '(unknown)'} expires ${status.notAfter} (${status.daysLeft} days ` +
          `left), not within ${window} days: nothing to do`,
      );
      if (json) {
        output.printJson({
          rotated: false,
          ...optional('thingName', status.thingName),
          certificateId: status.certificateId,
          notAfter: status.notAfter,
          daysLeft: status.daysLeft,
        });
      }
      return EXIT.ok;
    }
  }

  const rotated = await rotate({
    outDir,
    templateName,
    keys,
    ...optional('parameters', parameters),
    ...optional('caCertificate', caCertificate),
    ...optional('format', format),
    ...optional('timeoutMs', timeoutMs),
    ...(retries === undefined ? {} : { retry: { attempts: retries + 1 } }),
    verify: !flags.boolean('no-verify'),
    signal: context.signal,
    onProgress: (event) =>
      output.status(
        event.step === 'connecting'
          ? `${'connecting'.padEnd(12)}connecting to ${event.endpoint} with the current certificate${event.attempt > 1 ? ` (connection ${event.attempt})` : ''}`
          : progressLine(event),
      ),
  });
  output.finish();
  for (const id of rotated.abandonedCertificateIds) {
    output.note(
      `certificate ${id} may be ACTIVE but was not kept: deactivate it (aws iot update-certificate --certificate-id ${id} --new-status INACTIVE)`,
    );
  }
  const after = await readSetStatus(outDir);
  if (json) {
    // Fields picked one by one: never the key, the certificate PEM or a token.
    const picked = {
      rotated: true,
      ...optional('thingName', rotated.thingName),
      certificateId: rotated.certificateId,
      previousCertificateId: rotated.previousCertificateId,
      ...optional('notAfter', after.notAfter),
      deviceConfiguration: rotated.deviceConfiguration,
      files: rotated.files,
      ...optional('verified', rotated.verified),
      abandonedCertificateIds: rotated.abandonedCertificateIds,
    };
    output.printJson(picked);
  } else if (output.mode !== 'quiet') {
    output.print(`rotated thing ${rotated.thingName ?? '(none)'}`);
    output.print(`  certificate id  ${rotated.certificateId}`);
    if (after.notAfter !== undefined) output.print(`  not after       ${after.notAfter}`);
    output.print(`  previous        ${rotated.previousCertificateId} (still ACTIVE: deactivate it)`);
    output.print(`  verified        ${rotated.verified === true ? 'yes' : 'not checked'}`);
  }
  return EXIT.ok;
}
