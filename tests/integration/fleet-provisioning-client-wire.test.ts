/**
 * FleetProvisioningClient on the wire, with a real mqtt.js client against real brokers: in-process aedes
 * (MQTT 3.1.1) and Debian's mosquitto (MQTT 3.1.1 and 5). A responder client plays the service and counts
 * requests in flight; the device client's own packets show the order of SUBSCRIBE, SUBACK and PUBLISH.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { MqttClient, Packet } from 'mqtt';
import { FleetProvisioningClient } from '../../src/client/fleet-provisioning-client.js';
import { createCsr, generateKeyPair } from '../../src/device/keys.js';
import { encodePayload } from '../../src/protocol/payload.js';
import { topics } from '../../src/protocol/topics.js';
import { brokerCases } from '../helpers/broker-cases.js';
import { type BrokerResponder, cannedAnswer, startResponder } from '../helpers/broker-responder.js';
import { closeClients, connectClient } from '../helpers/mqtt.js';
import { issueCertificate, makeCa } from '../helpers/x509.js';

const TEMPLATE = 'Factory';
/** A template whose answer topics the brokers refuse, to provoke a SUBACK failure. */
const DENIED_TEMPLATE = 'Denied';
const DENIED = topics.registerThing(DENIED_TEMPLATE).rejected;

const cases = brokerCases(DENIED);

type WireStep = { cmd: string; topics?: string[]; topic?: string };

/** Record the device's packets, both ways, in order (pings left out). */
function recordWire(client: MqttClient): WireStep[] {
  const steps: WireStep[] = [];
  const keep = (direction: 'out' | 'in') => (packet: Packet) => {
    if (packet.cmd === 'pingreq' || packet.cmd === 'pingresp') return;
    const step: WireStep = { cmd: `${direction}:${packet.cmd}` };
    if (packet.cmd === 'subscribe') step.topics = packet.subscriptions.map((s) => s.topic);
    if (packet.cmd === 'publish') step.topic = packet.topic;
    steps.push(step);
  };
  client.on('packetsend', keep('out'));
  client.on('packetreceive', keep('in'));
  return steps;
}

