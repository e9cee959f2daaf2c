/**
 * The narrow slice of an MQTT client this library needs. A connected mqtt.js `MqttClient` satisfies it
 * as it is; unit tests hand in a fake one.
 */

/** The QoS levels AWS IoT Core supports. */
export type QoS = 0 | 1;

/** Called for every PUBLISH the client receives. */
export type MessageListener = (topic: string, payload: Buffer) => void;

/**
 * A SUBSCRIBE as mqtt.js's object form: topic filter → options, and `resubscribe: true`, which makes
 * mqtt.js send the packet even for a topic it already remembers (without it, mqtt.js completes such a
 * SUBSCRIBE locally, without asking the broker).
 */
export type SubscriptionRequest = {
  [topic: string]: {
    /** The QoS asked for this topic filter. */
    qos: QoS;
  };
} & {
  /** Send the SUBSCRIBE even for topics mqtt.js remembers. */
  resubscribe?: boolean;
};

/** What the library asks of an MQTT client (mqtt.js v5's `MqttClient` fits as it is). */
export interface MqttTransport {
  /** True while the client has a live, acknowledged connection. */
  readonly connected: boolean;
  /**
   * Subscribe to several topic filters in one SUBSCRIBE packet; rejects when the SUBACK refuses any.
   * Resolves with the granted subscriptions (`[{ topic, qos }]`, as mqtt.js does).
   */
  subscribeAsync(topics: SubscriptionRequest, options: { qos: QoS }): Promise<unknown>;
  /** Unsubscribe from several topic filters in one UNSUBSCRIBE packet. */
  unsubscribeAsync(topics: string[]): Promise<unknown>;
  /** Publish one message; resolves once it is sent (QoS 0) or acknowledged (QoS 1). */
  publishAsync(topic: string, payload: Buffer, options: { qos: QoS }): Promise<unknown>;
  /** Every incoming PUBLISH, with its topic and payload. */
  on(event: 'message', listener: MessageListener): unknown;
  /** The connection closed or went offline: pending calls fail with `CONNECTION_LOST`. */
  on(event: 'close' | 'offline' | 'connect', listener: () => void): unknown;
  /** Remove a `message` listener added with `on`. */
  removeListener(event: 'message', listener: MessageListener): unknown;
  /** Remove a `close`, `offline` or `connect` listener added with `on`. */
  removeListener(event: 'close' | 'offline' | 'connect', listener: () => void): unknown;
}

/**
 * The reason code SUBACK uses for "refused" on MQTT 3.1.1 (and "unspecified error" on MQTT 5).
 * @internal
 */
export const SUBACK_FAILURE = 0x80;

/**
 * Which topic a rejected SUBSCRIBE refused, and with what reason code. mqtt.js rejects with an error
 * that carries the SUBACK packet (`error.packet.granted`, one code per topic in request order); other
 * transports may give a numeric `code`.
 */
export function subackRefusal(
  error: unknown,
  topics: readonly string[],
): { topic: string; reasonCode: number } {
  const fallbackTopic = topics[0] ?? '';
  if (typeof error !== 'object' || error === null)
    return { topic: fallbackTopic, reasonCode: SUBACK_FAILURE };
  const packet: unknown = 'packet' in error ? error.packet : undefined;
  const granted: unknown =
    typeof packet === 'object' && packet !== null && 'granted' in packet ? packet.granted : undefined;
  if (Array.isArray(granted)) {
    for (let i = 0; i < granted.length; i++) {
      const code: unknown = granted[i];
      if (typeof code === 'number' && code >= SUBACK_FAILURE) {
        return { topic: topics[i] ?? fallbackTopic, reasonCode: code };
      }
    }
  }
  const code: unknown = 'code' in error ? error.code : undefined;
  return { topic: fallbackTopic, reasonCode: typeof code === 'number' ? code : SUBACK_FAILURE };
}

/**
 * The QoS the broker granted each topic, from what `subscribeAsync` resolved with (mqtt.js: the
 * subscriptions with `qos` set to the granted code). A topic it does not name keeps `requested`.
 */
export function grantedQos(result: unknown, topic: string, requested: QoS): number {
  if (!Array.isArray(result)) return requested;
  for (const item of result) {
    if (typeof item !== 'object' || item === null) continue;
    const named: unknown = 'topic' in item ? item.topic : undefined;
    const qos: unknown = 'qos' in item ? item.qos : undefined;
    if (named === topic && typeof qos === 'number') return qos;
  }
  return requested;
}

/** True when the error is a SUBACK refusal rather than a lost connection or a client-side failure. */
export function isSubackRefusal(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  if ('packet' in error && typeof error.packet === 'object' && error.packet !== null) {
    return 'granted' in error.packet;
  }
  return 'code' in error && typeof error.code === 'number' && error.code >= SUBACK_FAILURE;
}
