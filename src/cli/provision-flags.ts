/**
 * The flags that say where and how to provision (endpoint, template, claim credentials, keys, format,
 * parameters, timeouts), shared by `provision` and `load`, turned into provision() options.
 */
import { readFile } from 'node:fs/promises';
import {
  checkCaCertificate,
  checkClaimCredentials,
  looksLikePath,
  normalizePem,
  notPemMessage,
  type PemKind,
} from '../device/claim-credentials.js';
import { KEY_TYPES } from '../device/keys.js';
import { optional } from '../internal/optional.js';
import { redact, rememberSecret } from '../protocol/redact.js';
import type { KeySource, ProvisionOptions } from '../provision/types.js';
import { envName, type FlagSpecs, type Flags } from './args.js';

/** The connection and request flags. `env`: whether FLEET_PROVISION_* variables may set them. */
export function connectionFlagSpecs(env: boolean): FlagSpecs {
  return {
    endpoint: { type: 'string', env },
    template: { type: 'string', env },
    'claim-cert': { type: 'string', env },
    'claim-key': { type: 'string', env },
    ca: { type: 'string', env },
    param: { type: 'string', multiple: true, env },
    'params-json': { type: 'string', env },
    'client-id': { type: 'string', env },
    keys: { type: 'string', env },
    csr: { type: 'string', env },
    format: { type: 'string', env },
    timeout: { type: 'string', env },
    retries: { type: 'string', env },
    insecure: { type: 'boolean', env },
  };
}

/** `--keys` words: where the key comes from. */
export const KEYS_CHOICES = ['server', 'generate', ...KEY_TYPES] as const;

/** The key source `--keys` and `--csr` ask for. */
export async function keySourceFrom(flags: Flags): Promise<KeySource> {
  const keys = flags.choice('keys', KEYS_CHOICES);
  if (flags.has('csr')) {
    if (keys !== undefined) {
      throw flags.usage(
        `${flags.source('csr')} and ${flags.source('keys')} exclude each other: a CSR brings its own key.`,
      );
    }
    return { csr: await readPem(flags, 'csr', 'CSR') };
  }
  if (keys === undefined || keys === 'server' || keys === 'generate') return keys ?? 'server';
  return { generate: keys };
}

/**
 * Template parameters from `--params-json` and repeated `--param KEY=VALUE` (which win).
 * @throws {UsageError} on a `--param` without `=`, or JSON that is not an object of strings.
 */
export function parametersFrom(flags: Flags): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  let any = false;
  const json = flags.string('params-json');
  if (json !== undefined) {
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch {
      throw flags.usage(`${flags.source('params-json')} is not valid JSON.`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw flags.usage(
        `${flags.source('params-json')} must be a JSON object, e.g. {"SerialNumber":"SN-1"}.`,
      );
    }
    for (const [key, item] of Object.entries(value)) {
      if (typeof item !== 'string') {
        throw flags.usage(
          `${flags.source('params-json')}: the value of ${JSON.stringify(key)} must be a string.`,
        );
      }
      out[key] = item;
      any = true;
    }
  }
  for (const pair of flags.strings('param')) {
    const at = pair.indexOf('=');
    if (at <= 0) {
      throw flags.usage(`${flags.source('param')} takes KEY=VALUE, not ${JSON.stringify(pair)}.`);
    }
    out[pair.slice(0, at)] = pair.slice(at + 1);
    any = true;
  }
  return any ? out : undefined;
}

/**
 * A PEM file named by a flag. From an environment variable the value may also be the PEM text itself,
 * which is how CI systems hand out secrets (a one-line secret with literal `\n` sequences included);
 * on the command line it is always a path (arguments show in `ps`). A value that is neither is
 * described (base64 of the file, a body without its header lines, hex…) and never repeated, except a
 * path.
 * @throws {UsageError} when the file cannot be read or holds no PEM.
 */
export async function readPem(flags: Flags, name: string, kind: PemKind): Promise<string> {
  const value = flags.required(name);
  const source = flags.source(name);
  const fromEnv = source.startsWith('FLEET_PROVISION_');
  // Whatever the variable holds, it may be a secret in some encoding: never print any of it.
  if (fromEnv && !looksLikePath(value)) rememberSecret(value);
  const text = normalizePem(value);
  if (text.includes('-----BEGIN ')) {
    if (fromEnv) return text;
    throw flags.usage(
      `${source} holds PEM text, but takes the path of a file: save the text to a file and pass its path, ` +
        `or put the text in ${envName(name)}.`,
    );
  }
  const path = looksLikePath(value) ? JSON.stringify(value.trim()) : undefined;
  let content: string;
  try {
    content = await readFile(value, 'utf8');
  } catch (error) {
    const code =
      typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'error';
    const echo =
      path ??
      (!fromEnv && !/[\r\n]/.test(value) && value.length <= 255 && redact(value) === value
        ? JSON.stringify(value)
        : undefined);
    if (echo !== undefined) throw flags.usage(`cannot read the ${source} file ${echo} (${code}).`);
    // Not a path: say what the value looks like instead of repeating it.
    throw flags.usage(
      `${notPemMessage(value, source, kind)} ${source} takes ${fromEnv ? 'the PEM text or ' : ''}the path of a PEM file.`,
    );
  }
  const pem = normalizePem(content);
  if (!pem.includes('-----BEGIN ')) {
    const what = notPemMessage(content, `the ${source} file ${path ?? ''}`.trimEnd(), kind);
    throw flags.usage(what);
  }
  if (kind === 'private key') rememberSecret(pem);
  return pem;
}

