/**
 * A token bucket on the simulator's clock: `perSecond` requests a second, bursts up to the same number.
 * On the injectable clock, tests see 429s without waiting.
 */
export class RateLimiter {
  readonly #perSecond: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(perSecond: number, now: () => number) {
    this.#perSecond = perSecond;
    this.#now = now;
    this.#tokens = perSecond;
    this.#last = now();
  }

  /** Take one request's worth; false when over the rate. */
  take(): boolean {
    const now = this.#now();
    const elapsed = Math.max(0, now - this.#last);
    this.#last = now;
    this.#tokens = Math.min(this.#perSecond, this.#tokens + (elapsed / 1000) * this.#perSecond);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
