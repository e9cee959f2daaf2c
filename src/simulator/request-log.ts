/**
 * The request log: what each client did and was sent, in order, so tests can assert ordering
 * (subscribe before publish) and in-flight counts, and await entries instead of sleeping.
 */
import type { RequestLogEntry } from './types.js';

/** A log bounded in entries and in bytes, ordered, that reports every entry as it is added. */
export class RequestLog {
  readonly #entries: RequestLogEntry[] = [];
  /** The size of each entry, as its JSON, in the order of `#entries`. */
  readonly #sizes: number[] = [];
  #bytes = 0;
  readonly #limit: number;
  readonly #maxBytes: number;
  readonly #now: () => number;
  readonly #onEntry: (entry: RequestLogEntry) => void;

  constructor(options: {
    limit: number;
    maxBytes: number;
    now: () => number;
    onEntry: (entry: RequestLogEntry) => void;
  }) {
    this.#limit = options.limit;
    this.#maxBytes = options.maxBytes;
    this.#now = options.now;
    this.#onEntry = options.onEntry;
  }

  /** Record an entry, stamped with the simulator's clock, and report it. */
  add(entry: Omit<RequestLogEntry, 'at'>): RequestLogEntry {
    const stamped: RequestLogEntry = { ...entry, at: this.#now() };
    const size = JSON.stringify(stamped).length;
    this.#entries.push(stamped);
    this.#sizes.push(size);
    this.#bytes += size;
    // Trimmed in slices, not one entry at a time, so a full log does not cost a copy per request.
    if (this.#entries.length > this.#limit + Math.ceil(this.#limit / 10)) {
      this.#drop(this.#entries.length - this.#limit);
    }
    if (this.#bytes > this.#maxBytes) {
      // Down to 90% of the limit (or to the newest entry alone), so the next entries do not trim again.
      let count = 0;
      let bytes = this.#bytes;
      while (count < this.#entries.length - 1 && bytes > this.#maxBytes * 0.9) {
        bytes -= this.#sizes[count] ?? 0;
        count += 1;
      }
      this.#drop(count);
    }
    this.#onEntry(stamped);
    return stamped;
  }

  #drop(count: number): void {
    this.#entries.splice(0, count);
    for (const size of this.#sizes.splice(0, count)) this.#bytes -= size;
  }

  /** Copies of the entries, in order; only `clientId`'s when given. */
  list(clientId?: string): RequestLogEntry[] {
    const selected =
      clientId === undefined ? this.#entries : this.#entries.filter((e) => e.clientId === clientId);
    return selected.map((e) => ({ ...e }));
  }
}
