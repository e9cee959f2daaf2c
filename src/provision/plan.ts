/**
 * The options of provision() (types.ts), checked in full before any traffic and turned into a plan with
 * every default filled in: every mistake a caller can make is an `INVALID_ARGUMENT` that says what to
 * change.
 */
import { checkCaCertificate, checkClaimCredentials } from '../device/claim-credentials.js';
import { KEY_TYPES, type KeyType } from '../device/keys.js';
import type { MqttTransport } from '../mqtt/transport.js';
import { assertSignal, assertTimeout } from '../protocol/call-options.js';
import { InvalidArgumentError } from '../protocol/errors.js';
import { redact } from '../protocol/redact.js';
import { assertFormat, assertTemplateName, type PayloadFormat } from '../protocol/topics.js';
import { checkPlaintext } from './connection.js';
import { type Endpoint, endpointUrl, parseEndpoint } from './endpoint.js';
import { type RetryPolicy, retryPolicy } from './retry.js';
import type { ProgressEvent, ProvisionOptions } from './types.js';

/** The default deadline of each step. */
export const DEFAULT_PROVISION_TIMEOUT_MS = 30_000;

/** provision()'s options, checked and with defaults filled in. */
export interface ProvisionPlan {
  endpoint: Endpoint | undefined;
  client: MqttTransport | undefined;
  claimCertificate: string | undefined;
  claimPrivateKey: string | undefined;
  caCertificate: string | undefined;
  clientId: string | undefined;
  protocolVersion: 4 | 5;
  templateName: string;
  parameters: Record<string, string> | undefined;
  keys: { kind: 'server' } | { kind: 'generate'; type: KeyType } | { kind: 'csr'; csr: string };
  csrSubject: string | undefined;
  format: PayloadFormat;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  outDir: string | undefined;
  existing: 'reuse' | 'replace';
  onProgress: (event: ProgressEvent) => void;
  retry: RetryPolicy;
  verify: boolean;
}

/**
 * Check every option of provision() and fill in the defaults.
 * @throws {InvalidArgumentError} naming the first option that is wrong.
 */
export function planProvision(options: ProvisionOptions): ProvisionPlan {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('provision() needs an options object.');
  }
  assertKnownOptions(options);
  assertTemplateName(options.templateName);
  const format = options.format ?? 'json';
  assertFormat(format);
  const client = options.client;
  const endpoint = options.endpoint === undefined ? undefined : parseEndpoint(options.endpoint);
  if (client === undefined && endpoint === undefined) {
    throw new InvalidArgumentError(
      'provision() needs either an endpoint (with claim credentials) or a connected client.',
    );
  }
  if (options.insecure !== undefined && typeof options.insecure !== 'boolean') {
    throw new InvalidArgumentError('insecure must be true or false.');
  }
  if (client === undefined && endpoint !== undefined) checkPlaintext(endpoint, options.insecure === true);
  let claimCertificate = options.claimCertificate;
  let claimPrivateKey = options.claimPrivateKey;
  if (client === undefined && endpoint?.protocol === 'mqtts') {
    const claim = checkClaimCredentials(
      { certificate: options.claimCertificate, privateKey: options.claimPrivateKey },
      undefined,
      `connecting to ${endpointUrl(endpoint)}`,
    );
    claimCertificate = claim.certificate;
    claimPrivateKey = claim.privateKey;
  }
  const caCertificate =
    options.caCertificate === undefined ? undefined : checkCaCertificate(options.caCertificate);
  if (options.verify === true && endpoint === undefined) {
    throw new InvalidArgumentError('verify needs the endpoint, to reconnect there with the new certificate.');
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROVISION_TIMEOUT_MS;
  assertTimeout(timeoutMs);
  assertSignal(options.signal);
  if (
    options.protocolVersion !== undefined &&
    options.protocolVersion !== 4 &&
    options.protocolVersion !== 5
  ) {
    throw new InvalidArgumentError('protocolVersion must be 4 (MQTT 3.1.1) or 5.');
  }
  if (options.outDir !== undefined && (typeof options.outDir !== 'string' || options.outDir === '')) {
    throw new InvalidArgumentError('outDir must be a directory path.');
  }
  if (options.existing !== undefined && options.existing !== 'reuse' && options.existing !== 'replace') {
    throw new InvalidArgumentError("existing must be 'reuse' (the default) or 'replace'.");
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new InvalidArgumentError('onProgress must be a function.');
  }
  return {
    endpoint,
    client,
    claimCertificate,
    claimPrivateKey,
    caCertificate,
    clientId: options.clientId,
    protocolVersion: options.protocolVersion ?? 4,
    templateName: options.templateName,
    parameters: checkParameters(options.parameters),
    keys: keySource(options.keys),
    csrSubject: options.csrSubject,
    format,
    timeoutMs,
    signal: options.signal,
    outDir: options.outDir,
    existing: options.existing ?? 'reuse',
    onProgress: guardedProgress(options.onProgress),
    retry: retryPolicy(options.retry),
    verify: options.verify === true,
  };
}

