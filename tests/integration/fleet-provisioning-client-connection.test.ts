/**
 * FleetProvisioningClient when the connection misbehaves: drops mid-call and reconnects,
 * a broker that never acknowledges, and 1,000 calls with mixed outcomes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { MqttClient } from 'mqtt';
import { FleetProvisioningClient } from '../../src/client/fleet-provisioning-client.js';
import { engineFor } from '../../src/client/request-engine.js';
import { FleetProvisioningError } from '../../src/protocol/errors.js';
import { topics } from '../../src/protocol/topics.js';
import type { RequestLogEntry, Simulator } from '../../src/simulator/index.js';
import { startSimulator } from '../../src/simulator/index.js';
import { startAedes } from '../helpers/aedes-broker.js';
import { closeClients, connectClient } from '../helpers/mqtt.js';
import { connectTo } from '../helpers/sim-mqtt.js';

let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({ serverKeyType: 'ec-p256' });
});

afterAll(async () => {
  await sim.close();
});

function requestsOf(device: MqttClient, operation: string): RequestLogEntry[] {
  return sim
    .requests(device.options.clientId ?? '')
    .filter((e) => e.type === 'publish' && e.operation === operation && e.kind === 'request');
}

/** Resolves when the simulator has received `count` requests of `operation` from `device`. */
function requestCount(device: MqttClient, operation: string, count: number): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (requestsOf(device, operation).length < count) return;
      sim.removeListener('request', check);
      resolve();
    };
    sim.on('request', check);
    check();
  });
}

/** Resolves on the client's next CONNACK. */
function nextConnect(device: MqttClient): Promise<void> {
  return new Promise((resolve) => device.once('connect', () => resolve()));
}

describe('the connection drops mid-call', () => {
  it('control: a bare mqtt.js QoS 1 request IS sent again after a reconnect', async () => {
    const device = await connectTo(sim, undefined, { reconnectPeriod: 20 });
    const t = topics.createKeysAndCertificate();
    await device.subscribeAsync([t.accepted, t.rejected], { qos: 1 });
    sim.faults.script('CreateKeysAndCertificate', { type: 'disconnect' });
    device.publish(t.request, '{}', { qos: 1 }, () => {});
    await requestCount(device, 'CreateKeysAndCertificate', 2);
    expect(requestsOf(device, 'CreateKeysAndCertificate')).toHaveLength(2);
    await closeClients(device);
  });

  it('fails the call at once with CONNECTION_LOST, and the request is not sent again after the reconnect', async () => {
    const device = await connectTo(sim, undefined, { reconnectPeriod: 20 });
    const client = new FleetProvisioningClient(device, { timeoutMs: 60_000 });
    sim.faults.script('CreateKeysAndCertificate', { type: 'disconnect' });
    const reconnected = nextConnect(device);
    await expect(client.createKeysAndCertificate()).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
    await reconnected;
    // A new call on the new connection works, and comes after whatever mqtt.js would have replayed.
    const next = await client.createKeysAndCertificate();
    expect(sim.certificates().map((c) => c.certificateId)).toContain(next.certificateId);
    expect(requestsOf(device, 'CreateKeysAndCertificate')).toHaveLength(2);
    await client.close();
    await closeClients(device);
  });

  it('a call made while offline fails at once with CONNECTION_LOST and is never sent', async () => {
    const device = await connectTo(sim);
    const client = new FleetProvisioningClient(device, { timeoutMs: 60_000 });
    await client.prepare([{ operation: 'CreateKeysAndCertificate' }]);
    sim.faults.script('CreateKeysAndCertificate', { type: 'disconnect' });
    await expect(client.createKeysAndCertificate()).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
    expect(device.connected).toBe(false);
    await expect(client.createKeysAndCertificate()).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
    await expect(client.prepare([{ operation: 'CreateKeysAndCertificate' }])).rejects.toMatchObject({
      code: 'CONNECTION_LOST',
    });
    expect(engineFor(device).pending).toBe(0);
    const reconnected = nextConnect(device);
    device.reconnect();
    await reconnected;
    await expect(client.createKeysAndCertificate()).resolves.toHaveProperty('certificateId');
    expect(requestsOf(device, 'CreateKeysAndCertificate')).toHaveLength(2);
    await client.close();
    await closeClients(device);
  });
});

