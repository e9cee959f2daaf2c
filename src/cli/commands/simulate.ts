/**
 * `fleet-provision simulate`: the local simulator as a long-running process, for trying the CLI or a
 * device's own code against something that behaves like AWS IoT. Stops cleanly on SIGINT/SIGTERM.
 */
import { readFile } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { z } from 'zod/mini';
import { optional } from '../../internal/optional.js';
import { InvalidArgumentError } from '../../protocol/errors.js';
import type {
  AnswerEvent,
  AwsProvisioningTemplate,
  RequestLogEntry,
  TemplateDefinition,
} from '../../simulator/index.js';
import { type Flags, parseFlags } from '../args.js';
import type { CommandContext } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { Output } from '../output.js';

/** `--help` of `simulate`. */
export const help = `Usage: fleet-provision simulate [--port N] [--host H] [--no-tls] [--templates <file>] [--out <dir>]

Run a local AWS IoT Fleet Provisioning simulator until Ctrl-C (SIGINT) or SIGTERM. It prints its
endpoint, writes the CA, claim certificate and claim key clients need to --out, and prints one line
per request it answers. --out also keeps the simulator's own CA and server keys, and the next start
reuses them, so the CA and claim files clients hold stay valid across restarts. Things and
certificates it registered live in memory only.

Options:
  --port <n>              port to listen on (default 8883; 0 picks a free one)
  --host <address>        interface to listen on (default 127.0.0.1)
  --no-tls                plain MQTT instead of mutual TLS (no claim certificate needed)
  --templates <file>      JSON: { "<name>": <template> }, where a template is AWS's template body
                          (as create-provisioning-template --template-body takes it), or
                          { "templateBody": <body>, "preProvisioningHook": { "command": ["node", "hook.js"] } },
                          or the simple form { "thingName": "sensor-{{SerialNumber}}",
                          "deviceConfiguration": { "k": "v" }, "requiredParameters": ["SerialNumber"],
                          "certificateStatus": "ACTIVE" }. A file holding one AWS template body is
                          served under its file name (FactoryTemplate.json → FactoryTemplate).
                          (default: DemoTemplate, thing = SerialNumber)
  --claim-policy <file>   the claim certificate's IoT policy (JSON), enforced on claim connections
  --out <dir>             where to write ca.pem.crt, claim.pem.crt, claim.private.pem.key
                          (default ./simulator)
  --server-key <type>     key type CreateKeysAndCertificate makes: rsa-2048 (as AWS, default) | ec-p256
  --requests-per-second <n>  answer 429 ThrottlingException beyond this rate
  --certificate-validity-days <n>  issue device certificates valid for n days (default: until 2049)
  --quiet                 do not print a line per request
  --help                  show this help

Example:
  fleet-provision simulate --port 0 --out ./simulator &
  fleet-provision provision --endpoint mqtts://127.0.0.1:<port> --ca ./simulator/ca.pem.crt \\
    --claim-cert ./simulator/claim.pem.crt --claim-key ./simulator/claim.private.pem.key \\
    --template DemoTemplate --param SerialNumber=SN-1`;

const FLAGS = {
  port: { type: 'string' },
  host: { type: 'string' },
  'no-tls': { type: 'boolean' },
  templates: { type: 'string' },
  'claim-policy': { type: 'string' },
  out: { type: 'string' },
  'server-key': { type: 'string' },
  'requests-per-second': { type: 'string' },
  'certificate-validity-days': { type: 'string' },
  quiet: { type: 'boolean' },
} as const;

const CommandHookSchema = z.strictObject({ command: z.array(z.string()).check(z.minLength(1)) });
const AwsBodySchema = z.looseObject({ Resources: z.record(z.string(), z.unknown()) });
const WrappedTemplateSchema = z.strictObject({
  templateBody: z.union([AwsBodySchema, z.string()]),
  preProvisioningHook: z.optional(CommandHookSchema),
});
const SimpleTemplateSchema = z.strictObject({
  thingName: z.optional(z.string()),
  deviceConfiguration: z.optional(z.record(z.string(), z.string())),
  requiredParameters: z.optional(z.array(z.string())),
  certificateStatus: z.optional(z.enum(['ACTIVE', 'INACTIVE'])),
  preProvisioningHook: z.optional(CommandHookSchema),
});
/** One entry of a templates file, by its shape: an AWS body, a wrapped body, or the simple form. */
const TemplateEntrySchema = z.union([AwsBodySchema, WrappedTemplateSchema, SimpleTemplateSchema]);