/** The caller's onProgress, made harmless: what it throws becomes a process warning, never a failed run. */
function guardedProgress(
  onProgress: ((event: ProgressEvent) => void) | undefined,
): (event: ProgressEvent) => void {
  if (onProgress === undefined) return () => {};
  return (event) => {
    try {
      onProgress(event);
    } catch (error) {
      const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      process.emitWarning(`onProgress threw on step ${event.step}; provisioning goes on. ${redact(detail)}`, {
        code: 'FLEET_PROVISION_ON_PROGRESS',
      });
    }
  };
}

/** Every option provision() reads; anything else is a misspelling. */
const PROVISION_OPTION_NAMES = [
  'endpoint',
  'claimCertificate',
  'claimPrivateKey',
  'caCertificate',
  'client',
  'clientId',
  'protocolVersion',
  'templateName',
  'parameters',
  'keys',
  'csrSubject',
  'format',
  'timeoutMs',
  'signal',
  'outDir',
  'onProgress',
  'retry',
  'verify',
  'existing',
  'insecure',
] as const;

/**
 * Refuse an option name provision() does not know (in plain JavaScript `outdir` would otherwise be
 * silently ignored), suggesting the nearest known one.
 * @throws {InvalidArgumentError} `Unknown option "outdir" … did you mean "outDir"?`
 */
export function assertKnownOptions(
  options: object,
  known: readonly string[] = PROVISION_OPTION_NAMES,
  what = 'provision()',
): void {
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    const nearest = suggest(name, known);
    throw new InvalidArgumentError(
      `Unknown option ${JSON.stringify(name.slice(0, 60))} in ${what}` +
        (nearest === undefined ? '' : `: did you mean ${JSON.stringify(nearest)}?`) +
        ` Known options: ${known.join(', ')}.`,
    );
  }
}

/** The known name closest to `name` (case-insensitive edit distance at most 3), or undefined. */
function suggest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  const lower = name.toLowerCase();
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return 4;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 4;
}

function isPem(value: unknown): value is string {
  return typeof value === 'string' && value.includes('-----BEGIN ');
}

function checkParameters(parameters: unknown): Record<string, string> | undefined {
  if (parameters === undefined) return undefined;
  if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) {
    throw new InvalidArgumentError(
      'parameters must be an object of string values, e.g. { SerialNumber: "SN-1" }.',
    );
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(parameters)) {
    if (typeof value !== 'string') {
      throw new InvalidArgumentError(`Template parameter ${JSON.stringify(key)} must be a string.`);
    }
    out[key] = value;
  }
  return out;
}

function keySource(keys: unknown): ProvisionPlan['keys'] {
  if (keys === undefined || keys === 'server') return { kind: 'server' };
  if (keys === 'generate') return { kind: 'generate', type: 'ec-p256' };
  if (typeof keys === 'object' && keys !== null) {
    if ('generate' in keys) {
      const type = keys.generate;
      const known = KEY_TYPES.find((k) => k === type);
      if (known !== undefined) return { kind: 'generate', type: known };
      throw new InvalidArgumentError(`keys.generate must be one of ${KEY_TYPES.join(', ')}.`);
    }
    if ('csr' in keys) {
      if (isPem(keys.csr)) return { kind: 'csr', csr: keys.csr };
      throw new InvalidArgumentError('keys.csr must be a PEM certificate signing request.');
    }
  }
  throw new InvalidArgumentError(
    `keys must be 'server', 'generate', { generate: ${KEY_TYPES.map((k) => `'${k}'`).join(' | ')} } or { csr: pem }.`,
  );
}
