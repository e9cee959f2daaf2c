/**
 * rotate(): a provisioned device replaces its own certificate over the Fleet Provisioning API. It runs
 * provision()'s flow with the live set as its credentials and its thing name as client id; the new set
 * is staged beside the old one and becomes live only once RegisterThing accepted it and, with `verify`,
 * the new certificate has connected.
 */
import { readCurrentCredentials } from '../device/credentials.js';
import { certificateMatchesPrivateKey } from '../device/keys.js';
import {
  AbortedError,
  InvalidArgumentError,
  PublishFailedError,
  SubscribeFailedError,
} from '../protocol/errors.js';
import type { PayloadFormat } from '../protocol/topics.js';
import { planProvision } from './plan.js';
import { Provisioning } from './provision.js';
import type { RetryOptions } from './retry.js';
import type { KeySource, ProgressEvent, ProvisionedDevice } from './types.js';

/** What rotate() takes. */
export interface RotateOptions {
  /**
   * The credentials directory of the provisioned device: its certificate and key are used to connect, its
   * `device.json` gives the thing name (the client id) and the endpoint. The new set replaces it there.
   */
  outDir: string;
  /** The CA that signs the server certificate (Amazon Root CA 1 for AWS), PEM. Default: Node's roots. */
  caCertificate?: string;
  /** The rotation template: one that attaches the new certificate to the existing thing. */
  templateName: string;
  /** Template parameters (a flat map of strings). */
  parameters?: Record<string, string>;
  /**
   * Where the new key comes from: `'generate'` (default, EC P-256 made here, the key never leaves the
   * device), `{ generate: type }`, or `'server'` (CreateKeysAndCertificate). A caller's CSR is not
   * accepted: the new set must hold a key to connect with.
   */
  keys?: Exclude<KeySource, { csr: string }>;
  /** Subject of a generated CSR. Default `CN=AWS IoT Device`. */
  csrSubject?: string;
  /** Payload format. Default `'json'`. */
  format?: PayloadFormat;
  /** MQTT protocol version: 4 (3.1.1, default) or 5. */
  protocolVersion?: 4 | 5;
  /** Deadline of each operation and of each connection attempt. Default 30 000 ms. */
  timeoutMs?: number;
  /** Cancels everything; rotate() then rejects with `ABORTED` and the old set stays live. */
  signal?: AbortSignal;
  /** Retries of 429, 5xx, timeouts and lost connections; `false` for none. */
  retry?: RetryOptions | false;
  /** Called at each step (the same steps as provision()). */
  onProgress?: (event: ProgressEvent) => void;
  /**
   * Connect with the new certificate before switching to it (default `true`). A certificate the broker
   * refuses is abandoned, and the old set stays live.
   */
  verify?: boolean;
}

/** What rotate() returns: the new set, and the certificate it replaced. */
export interface RotatedDevice extends ProvisionedDevice {
  /** The certificate the old set held: deactivate it once the device uses the new one. */
  previousCertificateId: string;
}

/**
 * Replace the device's certificate.
 *
 * Connects to the endpoint in `device.json` with the current certificate, using the thing name as
 * client id (what AWS's device policies expect), gets a new certificate (a key made here by default),
 * stages it beside the live set, runs RegisterThing with the rotation template, connects with the new
 * certificate, and only then switches the final paths to it in one atomic rename. Until then the old set
 * stays live and usable; a run that ends early (crash, deadline, abort) leaves the new set staged, and
 * the next rotate() on the same `outDir` finishes it or reports it in `abandonedCertificateIds`.
 * The previous certificate stays ACTIVE: deactivate it from the cloud (docs/guides/rotating-certificates.md).
 *
 * @example
 * const rotated = await rotate({
 *   outDir: './credentials',
 *   caCertificate,
 *   templateName: 'RotationTemplate',
 * });
 * console.log(`now ${rotated.certificateId}, deactivate ${rotated.previousCertificateId}`);
 * @throws {FleetProvisioningError} `INVALID_ARGUMENT` before any traffic (bad options, or `outDir` does
 * not hold a complete provisioned set with a thing name and a matching key); then the same codes as
 * provision(). A new certificate the broker refuses rejects with `CONNECTION_LOST`.
 */
