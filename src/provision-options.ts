/**
 * The options of provision(), checked in full before any traffic: every mistake a caller can make is an
 * `INVALID_ARGUMENT` that says what to change.
 */
import type { CredentialFiles } from './credentials.js';
import { type Endpoint, parseEndpoint } from './endpoint.js';
import { InvalidArgumentError } from './errors.js';
import { KEY_TYPES, type KeyType } from './keys.js';
import { assertSignal, assertTimeout } from './option-checks.js';
import { type RetryOptions, type RetryPolicy, retryPolicy } from './retry.js';
import { assertFormat, assertTemplateName, type PayloadFormat } from './topics.js';
import type { MqttTransport } from './transport.js';

/**
 * Where the device's key comes from:
 * - `'server'` (default): CreateKeysAndCertificate; AWS makes the key and sends it over the connection.
 * - `'generate'` or `{ generate: type }`: the key is made here (EC P-256 by default), a CSR goes to
 *   CreateCertificateFromCsr, and the key never leaves the device.
 * - `{ csr }`: your own CSR (PEM), for a key kept in a secure element or HSM; no key is returned.
 */
export type KeySource =
  | 'server'
  | 'generate'
  | {
      /** The key type to make on the device. */
      generate: KeyType;
    }
  | {
      /** Your CSR, PEM (`-----BEGIN CERTIFICATE REQUEST-----`). */
      csr: string;
    };

/** A step of provision(), reported to `onProgress`. Never carries a secret. */
export type ProgressEvent =
  | {
      /** A key pair was made on the device. */
      step: 'key';
      /** Its type. */
      keyType: KeyType;
    }
  | {
      /** Connecting with the claim certificate. */
      step: 'connecting';
      /** The endpoint as a URL. */
      endpoint: string;
      /** 1 for the first connection, more after a retry. */
      attempt: number;
    }
  | {
      /** Both answer-topic pairs are subscribed (SUBACK received). */
      step: 'subscribed';
      /** The connection attempt this happened on. */
      attempt: number;
    }
  | {
      /** The device has its certificate, checked against its key or CSR. */
      step: 'certificate';
      /** The new certificate's id. */
      certificateId: string;
    }
  | {
      /** Key and certificate are on disk, not yet at the final paths. */
      step: 'staged';
      /** The credentials directory. */
      directory: string;
    }
  | {
      /** RegisterThing accepted. */
      step: 'registered';
      /** The thing made, or undefined when the template makes none. */
      thingName: string | undefined;
    }
  | {
      /** The credentials are at their final paths. */
      step: 'saved';
      /** Their paths. */
      files: CredentialFiles;
    }
  | {
      /** Reconnected with the new certificate (`verify: true`). */
      step: 'verified';
      /** Whether the broker accepted it. */
      accepted: boolean;
    }
  | {
      /** A retryable failure: trying again after a backoff. */
      step: 'retrying';
      /** What failed: `certificate` or `RegisterThing`. */
      operation: string;
      /** The number of the try about to start (2 for the first retry). */
      attempt: number;
      /** The backoff before it, in ms. */
      delayMs: number;
      /** The error code that caused the retry (`REJECTED`, `TIMEOUT`, `CONNECTION_LOST`). */
      code: string;
    };

/** What provision() takes. See CONTRACT.md "Layer 4". */
export interface ProvisionOptions {
  /** AWS IoT data endpoint: `abc123-ats.iot.eu-west-1.amazonaws.com`, `mqtts://host:443`, `mqtt://127.0.0.1:1883`. */
  endpoint?: string;
  /** The claim certificate, PEM. Required with `endpoint` over TLS. */
  claimCertificate?: string;
  /** The claim certificate's private key, PEM. */
  claimPrivateKey?: string;
  /** The CA that signs the server certificate (Amazon Root CA 1 for AWS), PEM. Default: Node's roots. */
  caCertificate?: string;
  /** An already connected mqtt.js client to use instead; provision() leaves it open. */
  client?: MqttTransport;
  /** MQTT client id of the claim connection. Default: unique per call. */
  clientId?: string;
  /** MQTT protocol version of the connections provision() opens: 4 (3.1.1, default) or 5. */
  protocolVersion?: 4 | 5;
  /** The provisioning template. */
  templateName: string;
  /** Template parameters (a flat map of strings). */
  parameters?: Record<string, string>;
  /** Where the key comes from. Default `'server'`. */
  keys?: KeySource;
  /** Subject of a generated CSR. Default `CN=AWS IoT Device`. */
  csrSubject?: string;
  /** Payload format. Default `'json'`. */
  format?: PayloadFormat;
  /** Deadline of each operation and of each connection attempt. Default 30 000 ms. */
  timeoutMs?: number;
  /** Cancels everything; provision() then rejects with `ABORTED`. */
  signal?: AbortSignal;
  /** Write the credentials here (CONTRACT.md "Files"). */
  outDir?: string;
  /** Called at each step. */
  onProgress?: (event: ProgressEvent) => void;
  /** Retries of 429, 5xx, timeouts and lost connections; `false` for none. */
  retry?: RetryOptions | false;
  /** Reconnect with the new certificate afterwards and report whether the broker accepted it. */
  verify?: boolean;
}

/** The device provision() made. */
export interface ProvisionedDevice {
  /** Absent when the template creates no thing. */
  thingName?: string;
  /** RegisterThing's `deviceConfiguration` (the template's `DeviceConfiguration`). */
  deviceConfiguration: Record<string, string>;
  /** The device certificate's id. */
  certificateId: string;
  /** The device certificate, PEM, now ACTIVE (or as the template says). */
  certificatePem: string;
  /** Present when the key came from the service or was made here; absent with `{ csr }`. */
  privateKey?: string;
  /** Present with `outDir`. */
  files?: CredentialFiles;
  /** Present with `verify: true`: whether the broker accepted the new certificate. */
  verified?: boolean;
}

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
  if (client === undefined && endpoint?.protocol === 'mqtts') {
    for (const key of ['claimCertificate', 'claimPrivateKey'] as const) {
      if (!isPem(options[key])) {
        throw new InvalidArgumentError(
          `${key} must be PEM text (-----BEGIN …-----) to connect to ${options.endpoint}.`,
        );
      }
    }
  }
  if (options.caCertificate !== undefined && !isPem(options.caCertificate)) {
    throw new InvalidArgumentError('caCertificate must be PEM text (-----BEGIN CERTIFICATE-----).');
  }
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
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new InvalidArgumentError('onProgress must be a function.');
  }
  return {
    endpoint,
    client,
    claimCertificate: options.claimCertificate,
    claimPrivateKey: options.claimPrivateKey,
    caCertificate: options.caCertificate,
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
    onProgress: options.onProgress ?? (() => {}),
    retry: retryPolicy(options.retry),
    verify: options.verify === true,
  };
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
