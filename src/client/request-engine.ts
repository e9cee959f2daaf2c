/**
 * The request-response engine: one per MQTT connection, shared by every `FleetProvisioningClient` on it,
 * because correlation is a property of the connection (the service answers whoever asked on that
 * connection, with no token). It owns the topic pairs (see correlation.ts, where an answer meets its
 * call), keeps their subscriptions warm while any client is attached, and fails every pending call
 * ({@link RequestEngine.failAll}) as soon as the connection drops.
 */
import type { z } from 'zod/mini';
import type { Timers } from '../internal/deadline.js';
import { routerFor, type TopicLease, type TopicRouter } from '../mqtt/topic-router.js';
import type { MessageListener, MqttTransport, QoS } from '../mqtt/transport.js';
import {
  AbortedError,
  ConnectionLostError,
  InvalidResponseError,
  type OperationName,
  type ResponseIssue,
  SubscribeFailedError,
} from '../protocol/errors.js';
import { readPayload } from '../protocol/payload.js';
import type { OperationTopics, PayloadFormat } from '../protocol/topics.js';
import { type AcceptVerdict, type PairDriver, type PairRequest, TopicPair } from './correlation.js';
import { type CallHandle, PendingCall } from './pending-call.js';

/**
 * An {@link MqttTransport} that can also take back a request it still holds. mqtt.js keeps every
 * unacknowledged QoS 1 PUBLISH and sends it again after a reconnect; a request whose call has ended must
 * not go out again, because its answer would settle a later call. mqtt.js's `MqttClient` has both methods.
 */
export interface RequestTransport extends MqttTransport {
  /** The packet identifier of the last QoS > 0 message (mqtt.js). */
  getLastMessageId?(): number;
  /** Drop an unacknowledged message from the client's outgoing store (mqtt.js). */
  removeOutgoingMessage?(messageId: number): unknown;
}

/** One topic pair: an operation, in a format, for a template when it has one. */
export interface PairKey {
  readonly operation: OperationName;
  readonly topics: OperationTopics;
  readonly format: PayloadFormat;
}

/** Everything the engine needs to run one request. */
export interface RequestSpec<T> extends PairKey {
  readonly payload: Buffer;
  /** Schema of the accepted answer. */
  readonly schema: z.ZodMiniType<T>;
  readonly qos: QoS;
  readonly timeoutMs: number;
  readonly lateAnswerWindowMs: number;
  readonly signal?: AbortSignal | undefined;
  /** For answers that can be recognised: false means "the answer to another request". */
  readonly identify?: { check(answer: T): boolean | Promise<boolean>; issue: ResponseIssue } | undefined;
  /** The clock of the deadline (a test's own in unit tests). */
  readonly timers?: Timers | undefined;
}

const engines = new WeakMap<MqttTransport, RequestEngine>();

/** The engine of `transport`, made on first use. */
export function engineFor(transport: RequestTransport): RequestEngine {
  let engine = engines.get(transport);
  if (engine === undefined) {
    engine = new RequestEngine(transport);
    engines.set(transport, engine);
  }
  return engine;
}

/** Runs requests over one connection. Obtain it with {@link engineFor}; attach before use. */
export class RequestEngine implements PairDriver {
  readonly #transport: RequestTransport;
  readonly #router: TopicRouter;
  readonly #pairs = new Map<string, TopicPair>();
  readonly #byTopic = new Map<string, TopicPair>();
  /** The subscription of each pair: held from its first use until the last client detaches. */
  readonly #leases = new Map<TopicPair, TopicLease>();
  readonly #preparing = new Set<CallHandle>();
  #clients = 0;

  readonly #onDisconnect = (): void => {
    // The subscriptions stay held; the router subscribes them again on the next connection, and every
    // call waits for that SUBACK before it publishes.
    for (const pair of this.#pairs.values()) pair.ready = undefined;
    this.failAll(
      () =>
        new ConnectionLostError(
          'The connection dropped while the call was pending; the request will not be sent again. ' +
            'Reconnect and retry.',
        ),
    );
  };

  constructor(transport: RequestTransport) {
    this.#transport = transport;
    this.#router = routerFor(transport);
  }

  /** True while the client has a live connection. */
  get connected(): boolean {
    return this.#transport.connected;
  }