/** What to ask for (template, parameters, keys, format, deadlines), without where: the flags say. */
export type RequestOptions = Omit<
  ProvisionOptions,
  'endpoint' | 'claimCertificate' | 'claimPrivateKey' | 'caCertificate' | 'client'
>;

/** The request options from the flags (reading `--csr`); `defaults.templateName` stands in for `--template`. */
export async function requestOptionsFrom(
  flags: Flags,
  defaults: { templateName?: string } = {},
): Promise<RequestOptions> {
  const templateName = flags.string('template') ?? defaults.templateName;
  if (templateName === undefined) throw flags.usage(`missing required flag ${flags.describe('template')}.`);
  const keys = await keySourceFrom(flags);
  const parameters = parametersFrom(flags);
  const format = flags.choice('format', ['json', 'cbor'] as const);
  const timeoutMs = flags.integer('timeout', { min: 1 });
  const retries = flags.integer('retries', { min: 0, max: 99 });
  const clientId = flags.string('client-id');
  return {
    templateName,
    keys,
    ...optional('parameters', parameters),
    ...optional('format', format),
    ...optional('timeoutMs', timeoutMs),
    ...(retries === undefined ? {} : { retry: { attempts: retries + 1 } }),
    ...optional('clientId', clientId),
  };
}

/** True unless the endpoint is plain `mqtt://` (a local broker without TLS). */
export function usesTls(endpoint: string): boolean {
  return !/^mqtt:\/\//i.test(endpoint.trim());
}

/** The claim flags that plain `mqtt://` cannot use. */
const TLS_ONLY_FLAGS = ['claim-cert', 'claim-key', 'ca'] as const;

/**
 * Where to connect and with which credentials: `--endpoint` and the PEM files (read and checked here:
 * a key that does not match its certificate, the two swapped, a damaged file are usage errors before
 * any traffic). Over plain `mqtt://` the claim flags cannot be used; `warn` says so.
 */
export async function connectionOptionsFrom(
  flags: Flags,
  warn: (line: string) => void = () => {},
): Promise<
  Pick<ProvisionOptions, 'claimCertificate' | 'claimPrivateKey' | 'caCertificate' | 'insecure'> & {
    endpoint: string;
  }
> {
  const endpoint = flags.required('endpoint');
  const insecure = flags.boolean('insecure') ? { insecure: true } : {};
  if (!usesTls(endpoint)) {
    const given = TLS_ONLY_FLAGS.filter((name) => flags.has(name)).map((name) => flags.source(name));
    if (given.length > 0) {
      warn(
        `${given.join(', ')} ${given.length === 1 ? 'is' : 'are'} not used: plain mqtt:// has no TLS, so no ` +
          'client certificate is presented and the server is not verified. Use mqtts:// to use them.',
      );
    }
    return { endpoint, ...insecure };
  }
  const names = {
    certificate: flags.source('claim-cert'),
    privateKey: flags.source('claim-key'),
    ca: flags.source('ca'),
  };
  const claim = checkClaimCredentials(
    {
      certificate: await readPem(flags, 'claim-cert', 'certificate'),
      privateKey: await readPem(flags, 'claim-key', 'private key'),
    },
    names,
  );
  const caCertificate = flags.has('ca')
    ? checkCaCertificate(await readPem(flags, 'ca', 'CA certificate'), names.ca)
    : undefined;
  return {
    endpoint,
    claimCertificate: claim.certificate,
    claimPrivateKey: claim.privateKey,
    ...optional('caCertificate', caCertificate),
    ...insecure,
  };
}

/** The full provision() options from the flags: where, with which credentials (files read), and what. */
export async function provisionOptionsFrom(
  flags: Flags,
  warn?: (line: string) => void,
): Promise<ProvisionOptions & { endpoint: string }> {
  const request = await requestOptionsFrom(flags);
  return { ...request, ...(await connectionOptionsFrom(flags, warn)) };
}

/** The help text of the connection flags. */
export const CONNECTION_FLAGS_HELP = `  --endpoint <host|url>   AWS IoT data endpoint (abc123-ats.iot.eu-west-1.amazonaws.com),
                          or mqtts://host:port (443 uses ALPN x-amzn-mqtt-ca), mqtt://host:port
  --template <name>       provisioning template name
  --claim-cert <file>     claim certificate (PEM); not used with mqtt://
  --claim-key <file>      claim certificate's private key (PEM); not used with mqtt://
  --ca <file>             CA of the server certificate (PEM; default: Node's roots, which include
                          Amazon's); not used with mqtt://
  --param KEY=VALUE       template parameter; repeat for more
  --params-json <json>    template parameters as a JSON object of strings (--param wins)
  --client-id <id>        MQTT client id of the claim connection (default: unique per run)
  --keys <source>         server (CreateKeysAndCertificate, default) | generate (EC P-256 made here)
                          | ec-p256 | ec-p384 | rsa-2048 | rsa-3072 (made here, sent as a CSR)
  --csr <file>            use your own CSR (key kept elsewhere, e.g. a secure element)
  --format json|cbor      payload format (default json)
  --timeout <ms>          deadline of each connection and operation (default 30000)
  --retries <n>           retries of 429/5xx answers, timeouts and lost connections (default 3)
  --insecure              allow plain mqtt:// to a host other than this machine (prints a warning:
                          the device's key and token cross the network unencrypted)`;
