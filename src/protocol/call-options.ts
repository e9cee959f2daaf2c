/**
 * The checks every call option goes through, in one place, so that provision(), FleetProvisioningClient
 * and IotIdentityClient refuse the same values the same way, before any traffic: durations that
 * `setTimeout` honours, signals and QoS. (Template names are checked where topics are built, in
 * topics.ts; a caller's CSR by device/csr-input.ts, which knows the key rules.)
 */
import { InvalidArgumentError } from './errors.js';

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
