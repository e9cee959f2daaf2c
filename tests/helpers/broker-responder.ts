/**
 * A tiny Fleet Provisioning responder for plain brokers (mosquitto, aedes): an mqtt.js client that
 * subscribes to the request topics and answers each request on its accepted (or rejected) topic with
 * canned payloads. It records what it saw, counts requests in flight per operation (received and not
 * yet answered), and can be told to answer differently. Fast on purpose: it measures the client, not
 * X.509.
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import type { OperationName } from '../../src/protocol/errors.js';
import { encodePayload, loadCodec } from '../../src/protocol/payload.js';
import { parseTopic } from '../../src/protocol/topics.js';
import { connectClient } from './mqtt.js';

// CBOR answers are built synchronously here: load the codec once, as the library's clients do before
// their first CBOR call.
await loadCodec('cbor');

/** What the responder publishes for one request: topic and raw payload. */
export interface ResponderAnswer {
  topic: string;
  payload: Buffer | string;
}

/** One request the responder received. */
export interface ResponderRequest {
  operation: OperationName;
  topic: string;
  payload: Buffer;
  /** 1-based number of this request among all requests of its operation. */
  n: number;
  /** Requests of this operation in flight when it arrived, itself included. */
  inFlight: number;
}

/** Decide the answers for a request; return undefined for the default accepted answer. */
export type Answerer = (request: ResponderRequest) => ResponderAnswer[] | undefined;

export interface BrokerResponder {
  readonly client: MqttClient;
  readonly requests: ResponderRequest[];
  /** The largest number of requests of one operation in flight at once. */
  maxInFlight(operation: OperationName): number;
  /** Replace the answer policy (undefined: the default answers). */
  answerer: Answerer | undefined;
  close(): Promise<void>;
}

/** The request topic filters of the service, both formats, any template. */
export const REQUEST_FILTERS = [
  '$aws/certificates/create/+',
  '$aws/certificates/create-from-csr/+',
  '$aws/provisioning-templates/+/provision/+',
];

/** Canned accepted answers, numbered. About the size of AWS's (the key answer is ~3.5 KB). */
export function cannedAnswer(operation: OperationName, n: number): Record<string, unknown> {
  const filler = 'A'.repeat(1200);
  switch (operation) {
    case 'CreateKeysAndCertificate':
      return {
        certificateId: `${n}`.padStart(64, '0'),
        certificatePem: `-----BEGIN CERTIFICATE-----\n${filler}\n-----END CERTIFICATE-----\n`,
        privateKey: `-----BEGIN RSA PRIVATE KEY-----\n${filler}${filler}\n-----END RSA PRIVATE KEY-----\n`,
        certificateOwnershipToken: `token-${n}-${'t'.repeat(400)}`,
      };
    case 'CreateCertificateFromCsr':
      return {
        certificateId: `${n}`.padStart(64, '0'),
        certificatePem: `-----BEGIN CERTIFICATE-----\n${filler}\n-----END CERTIFICATE-----\n`,
        certificateOwnershipToken: `token-${n}-${'t'.repeat(400)}`,
      };
    case 'RegisterThing':
      return { thingName: `thing-${n}`, deviceConfiguration: { n: String(n) } };
  }
}

/**
 * Connect a responder to `url`. Answers go out on the next turn of the event loop, so a client that
 * sent two requests of one kind back to back shows up as two in flight.
 */
export async function startResponder(url: string, options: IClientOptions = {}): Promise<BrokerResponder> {
  const client = await connectClient(url, options);
  const requests: ResponderRequest[] = [];
  const counts = new Map<OperationName, number>();
  const inFlight = new Map<OperationName, number>();
  const max = new Map<OperationName, number>();
  const responder: BrokerResponder = {
    client,
    requests,
    answerer: undefined,
    maxInFlight: (operation) => max.get(operation) ?? 0,
    close: async () => {
      await client.endAsync(true);
    },
  };
  client.on('message', (topic, payload) => {
    const parsed = parseTopic(topic);
    if (parsed === undefined || parsed.kind !== 'request') return;
    const { operation, format } = parsed;
    const n = (counts.get(operation) ?? 0) + 1;
    counts.set(operation, n);
    const flying = (inFlight.get(operation) ?? 0) + 1;
    inFlight.set(operation, flying);
    max.set(operation, Math.max(max.get(operation) ?? 0, flying));
    const request: ResponderRequest = { operation, topic, payload, n, inFlight: flying };
    requests.push(request);
    const answers = responder.answerer?.(request) ?? [
      { topic: `${topic}/accepted`, payload: encodePayload(cannedAnswer(operation, n), format) },
    ];
    setImmediate(() => {
      inFlight.set(operation, (inFlight.get(operation) ?? 1) - 1);
      for (const a of answers) client.publish(a.topic, a.payload, { qos: 0 });
    });
  });
  await client.subscribeAsync(REQUEST_FILTERS, { qos: 1 });
  return responder;
}
