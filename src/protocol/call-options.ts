/**
 * The checks every option goes through, in one place, so that provision(), FleetProvisioningClient and
 * IotIdentityClient refuse the same values the same way, before any traffic: durations that
 * `setTimeout` honours, signals, CSRs and template names.
 */
import { InvalidArgumentError } from './errors.js';
import { type CsrSummary, checkCsr } from '../device/keys.js';
import { assertTemplateName } from './topics.js';

/** The largest delay `setTimeout` honours (2^31 - 1 ms, about 24.8 days); anything longer fires at once. */
export const MAX_TIMEOUT_MS = 2_147_483_647;

/**
 * Throws {@link InvalidArgumentError} unless `value` is a whole number of milliseconds from `min`
 * (default 1) to {@link MAX_TIMEOUT_MS}.
 */
export function assertTimeout(value: unknown, name = 'timeoutMs', min = 1): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_TIMEOUT_MS) {
    throw new InvalidArgumentError(
      `Invalid ${name} ${String(value)}: use a whole number of milliseconds from ${min} to ${MAX_TIMEOUT_MS}.`,
    );
  }
}

/** Throws {@link InvalidArgumentError} unless `value` is a QoS AWS IoT Core supports: 0 or 1. */
export function assertQos(value: unknown, name = 'QoS'): asserts value is 0 | 1 {
  if (value !== 0 && value !== 1) {
    throw new InvalidArgumentError(`Invalid ${name} ${String(value)}: AWS IoT Core supports 0 and 1.`);
  }
}

/** Throws {@link InvalidArgumentError} unless `value` is undefined or an `AbortSignal`. */
export function assertSignal(value: unknown, name = 'signal'): asserts value is AbortSignal | undefined {
  if (value !== undefined && !(value instanceof AbortSignal)) {
    throw new InvalidArgumentError(
      `Invalid ${name}: pass an AbortSignal (for example AbortSignal.timeout(ms)).`,
    );
  }
}

/**
 * Check a caller's CSR before anything is sent: it parses, its signature verifies, its key is one AWS
 * IoT signs. Resolves with what it found.
 * @throws {InvalidArgumentError} saying what is wrong (never echoing the CSR).
 */
export function assertCsr(value: unknown): Promise<CsrSummary> {
  if (typeof value !== 'string') {
    return Promise.reject(
      new InvalidArgumentError(
        'certificateSigningRequest must be a PEM-encoded PKCS #10 certificate signing request.',
      ),
    );
  }
  return checkCsr(value);
}

export { assertTemplateName };
