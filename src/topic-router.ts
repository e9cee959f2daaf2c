/**
 * Subscriptions shared by everything that uses one MQTT client: one `message` listener per client,
 * installed before the first SUBSCRIBE; messages routed by exact topic; each topic reference-counted, so
 * two subscribers to one topic cost one SUBSCRIBE and the UNSUBSCRIBE goes out when the last one leaves.
 */
import { ConnectionLostError, SubscribeFailedError } from './errors.js';
import { redact } from './redact.js';
import {
  isSubackRefusal,
  type MessageListener,
  type MqttTransport,
  type QoS,
  subackRefusal,
} from './transport.js';

interface TopicEntry {
  readonly handlers: Set<MessageListener>;
  /** Settles when the broker has answered the SUBSCRIBE that created this entry. */
  ready: Promise<void>;
}

/** A hold on one or more topic subscriptions. Release it to let the subscriptions go. */
export interface TopicLease {
  /** The topics held. */
  readonly topics: readonly string[];
  /**
   * Stop delivering to this lease's handler; sends UNSUBSCRIBE for the topics no one else holds.
   * Resolves when the broker acknowledged it (at once when nothing needed to be sent). Never rejects.
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
  #listening = false;

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

  constructor(transport: MqttTransport) {
    this.#transport = transport;
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
   * Subscribe `handler` to `topics`. The topics no one holds yet go out in a single SUBSCRIBE packet;
   * resolves once every topic's SUBACK is in.
   * @throws {ConnectionLostError} when the client is offline or the connection closes first.
   * @throws {SubscribeFailedError} when the broker refuses a topic.
   */
  async subscribe(topics: readonly string[], qos: QoS, handler: MessageListener): Promise<TopicLease> {
    if (!this.#transport.connected) {
      throw new ConnectionLostError('The MQTT client is not connected: connect it before subscribing.');
    }
    if (!this.#listening) {
      this.#transport.on('message', this.#onMessage);
      this.#listening = true;
    }
    const held = new Map<string, TopicEntry>();
    const fresh: TopicEntry[] = [];
    const freshTopics: string[] = [];
    for (const topic of new Set(topics)) {
      let entry = this.#entries.get(topic);
      if (entry === undefined) {
        entry = { handlers: new Set(), ready: Promise.resolve() };
        this.#entries.set(topic, entry);
        fresh.push(entry);
        freshTopics.push(topic);
      }
      entry.handlers.add(handler);
      held.set(topic, entry);
    }
    if (freshTopics.length > 0) {
      const sent = this.#sendSubscribe(freshTopics, qos, fresh);
      for (const entry of fresh) entry.ready = sent;
    }
    const lease = this.#lease(held, handler);
    try {
      await Promise.all([...held.values()].map((e) => e.ready));
    } catch (error) {
      await lease.release();
      throw error;
    }
    return lease;
  }

  async #sendSubscribe(topics: string[], qos: QoS, entries: TopicEntry[]): Promise<void> {
    try {
      await this.#transport.subscribeAsync(topics, { qos });
    } catch (error) {
      // Forget the entries for everyone who waits on them; a partly granted SUBSCRIBE is undone.
      topics.forEach((topic, i) => {
        if (this.#entries.get(topic) === entries[i]) this.#entries.delete(topic);
      });
      this.#sendUnsubscribe(topics);
      this.#stopListeningIfIdle();
      if (isSubackRefusal(error))
        throw new SubscribeFailedError(subackRefusal(error, topics), { cause: error });
      throw new ConnectionLostError(
        'The connection closed before the broker acknowledged the subscription. Reconnect and try again.',
        { cause: error },
      );
    }
  }

  #lease(held: Map<string, TopicEntry>, handler: MessageListener): TopicLease {
    let released: Promise<void> | undefined;
    return {
      topics: [...held.keys()],
      release: () => {
        released ??= this.#release(held, handler);
        return released;
      },
    };
  }

  #release(held: Map<string, TopicEntry>, handler: MessageListener): Promise<void> {
    const idle: string[] = [];
    for (const [topic, entry] of held) {
      entry.handlers.delete(handler);
      if (entry.handlers.size === 0 && this.#entries.get(topic) === entry) {
        this.#entries.delete(topic);
        idle.push(topic);
      }
    }
    this.#stopListeningIfIdle();
    return this.#sendUnsubscribe(idle);
  }

  #sendUnsubscribe(topics: string[]): Promise<void> {
    if (topics.length === 0 || !this.#transport.connected) return Promise.resolve();
    // Nothing waits on an UNSUBACK to be correct: a failure here only means the broker dropped us.
    return this.#transport.unsubscribeAsync(topics).then(
      () => undefined,
      () => undefined,
    );
  }

  #stopListeningIfIdle(): void {
    if (this.#entries.size === 0 && this.#listening) {
      this.#transport.removeListener('message', this.#onMessage);
      this.#listening = false;
    }
  }
}
