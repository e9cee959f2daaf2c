/**
 * One call in flight: its promise, its deadline (counted from the call, whatever phase it is in), its
 * abort listener, and the single path through which it ends. Every way a call can end (answer,
 * rejection, timeout, abort, lost connection, close) goes through one private `finish`, which clears the
 * timer, removes the abort listener and tells the owner once, before the caller's promise settles.
 *
 * The deadline is one timer on the clock of internal/deadline.ts (`Timers`, so that unit tests drive
 * it), not a p-timeout wrapper: the call already is a promise with one settle path, and p-timeout would
 * add a second promise and build an unused error for every call (see docs/performance.md).
 */
import { REAL_TIMERS, type Timers } from '../internal/deadline.js';
import { AbortedError, type OperationName, type OperationPhase, TimeoutError } from '../protocol/errors.js';

/** Options every asynchronous call of this library takes. */
export interface CallOptions {
  /** Milliseconds from the call to its answer, time spent queued included. */
  timeoutMs?: number;
  /** Aborts the call; it rejects with `ABORTED` and `cause` = `signal.reason`. */
  signal?: AbortSignal;
}

/** The phases of a request: waiting its turn, subscribing, publishing, awaiting the answer. */
export type CallPhase = Extract<OperationPhase, 'queued' | 'subscribe' | 'publish' | 'response'>;

/** How a call ended, as its owner needs to know it. */
export type CallEnd = 'answered' | 'failed';

/** A call seen without its answer type: what queues, pairs and `close()` need. */
export interface CallHandle {
  readonly operation: OperationName | undefined;
  phase: CallPhase;
  readonly done: boolean;
  reject(error: unknown, end?: CallEnd): boolean;
  onEnd(listener: ((end: CallEnd) => void) | undefined): void;
}

/**
 * A call with a deadline. The owner moves it through its phases and ends it with
 * {@link PendingCall.resolve} or {@link PendingCall.reject}; the deadline and the signal end it on their own.
 */
export class PendingCall<T> implements CallHandle {
  /** The operation, when the call is one; undefined for a preparation that spans several. */
  readonly operation: OperationName | undefined;
  /** Settles exactly once. */
  readonly promise: Promise<T>;
  /** Where the call is now; a timeout reports it. */
  phase: CallPhase = 'queued';
  #resolve!: (value: T) => void;
  #reject!: (error: unknown) => void;
  #done = false;
  readonly #timers: Timers;
  readonly #timer: unknown;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort: (() => void) | undefined;
  #onEnd: ((end: CallEnd) => void) | undefined;

  /**
   * Start the deadline now. The caller must check `signal.aborted` first: an aborted signal never
   * fires again. `timers` is the clock of the deadline (a test's own in unit tests).
   */
  constructor(
    operation: OperationName | undefined,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    timers: Timers = REAL_TIMERS,
  ) {
    this.operation = operation;
    this.promise = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#timers = timers;
    this.#timer = timers.setTimeout(
      () => this.reject(new TimeoutError({ ...this.#named(), phase: this.phase, timeoutMs })),
      timeoutMs,
    );
    this.#signal = signal;
    if (signal !== undefined) {
      this.#onAbort = () => this.reject(new AbortedError(signal.reason, this.operation));
      watchSignal(signal, this.#onAbort);
    }
  }

  /** True once the call has settled. */
  get done(): boolean {
    return this.#done;
  }

  /** Be told, once, when the call ends (before its promise settles). One owner at a time. */
  onEnd(listener: ((end: CallEnd) => void) | undefined): void {
    this.#onEnd = listener;
  }

  /** End the call with its answer. Returns false when the call had already ended. */
  resolve(value: T): boolean {
    if (!this.#finish('answered')) return false;
    this.#resolve(value);
    return true;
  }

  /**
   * End the call with an error. `end` is `'answered'` when an answer caused it (a rejection, an invalid
   * payload), so the owner knows no answer is still on its way. Returns false when already ended.
   */
  reject(error: unknown, end: CallEnd = 'failed'): boolean {
    if (!this.#finish(end)) return false;
    this.#reject(error);
    return true;
  }

  /** The one cleanup path: clear the deadline, remove the abort listener, tell the owner. */
  #finish(end: CallEnd): boolean {
    if (this.#done) return false;
    this.#done = true;
    this.#timers.clearTimeout(this.#timer);
    if (this.#signal !== undefined && this.#onAbort !== undefined) unwatchSignal(this.#signal, this.#onAbort);
    const onEnd = this.#onEnd;
    this.#onEnd = undefined;
    onEnd?.(end);
    return true;
  }

  #named(): { operation?: OperationName } {
    return this.operation === undefined ? {} : { operation: this.operation };
  }
}

/**
 * One `abort` listener per signal, however many calls share it: a caller may hand one signal to a
 * thousand queued calls, and a listener each would trip Node's MaxListenersExceededWarning.
 */
const watchers = new WeakMap<AbortSignal, { callbacks: Set<() => void>; fire: () => void }>();

function watchSignal(signal: AbortSignal, callback: () => void): void {
  let watcher = watchers.get(signal);
  if (watcher === undefined) {
    const callbacks = new Set<() => void>();
    const fire = () => {
      watchers.delete(signal);
      for (const cb of callbacks) cb();
    };
    watcher = { callbacks, fire };
    watchers.set(signal, watcher);
    signal.addEventListener('abort', fire, { once: true });
  }
  watcher.callbacks.add(callback);
}

function unwatchSignal(signal: AbortSignal, callback: () => void): void {
  const watcher = watchers.get(signal);
  if (watcher === undefined) return;
  watcher.callbacks.delete(callback);
  if (watcher.callbacks.size === 0) {
    signal.removeEventListener('abort', watcher.fire);
    watchers.delete(signal);
  }
}
