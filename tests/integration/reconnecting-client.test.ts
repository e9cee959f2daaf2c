/**
 * A user's own mqtt.js client on mqtt.js's default options (`resubscribe: true`, reconnecting every
 * second) behind a proxy that holds SUBACKs: after a reconnect, FleetProvisioningClient publishes only
 * once the broker has acknowledged both answer topics on the new connection, and close() leaves
 * nothing mqtt.js would subscribe again. Against aedes (MQTT 3.1.1) and mosquitto (MQTT 3.1.1 and 5).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import mqtt, { type MqttClient } from 'mqtt';
import { FleetProvisioningClient } from '../../src/client/fleet-provisioning-client.js';
import { IotIdentityClient } from '../../src/identity/iot-identity-client.js';
import { FleetProvisioningError } from '../../src/protocol/errors.js';
import { topics } from '../../src/protocol/topics.js';
import { startAedes } from '../helpers/aedes-broker.js';
import { brokerCases } from '../helpers/broker-cases.js';
import { type BrokerResponder, startResponder } from '../helpers/broker-responder.js';
import { closeClients } from '../helpers/mqtt.js';
import { acknowledgedBefore, type MqttProxy, startMqttProxy } from '../helpers/mqtt-proxy.js';

const cases = brokerCases('never/denied');

/**
 * The user's client options, and how many SUBSCRIBEs for the answer topics it sends after a reconnect:
 * mqtt.js re-subscribes by itself only with `resubscribe: true` and no session resumed.
 */
const CLIENT_OPTIONS = [
  { name: "mqtt.js's defaults", options: {}, subscribes: 2 },
  { name: 'resubscribe: false', options: { resubscribe: false }, subscribes: 1 },
  { name: 'clean: false', options: { clean: false }, subscribes: 1 },
];

/** Resolves on the client's next CONNACK. */
function nextConnect(device: MqttClient): Promise<void> {
  return new Promise((resolve) => device.once('connect', () => resolve()));
}
const keys = topics.createKeysAndCertificate();

describe.each(cases)('a reconnecting mqtt.js client on $name', ({ protocolVersion, start }) => {
  let broker: { url: string; close(): Promise<void> };
  let responder: BrokerResponder;
  let proxy: MqttProxy;

  beforeAll(async () => {
    broker = await start();
    responder = await startResponder(broker.url, { protocolVersion });
    proxy = await startMqttProxy(broker.url);
  });

  afterAll(async () => {
    await proxy.close();
    await responder.close();
    await broker.close();
  });

  /** Index in the proxy log of the first request the device published on `connection`. */
  function requestIndex(connection: number): number {
    return proxy.log.findIndex(
      (p) => p.connection === connection && p.direction === 'out' && p.topic === keys.request,
    );
  }

  it.each(CLIENT_OPTIONS)(
    'with $name: publishes after a reconnect only once the broker acknowledged both answer topics, and close() leaves nothing to resubscribe',
    async ({ options, subscribes }) => {
      // mqtt.js's defaults (resubscribe true, reconnectPeriod 1000 ms, clean session) unless overridden.
      const device: MqttClient = await mqtt.connectAsync(proxy.url, {
        clientId: `device-${randomUUID()}`,
        protocolVersion,
        ...options,
      });
      const first = proxy.log.at(-1)?.connection ?? 0;
      const client = new FleetProvisioningClient(device, { timeoutMs: 15_000 });
      await client.createKeysAndCertificate();

      // Drop the connection; on the next one, hold every SUBACK until the device either publishes its
      // request (the defect) or has sent every SUBSCRIBE for the answer topics it will send (its own, and
      // mqtt.js's when mqtt.js re-subscribes by itself).
      const second = first + 1;
      proxy.holdSubacks(
        (log) =>
          log.some((p) => p.connection === second && p.direction === 'out' && p.topic === keys.request) ||
          log.filter(
            (p) =>
              p.connection === second && p.direction === 'out' && p.topics?.includes(keys.accepted) === true,
          ).length >= subscribes,
      );
      const reconnected = nextConnect(device);
      proxy.dropAll();
      await reconnected;
      const answer = await client.createKeysAndCertificate();
      expect(answer.certificateOwnershipToken).toMatch(/^token-/);

      const index = requestIndex(second);
      expect(index).toBeGreaterThan(0);
      const acknowledged = acknowledgedBefore(proxy.log, second, index);
      expect(acknowledged).toEqual(expect.arrayContaining([keys.accepted, keys.rejected]));

      // close(), then another reconnect: mqtt.js must not subscribe the answer topics again.
      await client.close();
      const third = second + 1;
      const again = nextConnect(device);
      proxy.dropAll();
      await again;
      // A SUBSCRIBE of the test's own, after whatever mqtt.js re-subscribes on 'connect'.
      await device.subscribeAsync('marker/topic', { qos: 0 });
      const resubscribed = proxy.log.filter(
        (p) =>
          p.connection === third &&
          p.cmd === 'subscribe' &&
          (p.topics?.some((t) => t === keys.accepted || t === keys.rejected) ?? false),
      );
      expect(resubscribed).toEqual([]);
      expect(device.listenerCount('message')).toBe(0);
      await closeClients(device);
    },
  );
});

