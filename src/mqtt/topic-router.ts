/**
 * Subscriptions shared by everything that uses one MQTT client: one `message` listener per client,
 * installed before the first SUBSCRIBE; messages routed by exact topic; each topic reference-counted, so
 * two subscribers to one topic cost one SUBSCRIBE and the UNSUBSCRIBE goes out when the last one leaves.
 *
 * A subscription is "ready" only once the broker acknowledged it on the connection that is up now. The
 * router counts connections (a generation per connection): after a reconnect every held topic is
 * subscribed again with a SUBSCRIBE of its own, whose SUBACK it waits for. It does not trust mqtt.js's
 * own re-subscription (`resubscribe: true`), whose outcome nobody hears, nor let mqtt.js complete a
 * SUBSCRIBE locally because it remembers the topic: every SUBSCRIBE it sends goes to the broker.
 */
import { settleWithin, UNREF_TIMERS } from '../internal/deadline.js';
import { ConnectionLostError, SubscribeFailedError } from '../protocol/errors.js';
import { redact } from '../protocol/redact.js';
import {
  grantedQos,
  isSubackRefusal,
  type MessageListener,
  type MqttTransport,
  type QoS,
  type SubscriptionRequest,
  subackRefusal,
} from './transport.js';

/** How long a release waits for the SUBACK in flight and the UNSUBACK before giving up on them. */
export const RELEASE_TIMEOUT_MS = 5_000;

interface TopicEntry {
  readonly topic: string;
  readonly handlers: Set<MessageListener>;
  /** The highest QoS any holder asked for. */
  qos: QoS;
  /** The generation (connection) on which the broker acknowledged `ackedQos`; -1 for none. */
  ackedOn: number;
  ackedQos: QoS;
  /** The QoS the broker granted in its last SUBACK for this topic. */
  granted: number | undefined;
  /** The SUBSCRIBE in flight for this topic on the current connection, and the QoS it asks. */
  inflight: { promise: Promise<void>; qos: QoS; generation: number } | undefined;
}

/** A hold on one or more topic subscriptions. Release it to let the subscriptions go. */
export interface TopicLease {
  /** The topics held. */
  readonly topics: readonly string[];
  /** The QoS the broker granted `topic` in its last SUBACK (undefined before the first). */
  granted(topic: string): number | undefined;
  /**
   * Resolves once the broker has acknowledged every topic on the connection that is up now; sends a
   * SUBSCRIBE for those it has not (a new connection, a higher QoS), and waits for its SUBACK.
   * @throws {ConnectionLostError} when offline or the connection drops first.
   * @throws {SubscribeFailedError} when the broker refuses a topic.
   */
  ready(): Promise<void>;
  /**
   * Stop delivering to this lease's handler at once; sends UNSUBSCRIBE for the topics no one else
   * holds. Resolves when the broker acknowledged it, when there was nothing to send, or after
   * {@link RELEASE_TIMEOUT_MS}. Never rejects.
   */
  release(): Promise<void>;
}

const routers = new WeakMap<MqttTransport, TopicRouter>();

/** The router of `transport`, made on first use. Everything that shares a client shares its router. */
export function routerFor(transport: MqttTransport): TopicRouter {
  let router = routers.get(transport);
  if (router === undefined) {
    router = new TopicRouter(transport);
    routers.set(transport, router);
  }
  return router;
}

/** Routes received messages to subscribers by exact topic. Obtain one with {@link routerFor}. */
export class TopicRouter {
  readonly #transport: MqttTransport;
  readonly #entries = new Map<string, TopicEntry>();
  /** Holders told when a re-subscription after a reconnect fails. */
  readonly #onError = new Map<MessageListener, (error: unknown) => void>();
  #listening = false;
  /** UNSUBSCRIBEs gathered in this turn of the event loop, sent together. */
  #unsubscribing: { topics: string[]; done: Promise<void> } | undefined;
  /**
   * Topics whose UNSUBSCRIBE is on the wire, until their UNSUBACK (bounded). A SUBSCRIBE of the same
   * topic waits for it: a broker may handle the two out of order (aedes does), and the UNSUBSCRIBE would
   * then undo the new subscription. Only the next holder pays this wait, not the one that released.
   */
  readonly #unsubscribingTopics = new Map<string, Promise<void>>();
  /** Counts connections: bumped when one ends. */
  #generation = 0;
  #up: boolean;

