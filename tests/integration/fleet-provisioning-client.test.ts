/**
 * FleetProvisioningClient against the simulator (mutual TLS, real certificates), with the simulator's
 * fault script playing a misbehaving service.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { MqttClient } from 'mqtt';
import { FleetProvisioningClient } from '../../src/client/fleet-provisioning-client.js';
import { createCsr, generateKeyPair } from '../../src/device/keys.js';
import { FleetProvisioningError, InvalidResponseError, RejectedError } from '../../src/protocol/errors.js';
import { decodePayload } from '../../src/protocol/payload.js';
import { topics } from '../../src/protocol/topics.js';
import { type Simulator, startSimulator } from '../../src/simulator/index.js';
import { closeClients } from '../helpers/mqtt.js';
import { connectTo } from '../helpers/sim-mqtt.js';

const TEMPLATE = 'DemoTemplate';

let sim: Simulator;
let device: MqttClient;
let client: FleetProvisioningClient;

beforeAll(async () => {
  sim = await startSimulator({ serverKeyType: 'ec-p256' });
});

afterAll(async () => {
  await sim.close();
});

afterEach(async () => {
  sim.faults.clear();
  await client?.close();
  await closeClients(device);
});

async function connect(options: ConstructorParameters<typeof FleetProvisioningClient>[1] = {}) {
  device = await connectTo(sim);
  client = new FleetProvisioningClient(device, { timeoutMs: 15_000, ...options });
  return device;
}

function clientId(): string {
  return device.options.clientId ?? '';
}

/** What the simulator saw this device do, as `type:kind` steps for one operation. */
function steps(operation: string): string[] {
  return sim
    .requests(clientId())
    .filter((e) => e.operation === operation)
    .map((e) => `${e.type}:${e.kind ?? ''}`);
}

/** Certificate ids of every accepted CreateKeysAndCertificate answer the device receives, in order. */
function watchCertificateIds(format: 'json' | 'cbor' = 'json'): string[] {
  const accepted = topics.createKeysAndCertificate(format).accepted;
  const seen: string[] = [];
  device.on('message', (topic, payload) => {
    if (topic !== accepted) return;
    const decoded = decodePayload(payload, format);
    const id: unknown =
      decoded.ok && typeof decoded.value === 'object' && decoded.value !== null
        ? Reflect.get(decoded.value, 'certificateId')
        : undefined;
    if (typeof id === 'string') seen.push(id);
  });
  return seen;
}

describe('a full provisioning through the client', () => {
  it.each(['json', 'cbor'] as const)(
    'subscribes both answer topics before each request and provisions a device (%s)',
    async (format) => {
      await connect({ format });
      const keys = await client.createKeysAndCertificate();
      const thing = await client.registerThing({
        templateName: TEMPLATE,
        certificateOwnershipToken: keys.certificateOwnershipToken,
        parameters: { SerialNumber: `SN-${format}` },
      });
      expect(thing.thingName).toBe(`SN-${format}`);
      expect(sim.things().some((t) => t.thingName === `SN-${format}`)).toBe(true);
      // Item 8: both SUBACKs are in before the request goes out.
      expect(steps('CreateKeysAndCertificate')).toEqual([
        'subscribe:accepted',
        'subscribe:rejected',
        'publish:request',
        'answer:accepted',
      ]);
      expect(steps('RegisterThing')).toEqual([
        'subscribe:accepted',
        'subscribe:rejected',
        'publish:request',
        'answer:accepted',
      ]);
    },
  );

  it('CreateCertificateFromCsr returns a certificate for the CSR key', async () => {
    await connect();
    const csr = await createCsr({ keys: (await generateKeyPair('ec-p256')).keys });
    const answer = await client.createCertificateFromCsr({ certificateSigningRequest: csr });
    expect(sim.certificates().map((c) => c.certificateId)).toContain(answer.certificateId);
  });
});

