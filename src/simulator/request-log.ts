/**
 * The request log: what each client did and was sent, in order, so tests can assert ordering
 * (subscribe before publish) and in-flight counts, and await entries instead of sleeping.
 */
import type { RequestLogEntry } from './types.js';

/** A bounded, ordered log that reports every entry as it is added. */
export class RequestLog {
  readonly #entries: RequestLogEntry[] = [];
  readonly #limit: number;
  readonly #now: () => number;
  readonly #onEntry: (entry: RequestLogEntry) => void;

  constructor(options: { limit: number; now: () => number; onEntry: (entry: RequestLogEntry) => void }) {
    this.#limit = options.limit;
    this.#now = options.now;
    this.#onEntry = options.onEntry;
  }

  /** Record an entry, stamped with the simulator's clock, and report it. */
  add(entry: Omit<RequestLogEntry, 'at'>): RequestLogEntry {
    const stamped: RequestLogEntry = { ...entry, at: this.#now() };
    this.#entries.push(stamped);
    // Trimmed in slices, not one entry at a time, so a full log does not cost a copy per request.
    if (this.#entries.length > this.#limit + Math.ceil(this.#limit / 10)) {
      this.#entries.splice(0, this.#entries.length - this.#limit);
    }
    this.#onEntry(stamped);
    return stamped;
  }

  /** Copies of the entries, in order; only `clientId`'s when given. */
  list(clientId?: string): RequestLogEntry[] {
    const selected =
      clientId === undefined ? this.#entries : this.#entries.filter((e) => e.clientId === clientId);
    return selected.map((e) => ({ ...e }));
  }
}