  readonly #onMessage: MessageListener = (topic, payload) => {
    const entry = this.#entries.get(topic);
    if (entry === undefined) return;
    for (const handler of [...entry.handlers]) {
      try {
        handler(topic, payload);
      } catch (error) {
        // A subscriber's own bug must not surface inside mqtt.js's packet parser, nor stop delivery to
        // the other subscribers: it is reported as a process warning instead.
        const reason = error instanceof Error ? error.message : String(error);
        process.emitWarning(redact(`A subscriber to ${topic} threw: ${reason}`), {
          type: 'FleetProvisioningWarning',
        });
      }
    }
  };

  readonly #onDown = (): void => {
    if (!this.#up) return;
    this.#up = false;
    this.#generation++;
  };

  readonly #onUp = (): void => {
    if (this.#up) return;
    this.#up = true;
    // Subscribe every held topic again on the new connection, whatever mqtt.js does on its own.
    const entries = [...this.#entries.values()];
    if (entries.length === 0) return;
    this.#ensure(entries).catch((error: unknown) => {
      // A drop during it is followed by another connection, and another try: only a refusal is news.
      if (!(error instanceof SubscribeFailedError)) return;
      for (const entry of entries) {
        for (const handler of entry.handlers) this.#onError.get(handler)?.(error);
      }
    });
  };

  constructor(transport: MqttTransport) {
    this.#transport = transport;
    this.#up = transport.connected;
  }

  /** The topics currently subscribed through this router. */
  get topics(): string[] {
    return [...this.#entries.keys()];
  }

  /** How many handlers hold `topic`. */
  holders(topic: string): number {
    return this.#entries.get(topic)?.handlers.size ?? 0;
  }

  /**
   * Hold `topics` for `handler`, at once and without traffic: the `message` listener is installed now,
   * so that nothing is missed; call `ready()` on the lease to subscribe. `onError` hears a failed
   * re-subscription after a reconnect.
   */
  hold(
    topics: readonly string[],
    qos: QoS,
    handler: MessageListener,
    onError?: (error: unknown) => void,
  ): TopicLease {
    this.#listen();
    const held = new Map<string, TopicEntry>();
    for (const topic of new Set(topics)) {
      let entry = this.#entries.get(topic);
      if (entry === undefined) {
        entry = {
          topic,
          handlers: new Set(),
          qos,
          ackedOn: -1,
          ackedQos: 0,
          granted: undefined,
          inflight: undefined,
        };
        this.#entries.set(topic, entry);
      }
      if (qos > entry.qos) entry.qos = qos;
      entry.handlers.add(handler);
      held.set(topic, entry);
    }
    if (onError !== undefined) this.#onError.set(handler, onError);
    let released: Promise<void> | undefined;
    return {
      topics: [...held.keys()],
      granted: (topic) => held.get(topic)?.granted,
      ready: () => {
        if (released !== undefined) {
          return Promise.reject(new ConnectionLostError('The subscription was released.'));
        }
        return this.#ensure([...held.values()]);
      },
      release: () => {
        released ??= this.#release(held, handler);
        return released;
      },
    };
  }

  /**
   * {@link TopicRouter.hold}, refusing at once while offline (nothing is held then).
   * @throws {ConnectionLostError} when the client is offline.
   */
  subscribeLease(
    topics: readonly string[],
    qos: QoS,
    handler: MessageListener,
    onError?: (error: unknown) => void,
  ): TopicLease {
    if (!this.#transport.connected) {
      throw new ConnectionLostError('The MQTT client is not connected: connect it before subscribing.');
    }
    return this.hold(topics, qos, handler, onError);
  }

  /**
   * Subscribe `handler` to `topics`: {@link TopicRouter.hold}, then wait until the broker acknowledged
   * them. The topics not yet acknowledged go out in a single SUBSCRIBE packet.
   * @throws {ConnectionLostError} when the client is offline or the connection closes first.
   * @throws {SubscribeFailedError} when the broker refuses a topic.
   */
  async subscribe(
    topics: readonly string[],
    qos: QoS,
    handler: MessageListener,
    onError?: (error: unknown) => void,
  ): Promise<TopicLease> {
    if (!this.#transport.connected) {
      throw new ConnectionLostError('The MQTT client is not connected: connect it before subscribing.');
    }
    const lease = this.hold(topics, qos, handler, onError);
    try {
      await lease.ready();
    } catch (error) {
      await lease.release();
      throw error;
    }
    return lease;
  }

  /**
   * Resolves once the broker has acknowledged every held topic of `topics` on the current connection,
   * at `qos` at least; those it has not go out in one SUBSCRIBE. As {@link TopicLease.ready}.
   */
  ready(topics: readonly string[], qos: QoS): Promise<void> {
    const entries: TopicEntry[] = [];
    for (const topic of new Set(topics)) {
      const entry = this.#entries.get(topic);
      if (entry === undefined) {
        return Promise.reject(new ConnectionLostError(`${topic} is not held: hold it first.`));
      }
      if (qos > entry.qos) entry.qos = qos;
      entries.push(entry);
    }
    return this.#ensure(entries);
  }

  /** Make sure the broker acknowledged every entry on the current connection. */
  #ensure(entries: readonly TopicEntry[]): Promise<void> {
    if (!this.#transport.connected) {
      return Promise.reject(
        new ConnectionLostError('The MQTT client is not connected: connect it before subscribing.'),
      );
    }
    const generation = this.#generation;
    const waits: Promise<void>[] = [];
    const fresh: TopicEntry[] = [];
    for (const entry of entries) {
      if (entry.ackedOn === generation && entry.ackedQos >= entry.qos) continue;
      const inflight = entry.inflight;
      if (inflight !== undefined && inflight.generation === generation && inflight.qos >= entry.qos) {
        waits.push(inflight.promise);
      } else fresh.push(entry);
    }
    if (fresh.length > 0) waits.push(this.#sendSubscribe(fresh, generation));
    if (waits.length === 0) return Promise.resolve();
    if (waits.length === 1 && waits[0] !== undefined) return waits[0];
    return Promise.all(waits).then(() => undefined);
  }

  #sendSubscribe(entries: readonly TopicEntry[], generation: number): Promise<void> {
    const topics = entries.map((e) => e.topic);
    const request: SubscriptionRequest = Object.assign(
      Object.fromEntries(entries.map((e) => [e.topic, { qos: e.qos }])),
      // mqtt.js completes a SUBSCRIBE locally for a topic it remembers; this makes it ask the broker.
      { resubscribe: true },
    );
    const asked = new Map(entries.map((e) => [e, e.qos]));
    const maxQos: QoS = entries.some((e) => e.qos === 1) ? 1 : 0;
    const unsubscribing = topics.flatMap((topic) => this.#unsubscribingTopics.get(topic) ?? []);
    const sent =
      unsubscribing.length === 0
        ? this.#subscribeAsync(request, maxQos)
        : Promise.all(unsubscribing).then(() => this.#subscribeAsync(request, maxQos));
    const promise = sent.then(
      (result) => {
        for (const [entry, qos] of asked) {
          if (entry.inflight?.promise === promise) entry.inflight = undefined;
          entry.granted = grantedQos(result, entry.topic, qos);
          if (generation === this.#generation) {
            entry.ackedOn = generation;
            entry.ackedQos = qos;
          }
        }
        this.#unsubscribeAbandoned(topics, entries);
        if (generation !== this.#generation) {
          throw new ConnectionLostError('The connection dropped while subscribing. Reconnect and retry.');
        }
      },
      (error: unknown) => {
        for (const entry of entries) if (entry.inflight?.promise === promise) entry.inflight = undefined;
        this.#unsubscribeAbandoned(topics, entries);
        if (generation === this.#generation && isSubackRefusal(error)) {
          throw new SubscribeFailedError(subackRefusal(error, topics), { cause: error });
        }
        throw new ConnectionLostError(
          'The connection closed before the broker acknowledged the subscription. Reconnect and try again.',
          { cause: error },
        );
      },
    );
    for (const [entry, qos] of asked) entry.inflight = { promise, qos, generation };
    // Nobody may be waiting any more (everyone released): the failure is then nobody's to hear.
    promise.catch(() => {});
    return promise;
  }

  async #subscribeAsync(request: SubscriptionRequest, qos: QoS): Promise<unknown> {
    return this.#transport.subscribeAsync(request, { qos });
  }

  /**
   * Entries released while their SUBSCRIBE was in flight: the broker now holds them for no one. A topic
   * held again since keeps its subscription (the new holder's SUBSCRIBE went out after this one).
   */
  #unsubscribeAbandoned(topics: readonly string[], entries: readonly TopicEntry[]): void {
    const abandoned = topics.filter((topic, i) => this.#entries.get(topic) !== entries[i]);
    if (abandoned.length > 0) void this.#sendUnsubscribe(abandoned);
  }

  #release(held: Map<string, TopicEntry>, handler: MessageListener): Promise<void> {
    const idle: TopicEntry[] = [];
    for (const [topic, entry] of held) {
      entry.handlers.delete(handler);
      if (entry.handlers.size === 0 && this.#entries.get(topic) === entry) {
        this.#entries.delete(topic);
        idle.push(entry);
      }
    }
    this.#onError.delete(handler);
    this.#stopListeningIfIdle();
    if (idle.length === 0) return Promise.resolve();
    const inflight = idle.flatMap((e) => (e.inflight === undefined ? [] : [e.inflight.promise]));
    // A topic whose SUBSCRIBE is still in flight is unsubscribed once its SUBACK is in (see
    // #unsubscribeAbandoned); the others now.
    const now = idle.filter((e) => e.inflight === undefined).map((e) => e.topic);
    const sent = this.#sendUnsubscribe(now);
    // A SUBSCRIBE in flight is undone once its SUBACK is in: wait for that UNSUBSCRIBE to be written too.
    const undone = inflight.map((p) => p.catch(() => undefined).then(() => this.#unsubscribing?.done));
    const settled = Promise.all([sent, ...undone]).then(() => undefined);
    return settleWithin(settled, RELEASE_TIMEOUT_MS, UNREF_TIMERS).then(() => undefined);
  }

  /**
   * UNSUBSCRIBE `topics`. Releases made in one turn of the event loop (a client closing several pairs)
   * share one packet, written at the start of the next turn: whoever released goes on at once (a
   * provision() on a handed-in client returns its result before the packet is written), and a topic
   * held again in the meantime stays subscribed (see `#flushUnsubscribe`).
   */
  #sendUnsubscribe(topics: string[]): Promise<void> {
    if (topics.length === 0) return Promise.resolve();
    let batch = this.#unsubscribing;
    if (batch === undefined) {
      const pending: string[] = [];
      const done = new Promise<void>((resolve) => {
        setImmediate(() => {
          this.#unsubscribing = undefined;
          resolve(this.#flushUnsubscribe(pending));
        });
      });
      batch = { topics: pending, done };
      this.#unsubscribing = batch;
    }
    batch.topics.push(...topics);
    return batch.done;
  }

  #flushUnsubscribe(requested: string[]): Promise<void> {
    // A topic held again in the meantime is not unsubscribed: its new SUBSCRIBE may be out already, and
    // an UNSUBSCRIBE after it would undo it.
    const topics = [...new Set(requested)].filter((topic) => !this.#entries.has(topic));
    if (topics.length === 0) return Promise.resolve();
    let sent: Promise<unknown>;
    try {
      // Offline too: mqtt.js then forgets the topics at once (it would subscribe them again after a
      // reconnect) and sends the UNSUBSCRIBE when it reconnects. Nothing waits for that.
      sent = this.#transport.unsubscribeAsync(topics);
    } catch (error) {
      sent = Promise.reject(error);
    }
    const done = sent.then(
      (unsuback) => warnOnRefusal(unsuback, topics),
      () => undefined,
    );
    if (!this.#transport.connected) return Promise.resolve();
    const acknowledged = settleWithin(done, RELEASE_TIMEOUT_MS, UNREF_TIMERS).then(() => undefined);
    for (const topic of topics) this.#unsubscribingTopics.set(topic, acknowledged);
    void acknowledged.then(() => {
      for (const topic of topics) {
        if (this.#unsubscribingTopics.get(topic) === acknowledged) this.#unsubscribingTopics.delete(topic);
      }
    });
    return acknowledged;
  }

  #listen(): void {
    if (this.#listening) return;
    this.#transport.on('message', this.#onMessage);
    this.#transport.on('close', this.#onDown);
    this.#transport.on('offline', this.#onDown);
    this.#transport.on('connect', this.#onUp);
    this.#listening = true;
    // While nobody listened, connections may have come and gone.
    this.#up = this.#transport.connected;
    this.#generation++;
  }

  #stopListeningIfIdle(): void {
    if (this.#entries.size === 0 && this.#listening) {
      this.#transport.removeListener('message', this.#onMessage);
      this.#transport.removeListener('close', this.#onDown);
      this.#transport.removeListener('offline', this.#onDown);
      this.#transport.removeListener('connect', this.#onUp);
      this.#listening = false;
    }
  }
}

/**
 * An MQTT 5 UNSUBACK may refuse a topic (reason code 0x80 or more). Nobody waits for an UNSUBSCRIBE, so
 * a refusal becomes a process warning (code `FLEET_PROVISION_UNSUBSCRIBE_REFUSED`): the broker still
 * holds the subscription. "No subscription existed" (0x11) is not a refusal.
 */
function warnOnRefusal(unsuback: unknown, topics: readonly string[]): void {
  if (typeof unsuback !== 'object' || unsuback === null || !('granted' in unsuback)) return;
  const codes = unsuback.granted;
  if (!Array.isArray(codes)) return;
  const refused = topics.flatMap((topic, i) => {
    const code: unknown = codes[i];
    return typeof code === 'number' && code >= 0x80 ? [`${topic} (reason code 0x${code.toString(16)})`] : [];
  });
  if (refused.length === 0) return;
  process.emitWarning(
    `The broker refused to unsubscribe ${refused.join(', ')}: it still holds the subscription.`,
    {
      type: 'FleetProvisioningWarning',
      code: 'FLEET_PROVISION_UNSUBSCRIBE_REFUSED',
    },
  );
}
