/**
 * `fleet-provision doctor`: find what would break a factory run before the first device does. Offline, it
 * runs the AWS template and policies in in-process simulators; online, it checks a real endpoint without
 * publishing anything.
 */
import { readFile } from 'node:fs/promises';
import { optional } from '../../internal/optional.js';
import { type Flags, parseFlags } from '../args.js';
import type { CommandContext } from '../context.js';
import { type DoctorCheck, offlineChecks, templateNameFromPolicy } from '../doctor/offline.js';
import { onlineChecks } from '../doctor/online.js';
import { EXIT } from '../exit-codes.js';
import { Output } from '../output.js';
import { parametersFrom, readPem } from '../provision-flags.js';

/** `--help` of `doctor`. */
export const help = `Usage: fleet-provision doctor --template <file> --claim-policy <file> [--device-policy <file>]
                             [--param KEY=VALUE]... [--template-name <name>]
       fleet-provision doctor --endpoint <host|url> --claim-cert <file> --claim-key <file> [--ca <file>]
                             --template <name>

Check a Fleet Provisioning setup before a factory run meets it.

Offline (no network): runs the AWS provisioning template (the JSON create-provisioning-template takes)
and the IoT policies in a local simulator, and lists each problem a device would hit with the AWS error
it would get: a parameter the template needs and the device does not send, a reference that does not
resolve, a thing name AWS rejects, a claim policy that refuses a provisioning topic (SUBACK 0x80), a
device policy whose iot:Connect rule does not match the thing name the template makes.

Online: checks DNS, TCP on 8883 and 443, the TLS handshake with --ca (ALPN x-amzn-mqtt-ca on 443),
that the claim certificate is accepted, and that SUBSCRIBE to the four answer topics is allowed. It
never publishes a request, so it creates nothing in the account.

Options:
  --template <file|name>  offline: the template body (JSON); online: the template name
  --claim-policy <file>   the claim certificate's IoT policy (JSON)
  --device-policy <file>  the policy devices get (JSON; checked against the template's thing name)
  --param KEY=VALUE       a parameter the device sends; repeat for more
  --params-json <json>    parameters as a JSON object of strings (--param wins)
  --template-name <name>  offline: the name the template is created under (default: the one the claim
                          policy names, else FactoryTemplate)
  --client-id <id>        the MQTT client id devices use with the claim (default fleet-provision-doctor)
  --endpoint <host|url>   AWS IoT data endpoint, or mqtts://host:port
  --claim-cert <file>     claim certificate (PEM)
  --claim-key <file>      claim certificate's private key (PEM)
  --ca <file>             CA of the server certificate (PEM; default: Node's roots)
  --timeout <ms>          deadline of each network step (default 5000)
  --json                  print { mode, ok, checks: [{ check, ok, detail, awsError? }] } on stdout
  --help                  show this help

Exit codes: 0 nothing wrong; 2 usage; 3 offline problems found (AWS would reject); 5 online problems
found (DNS, port, TLS, claim certificate or SUBSCRIBE).

Examples:
  fleet-provision doctor --template template.json --claim-policy claim-policy.json \\
    --device-policy device-policy.json --param SerialNumber=SN-0001
  fleet-provision doctor --endpoint abc123-ats.iot.eu-west-1.amazonaws.com --template FactoryTemplate \\
    --claim-cert claim.pem.crt --claim-key claim.private.pem.key --ca AmazonRootCA1.pem`;

const FLAGS = {
  template: { type: 'string', env: true },
  'claim-policy': { type: 'string', env: true },
  'device-policy': { type: 'string', env: true },
  param: { type: 'string', multiple: true },
  'params-json': { type: 'string' },
  'template-name': { type: 'string' },
  'client-id': { type: 'string' },
  endpoint: { type: 'string', env: true },
  'claim-cert': { type: 'string', env: true },
  'claim-key': { type: 'string', env: true },
  ca: { type: 'string', env: true },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
} as const;

const TEMPLATE_NAME = /^[0-9A-Za-z_-]{1,36}$/;

/** Run `doctor`; resolves with the exit code. */
export async function run(argv: string[], context: CommandContext): Promise<number> {
  const flags = parseFlags('doctor', argv, FLAGS, context.env);
  const output = new Output({ stdout: context.stdout, stderr: context.stderr });
  const clientId = flags.string('client-id') ?? 'fleet-provision-doctor';
  const online = flags.has('endpoint');
  let checks: DoctorCheck[];
  let title: string;
  if (online) {
    const endpoint = flags.required('endpoint');
    const templateName = flags.string('template') ?? flags.string('template-name');
    if (templateName === undefined || !TEMPLATE_NAME.test(templateName)) {
      throw flags.usage('online mode needs --template <name> (1-36 of [0-9A-Za-z_-]).');
    }
    const caCertificate = flags.has('ca') ? await readPem(flags, 'ca', 'CA certificate') : undefined;
    title = `fleet-provision doctor (online): ${endpoint}, template ${templateName}`;
    checks = await onlineChecks({
      endpoint,
      claimCertificate: await readPem(flags, 'claim-cert', 'certificate'),
      claimPrivateKey: await readPem(flags, 'claim-key', 'private key'),
      ...optional('caCertificate', caCertificate),
      templateName,
      clientId,
      timeoutMs: flags.integer('timeout', { min: 1 }) ?? 5_000,
    });
  } else {
    const template = await readJson(flags, 'template');
    const claimPolicy = await readJson(flags, 'claim-policy');
    const devicePolicy = flags.has('device-policy') ? await readJson(flags, 'device-policy') : undefined;
    const parameters = parametersFrom(flags) ?? {};
    const templateName =
      flags.string('template-name') ?? templateNameFromPolicy(claimPolicy) ?? 'FactoryTemplate';
    if (!TEMPLATE_NAME.test(templateName)) {
      throw flags.usage(
        `--template-name must be 1-36 of [0-9A-Za-z_-], not ${JSON.stringify(templateName)}.`,
      );
    }
    const shown = Object.entries(parameters).map(([k, v]) => `${k}=${v}`);
    title = `fleet-provision doctor (offline): template ${templateName}, parameters ${shown.join(' ') || '(none)'}`;
    checks = await offlineChecks({
      template,
      claimPolicy,
      ...optional('devicePolicy', devicePolicy),
      parameters,
      templateName,
      clientId,
    });
  }
  const problems = checks.filter((c) => !c.ok);
  if (flags.boolean('json')) {
    const mode = online ? 'online' : 'offline';
    output.printJson({ mode, ok: problems.length === 0, checks });
  } else {
    output.print(title);
    for (const c of checks) {
      const aws = c.awsError === undefined ? '' : ` [${c.awsError}]`;
      output.print(`  ${c.ok ? 'ok  ' : 'FAIL'}  ${c.check}: ${c.detail}${aws}`);
    }
    output.print(
      problems.length === 0
        ? 'no problems found'
        : `${problems.length} problem${problems.length === 1 ? '' : 's'} found: a factory run would fail`,
    );
  }
  if (problems.length === 0) return EXIT.ok;
  return online ? EXIT.connection : EXIT.rejected;
}

async function readJson(flags: Flags, name: string): Promise<unknown> {
  const path = flags.required(name);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code =
      typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'error';
    throw flags.usage(`cannot read the --${name} file ${JSON.stringify(path)} (${code}).`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw flags.usage(`the --${name} file ${JSON.stringify(path)} is not valid JSON.`);
  }
}