function entrySchema(value: unknown) {
  if (typeof value === 'object' && value !== null && 'Resources' in value) return AwsBodySchema;
  if (typeof value === 'object' && value !== null && 'templateBody' in value) return WrappedTemplateSchema;
  return SimpleTemplateSchema;
}

/** Run the simulator until the signal fires; resolves with 0 after a clean shutdown. */
export async function run(argv: string[], context: CommandContext): Promise<number> {
  const flags = parseFlags('simulate', argv, FLAGS, context.env);
  const output = new Output({ stdout: context.stdout, stderr: context.stderr });
  const port = flags.integer('port', { min: 0, max: 65_535 }) ?? 8883;
  const host = flags.string('host') ?? '127.0.0.1';
  const tls = !flags.boolean('no-tls');
  const out = resolve(flags.string('out') ?? 'simulator');
  const serverKeyType = flags.choice('server-key', ['rsa-2048', 'ec-p256'] as const);
  const requestsPerSecond = flags.integer('requests-per-second', { min: 1 });
  const certificateValidityDays = flags.integer('certificate-validity-days', { min: 1 });
  const templates = flags.has('templates') ? await readTemplates(flags) : undefined;
  const claimPolicy = flags.has('claim-policy') ? await readJsonFile(flags, 'claim-policy') : undefined;
  const quiet = flags.boolean('quiet');

  const { startSimulator, IDENTITY_FILES, DEFAULT_TEMPLATES } = await import('../../simulator/index.js');
  const sim = await startSimulator({
    host,
    port,
    tls,
    identityDir: out,
    ...optional('templates', templates),
    ...optional('claimPolicy', claimPolicy),
    ...optional('serverKeyType', serverKeyType),
    ...optional('requestsPerSecond', requestsPerSecond),
    ...optional('certificateValidityDays', certificateValidityDays),
  }).catch((error: unknown) => {
    throw listenAdvice(error, host, port);
  });
  try {
    const ca = join(out, IDENTITY_FILES.caCertificate);
    const cert = join(out, IDENTITY_FILES.claimCertificate);
    const key = join(out, IDENTITY_FILES.claimPrivateKey);
    const names = Object.entries(templates ?? DEFAULT_TEMPLATES);
    output.print(`simulator: AWS IoT Fleet Provisioning${tls ? ' over mutual TLS' : ' over plain MQTT'}`);
    output.print(`endpoint: ${sim.url}`);
    output.print(`ca: ${ca}`);
    output.print(`claim certificate: ${cert}`);
    output.print(`claim key: ${key}`);
    for (const [name, template] of names) {
      const required = requiredOf(template);
      output.print(`template: ${name}${required.length > 0 ? ` (parameters: ${required.join(', ')})` : ''}`);
    }
    const [firstName, first] = names[0] ?? ['DemoTemplate', {}];
    const params = requiredOf(first).map((p) => ` --param ${p}=${p === 'SerialNumber' ? 'SN-1' : 'value'}`);
    output.print(
      `try: fleet-provision provision --endpoint ${sim.url}` +
        (tls ? ` --ca ${ca} --claim-cert ${cert} --claim-key ${key}` : '') +
        ` --template ${firstName}${params.join('')} --out ./credentials`,
    );
    output.note('Ctrl-C to stop.');
    if (!quiet) sim.on('answer', (entry: AnswerEvent & RequestLogEntry) => output.print(answerLine(entry)));
    await untilAborted(context.signal);
    output.note('stopping…');
  } finally {
    await sim.close();
  }
  output.note('stopped');
  return EXIT.ok;
}

