/**
 * Handle every failure of provision() by its `code`. provision() already retried what is worth
 * retrying (429, 5xx, timeouts, lost connections: 4 tries with backoff by default), so an error that
 * reaches you is final for this attempt: decide whether to try again later, fix something, or alert.
 * In your project, import from 'iot-fleet-provisioning'.
 */
import {
  type ErrorCode,
  FleetProvisioningError,
  type ProvisionedDevice,
  type ProvisionOptions,
  provision,
  RejectedError,
} from '../src/index.js';
import type { Claim } from './claim.js';

/** What to do next. */
export type Advice = 'retry-later' | 'fix-configuration' | 'fix-device' | 'investigate' | 'stop';

/** What provision() gave: the device, or the advice for a failure. */
export type Outcome =
  | { ok: true; device: ProvisionedDevice }
  | { ok: false; code: ErrorCode | 'UNKNOWN'; advice: Advice; message: string };

/** The advice for one error. Exhaustive: a new error code would not compile until it is handled here. */
export function adviceFor(error: unknown): Advice {
  if (!(error instanceof FleetProvisioningError)) return 'investigate'; // a bug, not a service failure
  const code: ErrorCode = error.code;
  switch (code) {
    case 'INVALID_ARGUMENT': // bad options or template name; nothing was sent
      return 'fix-configuration';
    case 'REJECTED':
      // error.statusCode / error.errorCode say why. 429 and 5xx were retried already: try later.
      // 400 InvalidParameters, 404 ResourceNotFound, 403 AccessDenied (the hook said no): fix the
      // template or parameters. 400 InvalidCSR: fix the device's key or CSR.
      if (!(error instanceof RejectedError) || error.retryable) return 'retry-later';
      return error.errorCode === 'InvalidCSR' ? 'fix-device' : 'fix-configuration';
    case 'TIMEOUT': // error.phase says where it stuck: 'connect', 'subscribe', 'publish', 'response', …
    case 'CONNECTION_LOST': // dropped, refused (untrusted CA, inactive claim certificate) or unreachable
    case 'PUBLISH_FAILED':
      return 'retry-later';
    case 'SUBSCRIBE_FAILED': // the claim policy lacks iot:Subscribe on error.topic
      return 'fix-configuration';
    case 'INVALID_RESPONSE': // something else publishes on the $aws topics, or a certificate for another key
      return 'investigate';
    case 'PERSIST_FAILED': // the credentials directory is not writable, or the disk is full
      return 'fix-device';
    case 'ABORTED': // your AbortSignal fired: you asked to stop
    case 'CLIENT_CLOSED': // only from FleetProvisioningClient.close(); provision() does not raise it
      return 'stop';
    default: {
      const unhandled: never = code;
      return unhandled;
    }
  }
}

/** Provision, and turn any failure into an {@link Outcome}. `options` adds to or overrides the defaults. */
export async function main(claim: Claim, options: Partial<ProvisionOptions> = {}): Promise<Outcome> {
  try {
    const device = await provision({
      ...claim,
      templateName: 'FactoryTemplate',
      parameters: { SerialNumber: 'SN-0042' },
      timeoutMs: 10_000,
      retry: { attempts: 3, baseDelayMs: 1_000 },
      onProgress: (event) => {
        if (event.step === 'retrying') console.error(`retrying after ${event.code} in ${event.delayMs} ms`);
      },
      ...options,
    });
    return { ok: true, device };
  } catch (error) {
    const advice = adviceFor(error);
    const code = error instanceof FleetProvisioningError ? error.code : 'UNKNOWN';
    // Messages never contain a private key, a certificate body or an ownership token: safe to log.
    const message = error instanceof Error ? error.message : String(error);
    console.error(`provisioning failed (${code}): ${message} → ${advice}`);
    return { ok: false, code, advice, message };
  }
}