describe('answers that cannot be trusted → INVALID_RESPONSE at once', () => {
  it.each(['json', 'cbor'] as const)('malformed %s on accepted', async (format) => {
    await connect({ format, timeoutMs: 60_000 });
    sim.faults.script('CreateKeysAndCertificate', { type: 'malformed' });
    const error = await client.createKeysAndCertificate().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidResponseError);
    expect(error).toMatchObject({
      code: 'INVALID_RESPONSE',
      operation: 'CreateKeysAndCertificate',
      topic: topics.createKeysAndCertificate(format).accepted,
      issues: [{ path: '(root)', problem: `malformed ${format}` }],
    });
  });

  it.each(['CreateKeysAndCertificate', 'RegisterThing'] as const)(
    'a wrong-shaped %s answer names the paths, never the values',
    async (operation) => {
      await connect({ timeoutMs: 60_000 });
      sim.faults.script(operation, { type: 'wrongShape' });
      const call =
        operation === 'RegisterThing'
          ? client.registerThing({ templateName: TEMPLATE, certificateOwnershipToken: 'token-abcdefgh' })
          : client.createKeysAndCertificate();
      const error = await call.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidResponseError);
      const issues = error instanceof InvalidResponseError ? error.issues : [];
      expect(issues.length).toBeGreaterThan(0);
      for (const issue of issues) expect(issue.path).toMatch(/^[\w.()]+$/);
      expect(String(error)).not.toMatch(/BEGIN|PRIVATE/);
    },
  );

  it('an answer over 128 KiB is refused before parsing', async () => {
    await connect({ timeoutMs: 60_000 });
    sim.faults.script('CreateKeysAndCertificate', { type: 'oversized' });
    const error = await client.createKeysAndCertificate().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'INVALID_RESPONSE', issues: [{ path: '(root)' }] });
    expect(error instanceof InvalidResponseError ? error.issues[0]?.problem : '').toMatch(
      /^larger than 131072/,
    );
  });
});

describe('rejections', () => {
  it.each([400, 403, 404, 429, 500])('%d → REJECTED with the service fields', async (statusCode) => {
    await connect();
    sim.faults.script('CreateKeysAndCertificate', {
      type: 'reject',
      statusCode,
      errorCode: `Code${statusCode}`,
      errorMessage: 'scripted',
    });
    const error = await client.createKeysAndCertificate().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RejectedError);
    expect(error).toMatchObject({
      code: 'REJECTED',
      operation: 'CreateKeysAndCertificate',
      statusCode,
      errorCode: `Code${statusCode}`,
      errorMessage: 'scripted',
      retryable: statusCode === 429 || statusCode === 500,
    });
  });

  it('the service’s own rejection: an unknown template is 404', async () => {
    await connect();
    await expect(
      client.registerThing({ templateName: 'NoSuchTemplate', certificateOwnershipToken: 'token-abcdefgh' }),
    ).rejects.toMatchObject({ code: 'REJECTED', statusCode: 404, retryable: false });
  });
});

describe('subscriptions', () => {
  it('a refused SUBSCRIBE → SUBSCRIBE_FAILED 0x80; nothing is published', async () => {
    await connect();
    sim.faults.script('CreateKeysAndCertificate', { type: 'refuseSubscribe' });
    await expect(client.createKeysAndCertificate()).rejects.toMatchObject({
      code: 'SUBSCRIBE_FAILED',
      reasonCode: 0x80,
    });
    expect(steps('CreateKeysAndCertificate').filter((s) => s.startsWith('publish'))).toEqual([]);
    // Not remembered: the next call subscribes again and succeeds.
    await expect(client.createKeysAndCertificate()).resolves.toHaveProperty('certificateId');
  });
});

describe('duplicates and late answers', () => {
  it.each(['duplicate', 'acceptThenReject'] as const)(
    '%s: the first answer settles; the next call gets its own',
    async (type) => {
      await connect();
      const seen = watchCertificateIds();
      const answers = topics.createKeysAndCertificate();
      // The second answer of the fault, as the device receives it (after the client's own listener).
      const extra = new Promise<void>((resolve) => {
        let count = 0;
        const onMessage = (topic: string) => {
          if (topic !== answers.accepted && topic !== answers.rejected) return;
          if (++count < 2) return;
          device.removeListener('message', onMessage);
          resolve();
        };
        device.on('message', onMessage);
      });
      sim.faults.script('CreateKeysAndCertificate', { type });
      const first = await client.createKeysAndCertificate();
      // A rejection after an accepted answer can be told from the next call's own only by when it comes:
      // the next call is made once it has arrived. A repeated certificate is recognised whenever it comes.
      if (type === 'acceptThenReject') await extra;
      const second = await client.createKeysAndCertificate();
      expect(second.certificateId).not.toBe(first.certificateId);
      expect(seen.at(-1)).toBe(second.certificateId);
    },
  );

  it('an answer that arrives after its call timed out never settles the next call', async () => {
    await connect();
    const seen = watchCertificateIds();
    sim.faults.script('CreateKeysAndCertificate', { type: 'delay', ms: 300 });
    await expect(client.createKeysAndCertificate({ timeoutMs: 50 })).rejects.toMatchObject({
      code: 'TIMEOUT',
      phase: 'response',
    });
    const next = await client.createKeysAndCertificate();
    // Two answers came: the late one (dropped) and the next call's own.
    expect(seen).toHaveLength(2);
    expect(next.certificateId).toBe(seen[1]);
    expect(next.certificateId).not.toBe(seen[0]);
  });
});