describe('a broker that never acknowledges', () => {
  it('SUBACK never comes → TIMEOUT in phase "subscribe"; nothing published', async () => {
    const broker = await startAedes({ authorizeSubscribe: () => {} });
    const device = await connectClient(broker.url);
    let published = 0;
    device.on('packetsend', (packet) => {
      if (packet.cmd === 'publish') published++;
    });
    const client = new FleetProvisioningClient(device);
    await expect(client.createKeysAndCertificate({ timeoutMs: 100 })).rejects.toMatchObject({
      code: 'TIMEOUT',
      phase: 'subscribe',
      timeoutMs: 100,
    });
    expect(published).toBe(0);
    await client.close();
    await closeClients(device);
    await broker.close();
  });

  it('PUBACK never comes → TIMEOUT in phase "publish"; mqtt.js no longer holds the request', async () => {
    const broker = await startAedes({ authorizePublish: () => {} });
    const device = await connectClient(broker.url);
    const client = new FleetProvisioningClient(device);
    await expect(client.createKeysAndCertificate({ timeoutMs: 100 })).rejects.toMatchObject({
      code: 'TIMEOUT',
      phase: 'publish',
    });
    expect(Object.keys(device.outgoing)).toEqual([]);
    await client.close();
    await closeClients(device);
    await broker.close();
  });
});

describe('1,000 calls with mixed outcomes', () => {
  it('leave the listener counts where they were, with no MaxListenersExceededWarning', async () => {
    const device = await connectTo(sim);
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    const counts = () => ({
      message: device.listenerCount('message'),
      close: device.listenerCount('close'),
      offline: device.listenerCount('offline'),
    });
    const initial = counts();
    // QoS 0 requests: the simulator's sockets keep Nagle's algorithm on, which would add a delayed
    // ACK (~40 ms) to every QoS 1 exchange; the listener accounting is the same either way.
    const client = new FleetProvisioningClient(device, { qos: 0, timeoutMs: 20_000, lateAnswerWindowMs: 1 });
    const templates = Array.from({ length: 8 }, (_, i) => `Unknown${i}`);
    await client.prepare([
      { operation: 'CreateKeysAndCertificate' },
      ...templates.map((templateName) => ({ operation: 'RegisterThing' as const, templateName })),
    ]);
    const baseline = counts();
    const outcomes = new Map<string, number>();
    const tally = (results: PromiseSettledResult<unknown>[]) => {
      for (const r of results) {
        const key =
          r.status === 'fulfilled'
            ? 'ok'
            : r.reason instanceof FleetProvisioningError
              ? r.reason.code
              : 'other';
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      }
    };
    for (let round = 0; round < 50; round++) {
      sim.faults.script('CreateKeysAndCertificate', { type: 'normal' });
      sim.faults.script('CreateKeysAndCertificate', { type: 'reject', statusCode: 500 });
      sim.faults.script('CreateKeysAndCertificate', { type: 'malformed' });
      sim.faults.script('CreateKeysAndCertificate', { type: round % 10 === 0 ? 'silent' : 'wrongShape' });
      const calls: Promise<unknown>[] = [
        client.createKeysAndCertificate(),
        client.createKeysAndCertificate(),
        client.createKeysAndCertificate(),
        client.createKeysAndCertificate({ timeoutMs: 200 }),
      ];
      const controller = new AbortController();
      for (const templateName of templates) {
        const request = { templateName, certificateOwnershipToken: 'token-abcdefgh' };
        calls.push(client.registerThing(request));
        calls.push(client.registerThing(request, { signal: controller.signal }));
      }
      controller.abort();
      tally(await Promise.allSettled(calls));
    }
    process.removeListener('warning', onWarning);
    expect([...outcomes.values()].reduce((a, b) => a + b, 0)).toBe(1000);
    expect([...outcomes.keys()].sort()).toEqual(['ABORTED', 'INVALID_RESPONSE', 'REJECTED', 'TIMEOUT', 'ok']);
    expect(counts()).toEqual(baseline);
    expect(engineFor(device).pending).toBe(0);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    await client.close();
    expect(counts()).toEqual(initial);
    await closeClients(device);
  });
});
