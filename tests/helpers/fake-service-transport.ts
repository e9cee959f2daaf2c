import type { QoS, SubscriptionRequest } from '../../src/mqtt/transport.js';
import { encodePayload, loadCodec } from '../../src/protocol/payload.js';
import { operationTopics, type PayloadFormat } from '../../src/protocol/topics.js';
import { FakeTransport, type WireEvent } from './fake-transport.js';

// CBOR answers are built synchronously here: load the codec once, as the library's clients do before
// their first CBOR call.
await loadCodec('cbor');

/** What the fake service sends back for one request: topic and payload, in order. */
export type FakeAnswer = { topic: string; payload: Buffer | string };

/**
 * A {@link FakeTransport} that also behaves like mqtt.js's outgoing store (packet identifiers, and
 * `removeOutgoingMessage`), announces every wire event, and can answer requests like the service.
 */
export class FakeServiceTransport extends FakeTransport {
  #lastId = 0;
  /** QoS 1 requests the client still holds (sent, not acknowledged), by packet identifier. */
  readonly outgoing = new Map<number, string>();
  readonly removed: number[] = [];
  /** Answers each request; `undefined` means stay silent. Runs when the PUBLISH is "received". */
  respond: ((publish: Extract<WireEvent, { type: 'publish' }>) => FakeAnswer[] | undefined) | undefined;

  override async subscribeAsync(
    topics: SubscriptionRequest | string[],
    options: { qos: QoS },
  ): Promise<unknown> {
    const result = super.subscribeAsync(topics, options);
    this.emit('wire', this.wire.at(-1));
    return result;
  }

  override async unsubscribeAsync(topics: string[]): Promise<unknown> {
    const result = super.unsubscribeAsync(topics);
    this.emit('wire', this.wire.at(-1));
    return result;
  }

  override publishAsync(topic: string, payload: Buffer, options: { qos: QoS }): Promise<unknown> {
    const id = options.qos > 0 && this.connected ? ++this.#lastId : undefined;
    if (id !== undefined) this.outgoing.set(id, topic);
    const result = super.publishAsync(topic, payload, options);
    const event = this.wire.at(-1);
    if (event?.type === 'publish' && this.connected) {
      this.emit('wire', event);
      const answers = this.respond?.(event);
      if (answers !== undefined) {
        setImmediate(() => {
          for (const a of answers) if (this.connected) this.deliver(a.topic, a.payload);
        });
      }
    }
    return result.then((value) => {
      if (id !== undefined) this.outgoing.delete(id);
      return value;
    });
  }

  getLastMessageId(): number {
    return this.#lastId;
  }

  removeOutgoingMessage(messageId: number): this {
    if (this.outgoing.delete(messageId)) this.removed.push(messageId);
    return this;
  }

  /** Resolves once `count` wire events of `type` that match have been sent (counting past ones). */
  waitFor<T extends WireEvent['type']>(
    type: T,
    count = 1,
    match: (e: Extract<WireEvent, { type: T }>) => boolean = () => true,
  ): Promise<Extract<WireEvent, { type: T }>> {
    const ofType = (e: WireEvent): e is Extract<WireEvent, { type: T }> => e.type === type;
    return new Promise((resolve) => {
      const check = () => {
        const seen = this.wire.filter(ofType).filter(match);
        const event = seen[count - 1];
        if (event === undefined) return false;
        this.removeListener('wire', check);
        resolve(event);
        return true;
      };
      if (!check()) this.on('wire', check);
    });
  }

  /** The number of publishes to `topic` so far. */
  published(topic: string): number {
    return this.sent('publish').filter((e) => e.topic === topic).length;
  }

  /** Listeners the library may hold on the client. */
  listenerTotals(): { message: number; close: number; offline: number } {
    return {
      message: this.listenerCount('message'),
      close: this.listenerCount('close'),
      offline: this.listenerCount('offline'),
    };
  }
}

/** Canned accepted answers, numbered so a test can tell whose answer it got. */
export const canned = {
  keys: (n: number) => ({
    certificateId: `cert-${n}`,
    certificatePem: `certificate ${n}`,
    privateKey: `private key number ${n}`,
    certificateOwnershipToken: `token-number-${n}`,
  }),
  thing: (n: number) => ({ thingName: `thing-${n}`, deviceConfiguration: { n: String(n) } }),
  rejection: (statusCode: number, errorCode = 'Code') => ({
    statusCode,
    errorCode,
    errorMessage: `failed with ${statusCode}`,
  }),
};

/** The topics of CreateKeysAndCertificate and of RegisterThing for `template`. */
export function serviceTopics(format: PayloadFormat = 'json', template = 'Factory') {
  return {
    keys: operationTopics('CreateKeysAndCertificate', format),
    csr: operationTopics('CreateCertificateFromCsr', format),
    register: operationTopics('RegisterThing', format, template),
  };
}

/** An answer on `topic` in `format`. */
export function answer(topic: string, value: unknown, format: PayloadFormat = 'json'): FakeAnswer {
  return { topic, payload: encodePayload(value, format) };
}