describe.each(cases)('FleetProvisioningClient on $name', ({ protocolVersion, deniedCode, start }) => {
  let broker: { url: string; close(): Promise<void> };
  let responder: BrokerResponder;
  let device: MqttClient;
  let client: FleetProvisioningClient;

  beforeAll(async () => {
    broker = await start();
    responder = await startResponder(broker.url, { protocolVersion });
  });

  afterAll(async () => {
    await responder.close();
    await broker.close();
  });

  async function connect(format: 'json' | 'cbor' = 'json'): Promise<WireStep[]> {
    device = await connectClient(broker.url, { protocolVersion });
    const wire = recordWire(device);
    client = new FleetProvisioningClient(device, { format, timeoutMs: 10_000 });
    return wire;
  }

  async function disconnect(): Promise<void> {
    await client.close();
    await closeClients(device);
  }

  it.each(['json', 'cbor'] as const)(
    'prepare() sends ONE SUBSCRIBE for both pairs; every request goes out after its SUBACK (%s)',
    async (format) => {
      const wire = await connect(format);
      const t = {
        keys: topics.createKeysAndCertificate(format),
        register: topics.registerThing(TEMPLATE, format),
      };
      await client.prepare([
        { operation: 'CreateKeysAndCertificate' },
        { operation: 'RegisterThing', templateName: TEMPLATE },
      ]);
      const keys = await client.createKeysAndCertificate();
      const thing = await client.registerThing({
        templateName: TEMPLATE,
        certificateOwnershipToken: keys.certificateOwnershipToken,
        parameters: { SerialNumber: 'SN-1' },
      });
      expect(thing.thingName).toMatch(/^thing-\d+$/);
      const out = wire.filter((s) => s.cmd !== 'in:puback');
      expect(out.slice(0, 6)).toEqual([
        {
          cmd: 'out:subscribe',
          topics: [t.keys.accepted, t.keys.rejected, t.register.accepted, t.register.rejected],
        },
        { cmd: 'in:suback' },
        { cmd: 'out:publish', topic: t.keys.request },
        { cmd: 'in:publish', topic: t.keys.accepted },
        { cmd: 'out:publish', topic: t.register.request },
        { cmd: 'in:publish', topic: t.register.accepted },
      ]);
      await disconnect();
      expect(wire.filter((s) => s.cmd === 'out:subscribe')).toHaveLength(1);
      expect(wire.filter((s) => s.cmd === 'out:unsubscribe')).toHaveLength(1);
    },
  );

  it('without prepare(), each operation subscribes its pair in one SUBSCRIBE before its request', async () => {
    const wire = await connect();
    const t = topics.createKeysAndCertificate();
    await client.createKeysAndCertificate();
    await client.createKeysAndCertificate();
    const steps = wire.filter((s) => s.cmd !== 'in:puback');
    expect(steps).toEqual([
      { cmd: 'out:subscribe', topics: [t.accepted, t.rejected] },
      { cmd: 'in:suback' },
      { cmd: 'out:publish', topic: t.request },
      { cmd: 'in:publish', topic: t.accepted },
      { cmd: 'out:publish', topic: t.request },
      { cmd: 'in:publish', topic: t.accepted },
    ]);
    await disconnect();
  });

  it('30 concurrent calls of one kind: one in flight at a time, each caller gets its own answer', async () => {
    await connect();
    const first = responder.requests.filter((r) => r.operation === 'CreateKeysAndCertificate').length;
    const results = await Promise.all(Array.from({ length: 30 }, () => client.createKeysAndCertificate()));
    const expected = Array.from({ length: 30 }, (_, i) => `${first + i + 1}`.padStart(64, '0'));
    expect(results.map((r) => r.certificateId)).toEqual(expected);
    expect(responder.maxInFlight('CreateKeysAndCertificate')).toBe(1);
    await disconnect();
  });

  it('SUBACK failure → SUBSCRIBE_FAILED with the reason code; nothing published', async () => {
    await connect();
    const before = responder.requests.length;
    await expect(
      client.registerThing({ templateName: DENIED_TEMPLATE, certificateOwnershipToken: 'token-abc' }),
    ).rejects.toMatchObject({ code: 'SUBSCRIBE_FAILED', topic: DENIED, reasonCode: deniedCode });
    // The keys pair still works, and the responder never saw the refused request.
    await client.createKeysAndCertificate();
    expect(responder.requests.slice(before).map((r) => r.operation)).toEqual(['CreateKeysAndCertificate']);
    await disconnect();
  });

  it('ignores answers on unrelated topics and for another template', async () => {
    await connect();
    const other = topics.registerThing('Other');
    await client.prepare([{ operation: 'RegisterThing', templateName: 'Other' }]);
    responder.answerer = (request) =>
      request.operation === 'RegisterThing'
        ? [
            { topic: other.accepted, payload: encodePayload(cannedAnswer('RegisterThing', 999), 'json') },
            { topic: 'factory/noise', payload: 'noise' },
            {
              topic: `${request.topic}/accepted`,
              payload: encodePayload(cannedAnswer('RegisterThing', 1), 'json'),
            },
          ]
        : undefined;
    try {
      const thing = await client.registerThing({
        templateName: TEMPLATE,
        certificateOwnershipToken: 'token-abc',
      });
      expect(thing.thingName).toBe('thing-1');
    } finally {
      responder.answerer = undefined;
    }
    await disconnect();
  });

  it('a certificate that does not carry the CSR public key → INVALID_RESPONSE', async () => {
    await connect();
    const ca = await makeCa();
    const mine = await createCsr({ keys: (await generateKeyPair('ec-p256')).keys });
    const theirs = await createCsr({ keys: (await generateKeyPair('ec-p256')).keys });
    const wrong = await issueCertificate(ca, theirs);
    responder.answerer = (request) => [
      {
        topic: `${request.topic}/accepted`,
        payload: encodePayload(
          {
            certificateId: 'c'.repeat(64),
            certificatePem: wrong,
            certificateOwnershipToken: 'token-abcdefgh',
          },
          'json',
        ),
      },
    ];
    try {
      await expect(
        client.createCertificateFromCsr({ certificateSigningRequest: mine }),
      ).rejects.toMatchObject({
        code: 'INVALID_RESPONSE',
        issues: [{ path: 'certificatePem' }],
      });
    } finally {
      responder.answerer = undefined;
    }
    await disconnect();
  });
});