describe('a re-subscription the broker refuses after a reconnect (aedes, mqtt.js defaults)', () => {
  it('fails the pending and the next calls with SUBSCRIBE_FAILED, and publishes nothing', async () => {
    let refuse = false;
    const broker = await startAedes({
      authorizeSubscribe: (_client, sub, done) =>
        refuse && sub.topic === keys.rejected ? done(null, null) : done(null, sub),
    });
    const responder = await startResponder(broker.url);
    const proxy = await startMqttProxy(broker.url);
    const device: MqttClient = await mqtt.connectAsync(proxy.url, { clientId: `device-${randomUUID()}` });
    const first = proxy.log.at(-1)?.connection ?? 0;
    const client = new FleetProvisioningClient(device, { timeoutMs: 15_000 });
    await client.createKeysAndCertificate();

    refuse = true;
    const second = first + 1;
    proxy.holdSubacks(
      (log) =>
        log.some((p) => p.connection === second && p.direction === 'out' && p.topic === keys.request) ||
        log.filter(
          (p) =>
            p.connection === second && p.direction === 'out' && p.topics?.includes(keys.rejected) === true,
        ).length >= 2,
    );
    const reconnected = nextConnect(device);
    proxy.dropAll();
    await reconnected;
    const outcome = (call: Promise<unknown>) =>
      call.then(
        () => 'answered',
        (error: unknown) => (error instanceof FleetProvisioningError ? error : 'uncoded'),
      );
    await expect(outcome(client.createKeysAndCertificate())).resolves.toMatchObject({
      code: 'SUBSCRIBE_FAILED',
      topic: keys.rejected,
      reasonCode: 0x80,
    });
    await expect(outcome(client.createKeysAndCertificate())).resolves.toMatchObject({
      code: 'SUBSCRIBE_FAILED',
    });
    expect(requestsOn(proxy, second)).toBe(0);
    await client.close();
    await closeClients(device);
    await proxy.close();
    await responder.close();
    await broker.close();
  });
});

/** Requests the device published on `connection`. */
function requestsOn(proxy: MqttProxy, connection: number): number {
  return proxy.log.filter(
    (p) => p.connection === connection && p.direction === 'out' && p.topic === keys.request,
  ).length;
}

describe('IotIdentityClient publish at QoS 1 when the connection drops before the PUBACK (aedes)', () => {
  it('rejects CONNECTION_LOST, and the request is not sent again after the reconnect', async () => {
    const broker = await startAedes();
    const proxy = await startMqttProxy(broker.url);
    const device: MqttClient = await mqtt.connectAsync(proxy.url, { clientId: `device-${randomUUID()}` });
    const first = proxy.log.at(-1)?.connection ?? 0;
    const identity = new IotIdentityClient(device);
    proxy.holdPubacks();
    const published = identity.publishCreateKeysAndCertificate({}, 1).then(
      () => 'acknowledged',
      (error: unknown) => (error instanceof FleetProvisioningError ? error.code : 'uncoded'),
    );
    await proxy.waitFor((p) => p.connection === first && p.topic === keys.request);
    const reconnected = nextConnect(device);
    proxy.dropAll();
    await expect(published).resolves.toBe('CONNECTION_LOST');
    await reconnected;
    // A SUBSCRIBE of the test's own: mqtt.js replays its outgoing store before anything new.
    await device.subscribeAsync('marker/topic', { qos: 0 });
    proxy.release();
    expect(requestsOn(proxy, first + 1)).toBe(0);
    await closeClients(device);
    await proxy.close();
    await broker.close();
  });
});