describe('many calls on one connection', () => {
  it('never two requests of one kind in flight; each caller gets its own result', async () => {
    await connect();
    const seen = watchCertificateIds();
    const results = await Promise.all(Array.from({ length: 12 }, () => client.createKeysAndCertificate()));
    expect(new Set(results.map((r) => r.certificateId)).size).toBe(12);
    expect(results.map((r) => r.certificateId)).toEqual(seen);
    const wire = steps('CreateKeysAndCertificate').filter(
      (s) => s !== 'subscribe:accepted' && s !== 'subscribe:rejected',
    );
    expect(wire).toEqual(Array.from({ length: 12 }, () => ['publish:request', 'answer:accepted']).flat());
  });

  it('queued time counts against the deadline; aborting a queued caller removes only it', async () => {
    await connect();
    sim.faults.script('CreateKeysAndCertificate', { type: 'delay', ms: 200 });
    const slow = client.createKeysAndCertificate();
    const hurried = client.createKeysAndCertificate({ timeoutMs: 50 });
    const controller = new AbortController();
    const aborted = client.createKeysAndCertificate({ signal: controller.signal });
    const patient = client.createKeysAndCertificate();
    controller.abort(new Error('no longer needed'));
    await expect(hurried).rejects.toMatchObject({ code: 'TIMEOUT', phase: 'queued' });
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' });
    const [a, b] = await Promise.all([slow, patient]);
    expect(a.certificateId).not.toBe(b.certificateId);
    expect(steps('CreateKeysAndCertificate').filter((s) => s === 'publish:request')).toHaveLength(2);
  });
});

describe('close()', () => {
  it('rejects pending calls with CLIENT_CLOSED and removes its subscriptions and listeners', async () => {
    device = await connectTo(sim);
    const before = {
      message: device.listenerCount('message'),
      close: device.listenerCount('close'),
      offline: device.listenerCount('offline'),
    };
    client = new FleetProvisioningClient(device);
    const fresh = client;
    await fresh.prepare([{ operation: 'RegisterThing', templateName: TEMPLATE }]);
    sim.faults.script('CreateKeysAndCertificate', { type: 'silent' });
    const pending = [fresh.createKeysAndCertificate(), fresh.createKeysAndCertificate()].map((call) =>
      call.catch((e: unknown) => e),
    );
    await new Promise<void>((resolve) => {
      const onRequest = (entry: { clientId: string; type: string }) => {
        if (entry.clientId !== clientId() || entry.type !== 'publish') return;
        sim.removeListener('request', onRequest);
        resolve();
      };
      sim.on('request', onRequest);
    });
    await fresh.close();
    for (const call of pending) {
      const error = await call;
      expect(error).toBeInstanceOf(FleetProvisioningError);
      expect(error).toMatchObject({ code: 'CLIENT_CLOSED' });
    }
    const unsubscribed = sim
      .requests(clientId())
      .filter((e) => e.type === 'unsubscribe')
      .map((e) => e.topic)
      .sort();
    expect(unsubscribed).toEqual(
      [
        topics.createKeysAndCertificate().accepted,
        topics.createKeysAndCertificate().rejected,
        topics.registerThing(TEMPLATE).accepted,
        topics.registerThing(TEMPLATE).rejected,
      ].sort(),
    );
    expect({
      message: device.listenerCount('message'),
      close: device.listenerCount('close'),
      offline: device.listenerCount('offline'),
    }).toEqual(before);
  });
});
