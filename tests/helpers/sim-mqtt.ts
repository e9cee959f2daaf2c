import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { OperationName } from '../../src/protocol/errors.js';
import { decodePayload, encodePayload, loadCodec } from '../../src/protocol/payload.js';
import { operationTopics, type PayloadFormat } from '../../src/protocol/topics.js';
import type { Simulator } from '../../src/simulator/index.js';
import { connectClient } from './mqtt.js';

// CBOR answers are built synchronously here: load the codec once, as the library's clients do before
// their first CBOR call.
await loadCodec('cbor');

/** Credentials a client presents over mutual TLS. */
export interface Credentials {
  cert: string;
  key: string;
}

/** Connect to `sim`: with the claim certificate over mTLS (or `credentials`), or plainly for a plain simulator. */
export function connectTo(
  sim: Simulator,
  credentials?: Credentials,
  options: IClientOptions = {},
): Promise<MqttClient> {
  if (sim.url.startsWith('mqtt://')) return connectClient(sim.url, options);
  return connectClient(sim.url, {
    ca: sim.caCertificate,
    cert: credentials?.cert ?? sim.claimCertificate,
    key: credentials?.key ?? sim.claimPrivateKey,
    ...options,
  });
}

/**
 * Try to connect and report how it ended: `'connected'`, the CONNACK return code (5: not authorised), or
 * the error message. mqtt.js's connectAsync never settles when the server closes without an error, which
 * a failed TLS 1.3 client-certificate check can do, so this listens for `close` too.
 */
export function connectOutcome(
  sim: Simulator,
  /** `null`: offer no client certificate at all. */
  credentials?: Credentials | null,
  options: IClientOptions = {},
): Promise<'connected' | number | string> {
  let tls: IClientOptions = {};
  if (sim.url.startsWith('mqtts://')) {
    tls =
      credentials === null
        ? { ca: sim.caCertificate }
        : {
            ca: sim.caCertificate,
            cert: credentials?.cert ?? sim.claimCertificate,
            key: credentials?.key ?? sim.claimPrivateKey,
          };
  }
  const client = mqtt.connect(sim.url, { reconnectPeriod: 0, connectTimeout: 5_000, ...tls, ...options });
  return new Promise((resolve) => {
    const finish = (outcome: 'connected' | number | string) => {
      client.removeAllListeners();
      client.on('error', () => {});
      client.end(true, () => resolve(outcome));
    };
    client.once('connect', () => finish('connected'));
    client.once('error', (error) => {
      const code: unknown = Reflect.get(error, 'code');
      finish(typeof code === 'number' ? code : error.message);
    });
    client.once('close', () => finish('closed'));
  });
}

/** A message as a test client received it. */
export interface Received {
  topic: string;
  payload: Buffer;
}

/** Record every message `client` receives from now on. */
export function recordMessages(client: MqttClient): Received[] {
  const seen: Received[] = [];
  client.on('message', (topic, payload) => seen.push({ topic, payload }));
  return seen;
}

/** The next message on one of `topics`. */
export function nextMessage(client: MqttClient, topics: readonly string[]): Promise<Received> {
  return new Promise((resolve) => {
    const listener = (topic: string, payload: Buffer) => {
      if (!topics.includes(topic)) return;
      client.removeListener('message', listener);
      resolve({ topic, payload });
    };
    client.on('message', listener);
  });
}

/** An answer, decoded. */
export interface AnswerSeen {
  kind: 'accepted' | 'rejected';
  topic: string;
  payload: Buffer;
  /** The decoded payload; undefined when it does not decode. */
  value: unknown;
}

/** Options of {@link ask}. */
export interface AskOptions {
  format?: PayloadFormat;
  templateName?: string;
  /** Leave the answer topics subscribed (so a test can watch for a second answer). */
  keepSubscribed?: boolean;
}

/**
 * Subscribe to an operation's answers, publish `payload` (a value to encode, or raw bytes), and return the
 * first answer. The raw wire, for tests of the simulator itself.
 */
export async function ask(
  client: MqttClient,
  operation: OperationName,
  payload: unknown,
  options: AskOptions = {},
): Promise<AnswerSeen> {
  const format = options.format ?? 'json';
  const t = operationTopics(operation, format, options.templateName ?? 'DemoTemplate');
  await client.subscribeAsync([t.accepted, t.rejected], { qos: 1 });
  const answer = nextMessage(client, [t.accepted, t.rejected]);
  const bytes = Buffer.isBuffer(payload) ? payload : encodePayload(payload, format);
  await client.publishAsync(t.request, bytes, { qos: 1 });
  const { topic, payload: raw } = await answer;
  if (options.keepSubscribed !== true) await client.unsubscribeAsync([t.accepted, t.rejected]);
  const decoded = decodePayload(raw, format);
  return {
    kind: topic === t.accepted ? 'accepted' : 'rejected',
    topic,
    payload: raw,
    value: decoded.ok ? decoded.value : undefined,
  };
}

/** Read a string field of an answer (the test fails clearly when it is missing). */
export function field(answer: AnswerSeen, name: string): string {
  const value: unknown =
    typeof answer.value === 'object' && answer.value !== null ? Reflect.get(answer.value, name) : undefined;
  if (typeof value !== 'string') throw new Error(`answer on ${answer.topic} has no string ${name}`);
  return value;
}

/** Wait until `client` is closed by the other side. */
export async function closedByServer(client: MqttClient): Promise<void> {
  if (!client.connected) return;
  await new Promise<void>((resolve) => client.once('close', () => resolve()));
}
