/**
 * Deadlines, on one clock (`Timers`: Node's by default, a test's own in unit tests, so that tests drive
 * time instead of sleeping). A deadline that ends a wait with an error is p-timeout, wrapped once here
 * ({@link withDeadline}) with its `customTimers` seam. The two waits on every request's path use one
 * timer of the same clock instead: a request's own deadline (`client/pending-call.ts`, a promise that
 * already has one settle path) and {@link settleWithin}; p-timeout builds an error with its stack trace
 * for each promise it wraps, which measured as the largest single cost of a warm request.
 */
import pTimeout, { type ClearablePromise } from 'p-timeout';
import { optional } from './optional.js';

/** The two timer functions a deadline uses; the real ones by default, a test's clock in unit tests. */
export interface Timers {
  /** Call `callback` once, `ms` from now; returns a handle for {@link Timers.clearTimeout}. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancel a timer made by {@link Timers.setTimeout}. */
  clearTimeout(handle: unknown): void;
}

/** Node's own timers. */
export const REAL_TIMERS: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => {
    if (handle === undefined || isTimeout(handle)) clearTimeout(handle);
  },
};

/** Node's own timers, unref'd: a deadline that should never keep the process alive by itself. */
export const UNREF_TIMERS: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimeout: REAL_TIMERS.clearTimeout,
};

function isTimeout(handle: unknown): handle is NodeJS.Timeout {
  return typeof handle === 'object' && handle !== null && 'hasRef' in handle;
}

/**
 * `promise`, or the error `onTimeout()` throws once `ms` have passed, or `signal.reason` once `signal`
 * fires, whichever comes first. The timer and the abort listener are removed as soon as the result
 * settles (the timer at once with `.clear()`). `onTimeout` runs before the result rejects, so an owner
 * can be told first.
 */
export function withDeadline<T>(
  promise: Promise<T>,
  ms: number,
  onTimeout: () => unknown,
  timers: Timers = REAL_TIMERS,
  signal?: AbortSignal,
): ClearablePromise<T> {
  return pTimeout(promise, {
    milliseconds: ms,
    ...optional('signal', signal),
    fallback: () => {
      throw onTimeout();
    },
    customTimers: {
      // p-timeout types its seam as the global functions; it only ever calls them as (callback, ms)
      // and (handle), which is all Timers promises.
      setTimeout: ((callback: () => void, delay: number) =>
        timers.setTimeout(callback, delay)) as typeof globalThis.setTimeout,
      clearTimeout: ((handle: unknown) => timers.clearTimeout(handle)) as typeof globalThis.clearTimeout,
    },
  });
}

/**
 * Wait for `promise` to settle (either way), but no longer than `ms`; never throws. Resolves true when it
 * settled in time, false when the bound passed first. For waits whose outcome does not matter beyond
 * that: closing a connection, an UNSUBACK, removing a staged set.
 *
 * One timer, not a p-timeout wrapper: there is no error to build here, and p-timeout builds one (stack
 * trace included) for every promise it wraps; this wait runs at the end of every provisioning (see
 * docs/performance.md).
 */
export function settleWithin(
  promise: Promise<unknown>,
  ms: number,
  timers: Timers = REAL_TIMERS,
): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const handle = timers.setTimeout(() => resolve(false), ms);
    const settled = () => {
      timers.clearTimeout(handle);
      resolve(true);
    };
    promise.then(settled, settled);
  });
}
