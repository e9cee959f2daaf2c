import { describe, expect, it } from '@jest/globals';
import { InvalidArgumentError } from '../../src/protocol/errors.js';
import { operationTopics } from '../../src/protocol/topics.js';
import { type RequestLogEntry, startSimulator } from '../../src/simulator/index.js';
import { closeClients } from '../helpers/mqtt.js';
import { ask, closedByServer, connectOutcome, connectTo, field } from '../helpers/sim-mqtt.js';

describe('simulator lifecycle', () => {
  it('refuses bad options before listening', async () => {
    await expect(startSimulator({ templates: { 'bad/name': {} } })).rejects.toThrow(InvalidArgumentError);
    await expect(startSimulator({ requestsPerSecond: 0 })).rejects.toThrow(InvalidArgumentError);
  });

  it('close() ends every connection, and is safe to call twice', async () => {
    const sim = await startSimulator({ serverKeyType: 'ec-p256' });
    const a = await connectTo(sim);
    const b = await connectTo(sim);
    const closed = Promise.all([closedByServer(a), closedByServer(b)]);
    await Promise.all([sim.close(), sim.close()]);
    await closed;
    expect(a.connected || b.connected).toBe(false);
    await closeClients(a, b);
  });

  it('close() does not wait for a delayed answer or a pre-provisioning hook that never answers', async () => {
    let hookCalled: () => void = () => {};
    const hookStarted = new Promise<void>((resolve) => {
      hookCalled = resolve;
    });
    const sim = await startSimulator({
      tls: false,
      serverKeyType: 'ec-p256',
      hookTimeoutMs: 60_000, // longer than the test's own timeout: close() must not wait for it
      templates: {
        Hanging: {
          preProvisioningHook: () => {
            hookCalled();
            return new Promise(() => {});
          },
        },
      },
    });
    const client = await connectTo(sim);
    const created = await ask(client, 'CreateKeysAndCertificate', {});
    sim.faults.script('CreateKeysAndCertificate', { type: 'delay', ms: 60_000 });
    const keys = operationTopics('CreateKeysAndCertificate', 'json');
    await client.publishAsync(keys.request, Buffer.from('{}'), { qos: 1 });
    const register = operationTopics('RegisterThing', 'json', 'Hanging');
    const token = field(created, 'certificateOwnershipToken');
    await client.publishAsync(
      register.request,
      Buffer.from(JSON.stringify({ certificateOwnershipToken: token })),
      {
        qos: 1,
      },
    );
    await hookStarted;
    await sim.close();
    await closeClients(client);
    expect(sim.requests().filter((e) => e.type === 'answer')).toHaveLength(1);
  });

  it("emits 'request' for every log entry and 'answer' for every answer", async () => {
    const sim = await startSimulator({ tls: false, serverKeyType: 'ec-p256' });
    const entries: RequestLogEntry[] = [];
    const answers: RequestLogEntry[] = [];
    sim.on('request', (entry) => entries.push(entry));
    sim.on('answer', (entry) => answers.push(entry));
    const client = await connectTo(sim, undefined, { clientId: 'events' });
    try {
      await ask(client, 'CreateKeysAndCertificate', {});
      await ask(client, 'RegisterThing', { certificateOwnershipToken: 'nope' });
    } finally {
      await closeClients(client);
      await sim.close();
    }
    expect(entries).toEqual(sim.requests());
    expect(answers).toEqual(sim.requests().filter((e) => e.type === 'answer'));
    expect(answers.map((a) => [a.operation, a.kind, a.statusCode])).toEqual([
      ['CreateKeysAndCertificate', 'accepted', undefined],
      ['RegisterThing', 'rejected', 400],
    ]);
    expect(sim.requests('events').map((e) => e.type)).toEqual([
      'connect',
      'subscribe',
      'subscribe',
      'publish',
      'answer',
      'unsubscribe',
      'unsubscribe',
      'subscribe',
      'subscribe',
      'publish',
      'answer',
      'unsubscribe',
      'unsubscribe',
    ]);
  });

  it('speaks MQTT 3.1.1: an MQTT 5 client is refused at CONNECT (unacceptable protocol version)', async () => {
    const sim = await startSimulator({ tls: false, serverKeyType: 'ec-p256' });
    try {
      expect(await connectOutcome(sim, undefined, { protocolVersion: 5 })).toBe(1);
      expect(await connectOutcome(sim, undefined, { protocolVersion: 4 })).toBe('connected');
    } finally {
      await sim.close();
    }
  });

  it('keeps the log bounded', async () => {
    const sim = await startSimulator({ tls: false, serverKeyType: 'ec-p256', requestLogLimit: 10 });
    const client = await connectTo(sim);
    try {
      for (let i = 0; i < 4; i++) await ask(client, 'CreateKeysAndCertificate', {});
      expect(sim.requests().length).toBeLessThanOrEqual(11);
      expect(sim.requests().at(-1)?.type).toBe('unsubscribe');
    } finally {
      await closeClients(client);
      await sim.close();
    }
  });
});
