/**
 * IotIdentityClient with a real mqtt.js client against real brokers: in-process aedes (MQTT 3.1.1) and
 * Debian's mosquitto (MQTT 3.1.1 and 5). A second client plays the service and records the wire.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { MqttClient, Packet } from 'mqtt';
import { IotIdentityClient } from '../../src/identity/iot-identity-client.js';
import type { FleetProvisioningError } from '../../src/protocol/errors.js';
import { encodePayload } from '../../src/protocol/payload.js';
import type { CreateKeysAndCertificateResponse } from '../../src/protocol/schemas.js';
import { topics } from '../../src/protocol/topics.js';
import { brokerCases } from '../helpers/broker-cases.js';
import { closeClients, connectClient } from '../helpers/mqtt.js';

/** Topics the brokers refuse to subscribers, to provoke a SUBACK failure. */
const DENIED = topics.createCertificateFromCsr('json').accepted;

const cases = brokerCases(DENIED);

const keysAnswer: CreateKeysAndCertificateResponse = {
  certificateId: 'c0ffee'.repeat(10),
  certificatePem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
  privateKey: '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n',
  certificateOwnershipToken: 'token-123',
};

/** Counts the packets of one type that the client sends. */
function countSent(client: MqttClient, cmd: Packet['cmd']): { readonly count: number } {
  const counter = { count: 0 };
  client.on('packetsend', (packet: Packet) => {
    if (packet.cmd === cmd) counter.count++;
  });
  return counter;
}

