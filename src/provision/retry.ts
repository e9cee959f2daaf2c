/**
 * Which failures are worth another try, and how long to wait before it: jittered exponential backoff,
 * a bounded number of times.
 */

import { assertTimeout } from '../protocol/call-options.js';
import { FleetProvisioningError, InvalidArgumentError } from '../protocol/errors.js';

/** How provision() retries. */
export interface RetryOptions {
  /** Tries in all, the first included. Default 4; 1 turns retries off. */
  attempts?: number;
  /** The first backoff's upper bound. Default 500 ms. */
  baseDelayMs?: number;
  /** No backoff waits longer than this. Default 10 000 ms. */
  maxDelayMs?: number;
}

/** The retry policy with every default filled in. */
export type RetryPolicy = Required<RetryOptions>;

/** The defaults: four tries, 0.5 s doubling up to 10 s, full jitter. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 500, maxDelayMs: 10_000 };

/**
 * Fill in and check a retry policy; `false` means one try only.
 * @throws {InvalidArgumentError} on a delay that is not a whole number of milliseconds `setTimeout` honours
 * (0 included), or attempts that are not a whole number from 1 to 100.
 */
export function retryPolicy(options: RetryOptions | false | undefined): RetryPolicy {
  if (options === false) return { ...DEFAULT_RETRY, attempts: 1 };
  const policy = { ...DEFAULT_RETRY, ...options };
  if (!Number.isInteger(policy.attempts) || policy.attempts < 1 || policy.attempts > 100) {
    throw new InvalidArgumentError('retry.attempts must be a whole number from 1 to 100.');
  }
  for (const key of ['baseDelayMs', 'maxDelayMs'] as const) assertTimeout(policy[key], `retry.${key}`, 0);
  return policy;
}

/**
 * True for what may succeed when tried again: a rejection with status 429 or 5xx, a SUBACK or PUBACK
 * that says the broker throttles the client (MQTT 5 0x96, 0x97), a timeout, a lost connection (but not
 * a server certificate that is not trusted). Everything else (a 4xx, a bad answer, a
 * bad argument, an abort) fails the same way twice.
 */
export function isRetryable(error: unknown): boolean {
  if (!(error instanceof FleetProvisioningError)) return false;
  if (
    error.code === 'REJECTED' ||
    error.code === 'CONNECTION_LOST' ||
    error.code === 'SUBSCRIBE_FAILED' ||
    error.code === 'PUBLISH_FAILED'
  ) {
    return 'retryable' in error && error.retryable === true;
  }
  return error.code === 'TIMEOUT';
}

/**
 * The wait before try number `attempt + 1` (attempt counts from 1): uniformly random up to
 * `min(maxDelayMs, baseDelayMs × 2^(attempt-1))`, so a fleet that failed together does not retry together.
 */
export function backoffDelay(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(random() * ceiling);
}