  /** Calls pending on every pair (for tests and diagnostics). */
  get pending(): number {
    let n = this.#preparing.size;
    for (const pair of this.#pairs.values()) n += pair.pending;
    return n;
  }

  /**
   * Fail every call pending on this connection, queued or running, with a fresh `error()` each, and
   * forget the answers still owed: after a lost connection none can arrive.
   */
  failAll(error: () => unknown): void {
    for (const pair of this.#pairs.values()) pair.failAll(error);
    for (const call of [...this.#preparing]) call.reject(error());
  }

  /** Register a user of the engine; it listens for disconnects while anyone is attached. */
  attach(): void {
    if (this.#clients++ === 0) {
      this.#transport.on('close', this.#onDisconnect);
      this.#transport.on('offline', this.#onDisconnect);
    }
  }

  /**
   * Unregister a user. The last one out removes the listeners and UNSUBSCRIBEs every pair. Pending
   * calls are the caller's to end first. A quarantine in progress stays: a late answer can still come.
   */
  async detach(): Promise<void> {
    if (this.#clients === 0 || --this.#clients > 0) return;
    this.#transport.removeListener('close', this.#onDisconnect);
    this.#transport.removeListener('offline', this.#onDisconnect);
    await Promise.all(this.#releaseAll());
  }

  /**
   * Queue a request on its pair. Throws at once, with nothing sent, when the client is offline or the
   * signal has already fired.
   * @throws {ConnectionLostError} when offline. @throws {AbortedError} when `signal` is aborted.
   */
  request<T>(spec: RequestSpec<T>): PendingCall<T> {
    this.#assertReady(spec.operation, spec.signal);
    const call = new PendingCall<T>(spec.operation, spec.timeoutMs, spec.signal, spec.timers);
    const pair = this.#pair(spec);
    const request: PairRequest = {
      call,
      payload: spec.payload,
      qos: spec.qos,
      lateAnswerWindowMs: spec.lateAnswerWindowMs,
      accept: (bytes, topic) => accept(spec, call, pair, bytes, topic),
      ...(spec.identify === undefined ? {} : { foreignIssue: spec.identify.issue }),
    };
    pair.enqueue(request);
    return call;
  }

  /**
   * Subscribe several pairs at once: the ones not yet subscribed go out in a single SUBSCRIBE packet.
   * @throws as {@link RequestEngine.request}; the call rejects with `SUBSCRIBE_FAILED`,
   * `CONNECTION_LOST`, `TIMEOUT` (phase `subscribe`) or `ABORTED`.
   */
  prepare(
    keys: readonly PairKey[],
    options: { qos: QoS; timeoutMs: number; signal?: AbortSignal | undefined; timers?: Timers | undefined },
  ): PendingCall<void> {
    this.#assertReady(undefined, options.signal);
    const call = new PendingCall<void>(undefined, options.timeoutMs, options.signal, options.timers);
    call.phase = 'subscribe';
    this.#preparing.add(call);
    call.onEnd(() => this.#preparing.delete(call));
    this.#subscribe(
      keys.map((k) => this.#pair(k)),
      options.qos,
    ).then(
      () => call.resolve(undefined),
      (error: unknown) => call.reject(error),
    );
    return call;
  }

  /** {@link PairDriver.subscribe}: resolves once the pair's two topics are subscribed. */
  subscribe(pair: TopicPair, qos: QoS): Promise<void> {
    return this.#subscribe([pair], qos);
  }

  /** {@link PairDriver.publish}: publish and learn which packet identifier mqtt.js gave the request. */
  publish(
    topic: string,
    payload: Buffer,
    qos: QoS,
  ): { sent: Promise<unknown>; messageId: number | undefined } {
    return publishTracked(this.#transport, topic, payload, qos);
  }

  /** {@link PairDriver.forget}: take an unacknowledged request back from mqtt.js's outgoing store. */
  forget(messageId: number): void {
    forgetRequest(this.#transport, messageId);
  }

  #assertReady(operation: OperationName | undefined, signal: AbortSignal | undefined): void {
    if (signal?.aborted === true) throw new AbortedError(signal.reason, operation);
    if (!this.#transport.connected) {
      throw new ConnectionLostError(
        `Cannot send ${operation ?? 'the subscriptions'}: the MQTT client is not connected. Connect it first.`,
      );
    }
  }

  #pair(key: PairKey): TopicPair {
    let pair = this.#pairs.get(key.topics.request);
    if (pair === undefined) {
      pair = new TopicPair(key.operation, key.topics, key.format, this);
      this.#pairs.set(key.topics.request, pair);
      this.#byTopic.set(key.topics.accepted, pair);
      this.#byTopic.set(key.topics.rejected, pair);
    }
    return pair;
  }

  #subscribe(pairs: readonly TopicPair[], qos: QoS): Promise<void> {
    const cold = pairs.filter((p) => p.ready === undefined);
    if (cold.length > 0) {
      const topics: string[] = [];
      for (const pair of cold) {
        let lease = this.#leases.get(pair);
        if (lease === undefined) {
          const handler: MessageListener = (topic, payload) => pair.receive(topic, payload);
          lease = this.#router.hold([pair.topics.accepted, pair.topics.rejected], qos, handler);
          this.#leases.set(pair, lease);
        }
        topics.push(...lease.topics);
      }
      // One SUBSCRIBE for every topic not yet acknowledged on this connection.
      const ready = this.#router.ready(topics, qos);
      // Registered before any waiter, so a failed subscription is forgotten before anyone retries it.
      ready.catch((error: unknown) => {
        for (const pair of cold) {
          if (pair.ready !== ready) continue;
          pair.ready = undefined;
          // A refusal is not kept: the lease goes (and with it the half the broker granted).
          if (error instanceof SubscribeFailedError) {
            void this.#leases.get(pair)?.release();
            this.#leases.delete(pair);
          }
        }
      });
      for (const p of cold) p.ready = ready;
    }
    const waits = pairs.map((p) => p.ready);
    if (waits.length === 1 && waits[0] !== undefined) return waits[0];
    return Promise.all(waits).then(() => undefined);
  }

  /** Release every subscription (the last client detached). */
  #releaseAll(): Promise<void>[] {
    const released = [...this.#leases.values()].map((lease) => lease.release());
    this.#leases.clear();
    for (const pair of this.#pairs.values()) pair.ready = undefined;
    return released;
  }
}

/**
 * Publish, and learn which packet identifier mqtt.js gave the message (QoS 1), so that it can be taken
 * back from mqtt.js's outgoing store if the caller stops waiting for it.
 */
export function publishTracked(
  transport: RequestTransport,
  topic: string,
  payload: Buffer,
  qos: QoS,
): { sent: Promise<unknown>; messageId: number | undefined } {
  const before = qos === 0 ? undefined : transport.getLastMessageId?.();
  let sent: Promise<unknown>;
  try {
    sent = transport.publishAsync(topic, payload, { qos });
  } catch (error) {
    sent = Promise.reject(error);
  }
  // mqtt.js allocates the identifier synchronously unless it had to defer the publish; an unchanged
  // "last identifier" means it did not allocate one, and then there is nothing we could safely remove.
  const after = before === undefined ? undefined : transport.getLastMessageId?.();
  return { sent, messageId: after !== undefined && after !== before ? after : undefined };
}

/** Take an unacknowledged message back from mqtt.js's outgoing store, so a reconnect does not resend it. */
export function forgetRequest(transport: RequestTransport, messageId: number): void {
  try {
    transport.removeOutgoingMessage?.(messageId);
  } catch {
    // Nothing to take back: the client no longer holds it.
  }
}

/** Read an accepted answer for `call`: decode, validate, recognise, settle. */
function accept<T>(
  spec: RequestSpec<T>,
  call: PendingCall<T>,
  pair: TopicPair,
  bytes: Buffer,
  topic: string,
): AcceptVerdict | Promise<AcceptVerdict> {
  const read = readPayload(spec.schema, bytes, spec.format);
  if (!read.ok) {
    call.reject(
      new InvalidResponseError({ operation: spec.operation, topic, issues: read.issues }),
      'answered',
    );
    return 'settled';
  }
  const { value } = read;
  const certificateId = certificateIdOf(value);
  if (certificateId !== undefined && pair.delivered(certificateId)) return 'repeat';
  const settle = (): AcceptVerdict => {
    if (certificateId !== undefined) pair.remember(certificateId);
    call.resolve(value);
    return 'settled';
  };
  if (spec.identify === undefined) return settle();
  const decide = (mine: boolean): AcceptVerdict => (mine ? settle() : 'foreign');
  const mine = spec.identify.check(value);
  return typeof mine === 'boolean' ? decide(mine) : mine.then(decide);
}

/** The `certificateId` of a validated accepted answer, for the operations that issue one. */
function certificateIdOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || !('certificateId' in value)) return undefined;
  return typeof value.certificateId === 'string' ? value.certificateId : undefined;
}