describe.each(cases)('IotIdentityClient on $name', ({ protocolVersion, deniedCode, start }) => {
  let broker: { url: string; close(): Promise<void> };
  let device: MqttClient;
  let service: MqttClient;

  beforeAll(async () => {
    broker = await start();
    device = await connectClient(broker.url, { protocolVersion });
    service = await connectClient(broker.url, { protocolVersion });
  });

  afterAll(async () => {
    await closeClients(device, service);
    await broker.close();
  });

  it.each(['json', 'cbor'] as const)(
    'puts the exact topics and payload bytes on the wire (%s)',
    async (format) => {
      const identity = new IotIdentityClient(device, { format });
      const requestTopics = [
        topics.createKeysAndCertificate(format).request,
        topics.createCertificateFromCsr(format).request,
        topics.registerThing('Factory', format).request,
      ];
      await service.subscribeAsync(requestTopics, { qos: 1 });
      const seen: Array<[string, Buffer]> = [];
      const allSeen = new Promise<void>((resolve) => {
        const onMessage = (topic: string, payload: Buffer) => {
          if (!requestTopics.includes(topic)) return;
          seen.push([topic, payload]);
          if (seen.length === 3) {
            service.removeListener('message', onMessage);
            resolve();
          }
        };
        service.on('message', onMessage);
      });
      await identity.publishCreateKeysAndCertificate({}, 1);
      await identity.publishCreateCertificateFromCsr({ certificateSigningRequest: 'CSR' }, 1);
      await identity.publishRegisterThing(
        { templateName: 'Factory', certificateOwnershipToken: 'tok', parameters: { SerialNumber: 'SN-1' } },
        1,
      );
      await allSeen;
      await service.unsubscribeAsync(requestTopics);
      expect(seen).toEqual([
        [requestTopics[0], format === 'json' ? Buffer.from('{}') : Buffer.from([0xa0])],
        [requestTopics[1], encodePayload({ certificateSigningRequest: 'CSR' }, format)],
        [
          requestTopics[2],
          encodePayload({ certificateOwnershipToken: 'tok', parameters: { SerialNumber: 'SN-1' } }, format),
        ],
      ]);
      if (format === 'json') {
        expect(seen[2]?.[1].toString()).toBe(
          '{"certificateOwnershipToken":"tok","parameters":{"SerialNumber":"SN-1"}}',
        );
      }
    },
  );

  it.each(['json', 'cbor'] as const)(
    'delivers validated answers to a callback and an iterator (%s)',
    async (format) => {
      const identity = new IotIdentityClient(device, { format });
      const got: CreateKeysAndCertificateResponse[] = [];
      const viaCallback = new Promise<void>((resolve) => {
        void identity.subscribeToCreateKeysAndCertificateAccepted({}, 1, (error, response) => {
          if (error === undefined && response !== undefined) got.push(response);
          resolve();
        });
      });
      const stream = await identity.subscribeToCreateKeysAndCertificateAccepted({}, 1);
      const iterated = stream[Symbol.asyncIterator]().next();
      await service.publishAsync(
        topics.createKeysAndCertificate(format).accepted,
        encodePayload(keysAnswer, format),
        {
          qos: 1,
        },
      );
      await viaCallback;
      await expect(iterated).resolves.toEqual({ done: false, value: keysAnswer });
      expect(got).toEqual([keysAnswer]);
      await stream.unsubscribe();
    },
  );

  it('surfaces a malformed answer as INVALID_RESPONSE and keeps going', async () => {
    const identity = new IotIdentityClient(device);
    const topic = topics.createKeysAndCertificate().rejected;
    const events: Array<FleetProvisioningError | object | undefined> = [];
    let wake: () => void = () => {};
    const two = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const sub = await identity.subscribeToCreateKeysAndCertificateRejected({}, 1, (error, response) => {
      events.push(error ?? response);
      if (events.length === 2) wake();
    });
    await service.publishAsync(topic, Buffer.from('{"statusCode": 4'), { qos: 1 });
    await service.publishAsync(
      topic,
      Buffer.from('{"statusCode":500,"errorCode":"InternalFailure","errorMessage":"x"}'),
      {
        qos: 1,
      },
    );
    await two;
    expect(events[0]).toMatchObject({
      code: 'INVALID_RESPONSE',
      topic,
      issues: [{ path: '(root)', problem: 'malformed json' }],
    });
    expect(events[1]).toEqual({ statusCode: 500, errorCode: 'InternalFailure', errorMessage: 'x' });
    expect(device.connected).toBe(true);
    await sub.unsubscribe();
  });

  it(`rejects a denied SUBSCRIBE with SUBSCRIBE_FAILED (0x${deniedCode.toString(16)})`, async () => {
    const identity = new IotIdentityClient(device);
    await expect(identity.subscribeToCreateCertificateFromCsrAccepted({}, 1)).rejects.toMatchObject({
      code: 'SUBSCRIBE_FAILED',
      topic: DENIED,
      reasonCode: deniedCode,
    });
    expect(device.connected).toBe(true);
    // The same client still subscribes where the policy allows.
    const ok = await identity.subscribeToCreateKeysAndCertificateRejected({}, 1);
    await ok.unsubscribe();
  });

  it('sends one SUBSCRIBE for two subscribers and the UNSUBSCRIBE when the last leaves', async () => {
    const identity = new IotIdentityClient(device);
    const subscribes = countSent(device, 'subscribe');
    const unsubscribes = countSent(device, 'unsubscribe');
    const topic = topics.registerThing('RefCount').accepted;
    const first = await identity.subscribeToRegisterThingAccepted({ templateName: 'RefCount' }, 1);
    const second = await identity.subscribeToRegisterThingAccepted({ templateName: 'RefCount' }, 1);
    expect(subscribes.count).toBe(1);

    await first.unsubscribe();
    expect(unsubscribes.count).toBe(0);
    const stillThere = second[Symbol.asyncIterator]().next();
    await service.publishAsync(topic, Buffer.from('{"deviceConfiguration":{},"thingName":"a"}'), { qos: 1 });
    await expect(stillThere).resolves.toEqual({
      done: false,
      value: { deviceConfiguration: {}, thingName: 'a' },
    });

    await second.unsubscribe();
    expect(unsubscribes.count).toBe(1);
    // After the UNSUBACK the broker delivers nothing more on the topic: a sentinel sent after it arrives alone.
    const sentinelTopic = topics.registerThing('RefCount').rejected;
    const sentinel = await identity.subscribeToRegisterThingRejected({ templateName: 'RefCount' }, 1);
    const leaked: string[] = [];
    const onMessage = (t: string) => leaked.push(t);
    device.on('message', onMessage);
    const sentinelSeen = sentinel[Symbol.asyncIterator]().next();
    await service.publishAsync(topic, Buffer.from('{"deviceConfiguration":{}}'), { qos: 1 });
    await service.publishAsync(
      sentinelTopic,
      Buffer.from('{"statusCode":404,"errorCode":"X","errorMessage":""}'),
      {
        qos: 1,
      },
    );
    await sentinelSeen;
    device.removeListener('message', onMessage);
    expect(leaked).toEqual([sentinelTopic]);
    await sentinel.unsubscribe();
  });
});
