import { EventEmitter } from 'node:events';
import type { MqttTransport, QoS, SubscriptionRequest } from '../../src/mqtt/transport.js';

export type WireEvent =
  | { type: 'subscribe'; topics: string[]; qos: QoS }
  | { type: 'unsubscribe'; topics: string[] }
  | { type: 'publish'; topic: string; payload: Buffer; qos: QoS };

/**
 * An in-memory stand-in for an mqtt.js client, for unit tests only: records what would go on the wire,
 * answers SUBSCRIBE from `refuse`, and lets a test deliver messages and drop the connection. A hook runs
 * before each acknowledgement so a test can hold it.
 */
export class FakeTransport extends EventEmitter implements MqttTransport {
  connected = true;
  readonly wire: WireEvent[] = [];
  /** Topics the "broker" refuses, with the SUBACK code to use. */
  readonly refuse = new Map<string, number>();
  /** The highest QoS the "broker" grants a topic (a downgrade, as a broker's `max_qos` does). */
  readonly maxQos = new Map<string, QoS>();
  /** Runs before each SUBACK/PUBACK; await something in it to hold the acknowledgement. */
  beforeAck: (event: WireEvent) => Promise<void> | void = () => {};

  async subscribeAsync(request: SubscriptionRequest | string[], options: { qos: QoS }): Promise<unknown> {
    this.#assertConnected();
    const asked: Array<[string, QoS]> = Array.isArray(request)
      ? request.map((t) => [t, options.qos])
      : Object.entries(request).flatMap(
          ([t, o]): Array<[string, QoS]> => (typeof o === 'object' ? [[t, o.qos]] : []),
        );
    const topics = asked.map(([t]) => t);
    const event: WireEvent = { type: 'subscribe', topics, qos: options.qos };
    this.wire.push(event);
    await this.beforeAck(event);
    this.#assertConnected();
    const granted = asked.map(([t, q]) => this.refuse.get(t) ?? Math.min(q, this.maxQos.get(t) ?? q));
    if (granted.some((code) => code >= 0x80)) {
      throw Object.assign(new Error('Subscribe error'), { packet: { cmd: 'suback', granted } });
    }
    return topics.map((topic, i) => ({ topic, qos: granted[i] }));
  }

  async unsubscribeAsync(topics: string[]): Promise<unknown> {
    this.#assertConnected();
    this.wire.push({ type: 'unsubscribe', topics: [...topics] });
    return undefined;
  }

  async publishAsync(topic: string, payload: Buffer, options: { qos: QoS }): Promise<unknown> {
    this.#assertConnected();
    const event: WireEvent = { type: 'publish', topic, payload, qos: options.qos };
    this.wire.push(event);
    await this.beforeAck(event);
    return undefined;
  }

  /** Deliver a message as if the broker had sent it. */
  deliver(topic: string, payload: Buffer | string): void {
    this.emit('message', topic, Buffer.from(payload));
  }

  /** Drop the connection. */
  drop(): void {
    this.connected = false;
    this.emit('offline');
    this.emit('close');
  }

  /** Connect again (a new connection: the "broker" holds no subscription of the old one). */
  reconnect(): void {
    this.connected = true;
    this.emit('connect');
  }

  /** The wire events of one type. */
  sent<T extends WireEvent['type']>(type: T): Array<Extract<WireEvent, { type: T }>> {
    return this.wire.filter((e): e is Extract<WireEvent, { type: T }> => e.type === type);
  }

  #assertConnected(): void {
    if (!this.connected) throw new Error('client disconnecting');
  }
}