export async function rotate(options: RotateOptions): Promise<RotatedDevice> {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('rotate() needs an options object.');
  }
  if (typeof options.outDir !== 'string' || options.outDir === '') {
    throw new InvalidArgumentError('rotate() needs outDir: the credentials directory of the device.');
  }
  const keys: unknown = options.keys;
  if (typeof keys === 'object' && keys !== null && 'csr' in keys) {
    throw new InvalidArgumentError(
      "rotate() cannot use a caller's CSR: the new set must hold a key to connect with. Use keys: 'generate' or 'server'.",
    );
  }
  const outDir = options.outDir;
  const { certificatePem, privateKeyPem, device } = await readCurrentCredentials(outDir);
  const problem =
    device === undefined
      ? 'there is no device.json (provision the device first)'
      : device === null
        ? 'device.json is not valid'
        : device.thingName === undefined
          ? 'device.json names no thing (rotation connects with the thing name as client id)'
          : certificatePem === undefined
            ? 'the certificate is missing'
            : privateKeyPem === undefined
              ? 'the private key is missing'
              : !safeMatch(certificatePem, privateKeyPem)
                ? 'the private key does not match the certificate'
                : undefined;
  if (
    problem !== undefined ||
    device === undefined ||
    device === null ||
    device.thingName === undefined ||
    certificatePem === undefined ||
    privateKeyPem === undefined
  ) {
    throw new InvalidArgumentError(
      `${outDir} does not hold a complete provisioned set to rotate: ${problem ?? 'it is incomplete'}. Nothing was sent.`,
    );
  }
  const plan = planProvision({
    endpoint: device.endpoint,
    claimCertificate: certificatePem,
    claimPrivateKey: privateKeyPem,
    clientId: device.thingName,
    templateName: options.templateName,
    keys: options.keys ?? 'generate',
    outDir,
    existing: 'replace',
    verify: options.verify ?? true,
    ...pick(options),
  });
  if (plan.signal?.aborted === true) throw new AbortedError(plan.signal.reason);
  try {
    const rotated = await new Provisioning(plan, {
      current: { ...device, thingName: device.thingName },
    }).run();
    return { ...rotated, previousCertificateId: device.certificateId };
  } catch (error) {
    if (error instanceof SubscribeFailedError || error instanceof PublishFailedError) {
      error.message +=
        " For a rotation that is the device's own certificate: its policy must allow the provisioning " +
        `topics of ${options.templateName} (see docs/guides/rotating-certificates.md).`;
    }
    throw error;
  }
}

/** The options rotate() passes on to provision()'s planner as they are. */
function pick(options: RotateOptions): Partial<Parameters<typeof planProvision>[0]> {
  const out: Partial<Parameters<typeof planProvision>[0]> = {};
  if (options.caCertificate !== undefined) out.caCertificate = options.caCertificate;
  if (options.parameters !== undefined) out.parameters = options.parameters;
  if (options.csrSubject !== undefined) out.csrSubject = options.csrSubject;
  if (options.format !== undefined) out.format = options.format;
  if (options.protocolVersion !== undefined) out.protocolVersion = options.protocolVersion;
  if (options.timeoutMs !== undefined) out.timeoutMs = options.timeoutMs;
  if (options.signal !== undefined) out.signal = options.signal;
  if (options.retry !== undefined) out.retry = options.retry;
  if (options.onProgress !== undefined) out.onProgress = options.onProgress;
  return out;
}

function safeMatch(certificatePem: string, privateKeyPem: string): boolean {
  try {
    return certificateMatchesPrivateKey(certificatePem, privateKeyPem);
  } catch {
    return false;
  }
}
