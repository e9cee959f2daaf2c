/**
 * An operation stream: the validated messages of one answer topic, as an `AsyncIterable` and as a
 * callback. A payload that fails to decode or validate becomes an `INVALID_RESPONSE` error on the stream;
 * nothing is ever thrown into the MQTT client.
 */
import type { z } from 'zod/mini';
import { PendingCall } from '../client/pending-call.js';
import type { TopicLease, TopicRouter } from '../mqtt/topic-router.js';
import type { QoS } from '../mqtt/transport.js';
import {
  FleetProvisioningError,
  InvalidResponseError,
  type OperationName,
  SubscribeFailedError,
} from '../protocol/errors.js';
import { loadCodec, readPayload } from '../protocol/payload.js';
import type { PayloadFormat } from '../protocol/topics.js';

/**
 * Receives each message of a stream: `(undefined, response)` for a valid one, `(error, undefined)` for
 * one that is not. The same shape as the handlers of AWS's `IotIdentityClient`.
 */
export type StreamCallback<T> = (error: FleetProvisioningError | undefined, response: T | undefined) => void;

/** What a stream reads: one topic of one operation, in one format, against one schema. */
export interface StreamSpec<T> {
  /** The operation the topic answers, named in errors. */
  operation: OperationName;
  /** The exact topic to subscribe to. */
  topic: string;
  /** How payloads on it are encoded. */
  format: PayloadFormat;
  /** What every message must match; anything else becomes an `INVALID_RESPONSE` error on the stream. */
  schema: z.ZodMiniType<T>;
}

type Item<T> = { value: T } | { error: FleetProvisioningError };

/**
 * How many messages a stream keeps for an iterator that has not asked yet; older ones are dropped.
 * @internal
 */
export const STREAM_BUFFER_LIMIT = 64;

/**
 * A live subscription to one answer topic. Iterate it with `for await`, pass a callback when opening
 * it, or both: every message goes to the callback and to the iteration. An invalid payload makes the
 * iterator's `next()` reject with `INVALID_RESPONSE`; the subscription stays open and a new loop picks up
 * the following messages. Leaving a `for await` early (`break`, `return`, a throw in its body) releases
 * the subscription, as Node's own async iterables do; so does {@link OperationStream.unsubscribe}, which
 * also ends every iteration.
 */
export class OperationStream<T> implements AsyncIterable<T> {
  /** The subscribed topic. */
  readonly topic: string;
  #qos: QoS;
  readonly #spec: StreamSpec<T>;
  readonly #callback: StreamCallback<T> | undefined;
  readonly #buffer: Item<T>[] = [];
  readonly #waiters: Array<(item: Item<T> | undefined) => void> = [];
  #lease: TopicLease | undefined;
  #closed = false;

  private constructor(spec: StreamSpec<T>, qos: QoS, callback: StreamCallback<T> | undefined) {
    this.topic = spec.topic;
    this.#qos = qos;
    this.#spec = spec;
    this.#callback = callback;
  }

  /**
   * Subscribe to `spec.topic` through `router` and resolve once the SUBACK is in, waiting at most
   * `timeoutMs` (default 60 000) for it. Messages that arrive before then are delivered too, as AWS
   * documents for its clients.
   * @throws {SubscribeFailedError} when the broker refuses the topic.
   * @throws {ConnectionLostError} when the client is offline or drops first.
   * @throws {TimeoutError} phase `subscribe` when the SUBACK does not come in time.
   */
  static async open<T>(
    router: TopicRouter,
    spec: StreamSpec<T>,
    qos: QoS,
    callback?: StreamCallback<T>,
    timeoutMs = 60_000,
  ): Promise<OperationStream<T>> {
    await loadCodec(spec.format);
    const stream = new OperationStream(spec, qos, callback);
    // The lease is held (and the listener installed) before the SUBSCRIBE goes out.
    const lease = router.subscribeLease(
      [spec.topic],
      qos,
      (_topic, payload) => stream.#receive(payload),
      (error) => stream.#fail(error),
    );
    stream.#lease = lease;
    const call = new PendingCall<void>(spec.operation, timeoutMs, undefined);
    call.phase = 'subscribe';
    lease.ready().then(
      () => call.resolve(undefined),
      (error: unknown) => call.reject(error),
    );
    try {
      await call.promise;
    } catch (error) {
      stream.#closed = true;
      await lease.release();
      throw error;
    }
    const granted = lease.granted(spec.topic);
    stream.#qos = granted === 0 ? 0 : granted === undefined ? qos : 1;
    return stream;
  }

  /** The QoS the broker granted in its SUBACK (it may be lower than the one asked for). */
  get qos(): QoS {
    return this.#qos;
  }

  /** True once {@link OperationStream.unsubscribe} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Stop receiving, end every iteration, and UNSUBSCRIBE when no one else holds the topic. */
  async unsubscribe(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#buffer.length = 0;
    for (const wake of this.#waiters.splice(0)) wake(undefined);
    await this.#lease?.release();
  }

  #receive(payload: Buffer): void {
    if (this.#closed) return;
    const { operation, topic, format, schema } = this.#spec;
    const read = readPayload(schema, payload, format);
    this.#push(
      read.ok
        ? { value: read.value }
        : { error: new InvalidResponseError({ operation, topic, issues: read.issues }) },
    );
  }

  /** A re-subscription after a reconnect failed: the stream hears it as an error. */
  #fail(error: unknown): void {
    if (this.#closed) return;
    const coded =
      error instanceof FleetProvisioningError
        ? error
        : new SubscribeFailedError({ topic: this.topic, reasonCode: 0x80 }, { cause: error });
    this.#push({ error: coded });
  }

  #push(item: Item<T>): void {
    if (this.#callback !== undefined) {
      if ('value' in item) this.#callback(undefined, item.value);
      else this.#callback(item.error, undefined);
    }
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter(item);
      return;
    }
    this.#buffer.push(item);
    if (this.#buffer.length > STREAM_BUFFER_LIMIT) this.#buffer.shift();
  }

  #next(): Promise<Item<T> | undefined> {
    const item = this.#buffer.shift();
    if (item !== undefined || this.#closed) return Promise.resolve(item);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * Iterate the validated messages until the stream is unsubscribed. Leaving the loop early
   * unsubscribes.
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: async (): Promise<IteratorResult<T>> => {
        const item = await this.#next();
        if (item === undefined) return { done: true, value: undefined };
        if ('error' in item) throw item.error;
        return { done: false, value: item.value };
      },
      return: async (): Promise<IteratorResult<T>> => {
        await this.unsubscribe();
        return { done: true, value: undefined };
      },
    };
  }
}
