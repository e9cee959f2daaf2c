/**
 * Item 7: arbitrary bytes on every response topic, through a real broker (aedes) and a real mqtt.js
 * client, produce only coded errors: no crash, no unhandled rejection, no uncoded error. Property test
 * with a fixed seed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { MqttClient } from 'mqtt';
import { FleetProvisioningClient } from '../../src/client/fleet-provisioning-client.js';
import { createCsr, generateKeyPair } from '../../src/device/keys.js';
import { FleetProvisioningError } from '../../src/protocol/errors.js';
import { encodePayload } from '../../src/protocol/payload.js';
import type { PayloadFormat } from '../../src/protocol/topics.js';
import { startAedes, type TestBroker } from '../helpers/aedes-broker.js';
import { type BrokerResponder, startResponder } from '../helpers/broker-responder.js';
import { closeClients, connectClient } from '../helpers/mqtt.js';

const TEMPLATE = 'Fuzz';

let broker: TestBroker;
let responder: BrokerResponder;
let device: MqttClient;
const clients = new Map<PayloadFormat, FleetProvisioningClient>();
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
/** A real CSR, so that CreateCertificateFromCsr calls get past their own argument check. */
let CSR: string;

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  CSR = await createCsr({ keys: (await generateKeyPair('ec-p256')).keys });
  broker = await startAedes();
  responder = await startResponder(broker.url);
  device = await connectClient(broker.url);
  for (const format of ['json', 'cbor'] as const) {
    // QoS 0: no PUBACK, so no delayed-ACK stall on a broker that leaves Nagle's algorithm on.
    const client = new FleetProvisioningClient(device, { format, qos: 0, timeoutMs: 5_000 });
    await client.prepare([
      { operation: 'CreateKeysAndCertificate' },
      { operation: 'CreateCertificateFromCsr' },
      { operation: 'RegisterThing', templateName: TEMPLATE },
    ]);
    clients.set(format, client);
  }
});

afterAll(async () => {
  process.removeListener('unhandledRejection', onUnhandled);
  for (const client of clients.values()) await client.close();
  await closeClients(device);
  await responder.close();
  await broker.close();
});

/** Bytes that are not a plain random blob too: near-misses of real answers, and CBOR/JSON of odd values. */
const payloads = fc.oneof(
  fc.uint8Array({ maxLength: 600 }),
  fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
  fc.jsonValue().map((v) => encodePayload(v, 'cbor')),
  fc
    .record({
      certificateId: fc.oneof(fc.string(), fc.integer()),
      certificatePem: fc.string(),
      statusCode: fc.oneof(fc.integer(), fc.string()),
      errorCode: fc.string(),
      deviceConfiguration: fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer())),
    })
    .map((v) => Buffer.from(JSON.stringify(v))),
);

describe('arbitrary bytes on the answer topics', () => {
  it('only ever settle a call with a coded error', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('CreateKeysAndCertificate', 'CreateCertificateFromCsr', 'RegisterThing'),
        fc.constantFrom<PayloadFormat>('json', 'cbor'),
        fc.constantFrom('accepted', 'rejected'),
        payloads,
        async (operation, format, kind, bytes) => {
          const client = clients.get(format);
          if (client === undefined) throw new Error('no client');
          responder.answerer = (request) => [
            { topic: `${request.topic}/${kind}`, payload: Buffer.from(bytes) },
          ];
          const call =
            operation === 'RegisterThing'
              ? client.registerThing({ templateName: TEMPLATE, certificateOwnershipToken: 'token-abcdefgh' })
              : operation === 'CreateKeysAndCertificate'
                ? client.createKeysAndCertificate()
                : client.createCertificateFromCsr({ certificateSigningRequest: CSR });
          const outcome = await call.then(
            () => 'resolved',
            (error: unknown) => error,
          );
          if (outcome === 'resolved') return;
          expect(outcome).toBeInstanceOf(FleetProvisioningError);
          expect(['INVALID_RESPONSE', 'REJECTED']).toContain(
            outcome instanceof FleetProvisioningError ? outcome.code : '',
          );
        },
      ),
      { seed: 20_240_601, numRuns: 150 },
    );
    responder.answerer = undefined;
    expect(unhandled).toEqual([]);
  });
});