/** A failure to listen, worded for the command line (which flag to change); anything else as it is. */
function listenAdvice(error: unknown, host: string, port: number): unknown {
  if (!(error instanceof InvalidArgumentError)) return error;
  const cause: unknown = error.cause;
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? cause.code : undefined;
  const where = `port ${port} on ${host}`;
  switch (code) {
    case 'EADDRINUSE':
      return new InvalidArgumentError(
        `${where} is already in use (EADDRINUSE): stop what listens there, or pick another port with --port <n> (--port 0 picks a free one).`,
        { cause },
      );
    case 'EACCES':
      return new InvalidArgumentError(
        `${where} needs privileges this process lacks (EACCES): pick a port above 1023 with --port <n> (--port 0 picks a free one).`,
        { cause },
      );
    case 'EADDRNOTAVAIL':
      return new InvalidArgumentError(
        `${host} is not an address of this machine (EADDRNOTAVAIL): pass --host 127.0.0.1, 0.0.0.0 or an address of one of its interfaces.`,
        { cause },
      );
    default:
      return error;
  }
}

function answerLine(entry: AnswerEvent & RequestLogEntry): string {
  const verdict =
    entry.kind === 'accepted'
      ? 'accepted'
      : `rejected ${entry.statusCode ?? ''} ${entry.errorCode ?? ''}`.trim();
  const fault = entry.fault === undefined ? '' : ` [fault: ${entry.fault}]`;
  return `${new Date(entry.at).toISOString()} ${entry.operation} ${entry.format ?? ''} ${verdict} client=${entry.clientId}${fault}`;
}

function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((done) => signal.addEventListener('abort', () => done(), { once: true }));
}

/** The parameters a template needs from the device (declared, no default, not built in). */
function requiredOf(template: TemplateDefinition): string[] {
  const body = template.templateBody;
  if (body === undefined || typeof body === 'string') return template.requiredParameters ?? [];
  return Object.entries(body.Parameters ?? {})
    .filter(([name, p]) => p.Default === undefined && !name.startsWith('AWS::'))
    .map(([name]) => name);
}

async function readJsonFile(flags: Flags, flag: string): Promise<unknown> {
  const path = flags.required(flag);
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    const why = error instanceof SyntaxError ? 'not valid JSON' : 'not readable';
    throw flags.usage(`the --${flag} file ${JSON.stringify(path)} is ${why}.`);
  }
}

async function readTemplates(flags: Flags): Promise<Record<string, TemplateDefinition>> {
  const path = flags.required('templates');
  const value = await readJsonFile(flags, 'templates');
  const single = AwsBodySchema.safeParse(value);
  if (single.success) {
    const name = basename(path, extname(path));
    if (!/^[0-9A-Za-z_-]{1,36}$/.test(name)) {
      throw flags.usage(
        `the --templates file ${JSON.stringify(path)} holds one template: name the file after it (e.g. FactoryTemplate.json) or use { "<name>": <template> }.`,
      );
    }
    return { [name]: { templateBody: awsBody(single.data) } };
  }
  const notAMap = (where: string) =>
    flags.usage(`the --templates file ${JSON.stringify(path)} is not a map of templates (at ${where}).`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw notAMap('(root)');
  const entries: Array<[string, z.infer<typeof TemplateEntrySchema>]> = [];
  for (const [name, raw] of Object.entries(value)) {
    const parsed = entrySchema(raw).safeParse(raw);
    if (!parsed.success) {
      throw notAMap(parsed.error.issues.map((issue) => [name, ...issue.path].join('.')).join(', '));
    }
    entries.push([name, parsed.data]);
  }
  const templates: Record<string, TemplateDefinition> = {};
  for (const [name, t] of entries) {
    if ('Resources' in t) {
      templates[name] = { templateBody: awsBody(t) };
      continue;
    }
    if ('templateBody' in t) {
      templates[name] = {
        templateBody: typeof t.templateBody === 'string' ? t.templateBody : awsBody(t.templateBody),
        ...optional('preProvisioningHook', t.preProvisioningHook),
      };
      continue;
    }
    templates[name] = {
      ...optional('preProvisioningHook', t.preProvisioningHook),
      ...optional('thingName', t.thingName),
      ...optional('deviceConfiguration', t.deviceConfiguration),
      ...optional('requiredParameters', t.requiredParameters),
      ...optional('certificateStatus', t.certificateStatus),
    };
  }
  return templates;
}

/** A checked template body (the simulator checks the rest when it starts). */
function awsBody(value: { Resources: Record<string, unknown> }): AwsProvisioningTemplate {
  return value;
}
