import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { MqttClient } from 'mqtt';
import { InvalidArgumentError, type OperationName } from '../../src/protocol/errors.js';
import { operations } from '../../src/protocol/operations.js';
import { checkSchema, decodePayload, MAX_PAYLOAD_BYTES } from '../../src/protocol/payload.js';
import { operationTopics, type PayloadFormat } from '../../src/protocol/topics.js';
import { type RequestLogEntry, type Simulator, startSimulator } from '../../src/simulator/index.js';
import { closeClients } from '../helpers/mqtt.js';
import { ask, closedByServer, connectTo, field, type Received, recordMessages } from '../helpers/sim-mqtt.js';

let sim: Simulator;
let client: MqttClient;
let seen: Received[];

beforeAll(async () => {
  sim = await startSimulator({ tls: false, serverKeyType: 'ec-p256' });
  client = await connectTo(sim, undefined, { clientId: 'faults' });
  seen = recordMessages(client);
});

afterAll(async () => {
  await closeClients(client);
  await sim.close();
});

afterEach(() => {
  sim.faults.clear();
  seen.length = 0;
});

const OPERATIONS: OperationName[] = ['CreateKeysAndCertificate', 'CreateCertificateFromCsr', 'RegisterThing'];
/** A request each operation would accept in shape (the faults below answer before any real work). */
const REQUESTS: Record<OperationName, unknown> = {
  CreateKeysAndCertificate: {},
  CreateCertificateFromCsr: { certificateSigningRequest: 'unused' },
  RegisterThing: { certificateOwnershipToken: 'unused', parameters: { SerialNumber: 'x' } },
};

/** Resolves with the `count`-th answer entry the simulator logs for `clientId` from now on. */
function answers(clientId: string, count: number): Promise<RequestLogEntry[]> {
  const got: RequestLogEntry[] = [];
  return new Promise((resolve) => {
    const onAnswer = (entry: RequestLogEntry) => {
      if (entry.clientId !== clientId) return;
      got.push(entry);
      if (got.length < count) return;
      sim.off('answer', onAnswer);
      resolve(got);
    };
    sim.on('answer', onAnswer);
  });
}

/** Wait until the client has received `count` messages in total. */
async function received(count: number): Promise<Received[]> {
  while (seen.length < count) await new Promise((resolve) => client.once('message', resolve));
  return [...seen];
}

describe('reject', () => {
  it.each([
    [400, 'InvalidPayload'],
    [429, 'ThrottlingException'],
    [503, 'InternalFailure'],
  ])('rejects with %i and the table code %s by default', async (statusCode, errorCode) => {
    sim.faults.script('CreateKeysAndCertificate', { type: 'reject', statusCode });
    const answer = await ask(client, 'CreateKeysAndCertificate', {});
    expect(answer.value).toEqual({ statusCode, errorCode, errorMessage: expect.any(String) });
  });

  it('uses the given codes, for the given number of requests, then answers normally', async () => {
    sim.faults.script(
      'RegisterThing',
      { type: 'reject', statusCode: 403, errorCode: 'Custom', errorMessage: 'no' },
      { times: 2 },
    );
    const expected = { statusCode: 403, errorCode: 'Custom', errorMessage: 'no' };
    expect((await ask(client, 'RegisterThing', REQUESTS.RegisterThing)).value).toEqual(expected);
    expect((await ask(client, 'RegisterThing', REQUESTS.RegisterThing)).value).toEqual(expected);
    const third = await ask(client, 'RegisterThing', REQUESTS.RegisterThing);
    expect(third.value).toMatchObject({ errorCode: 'InvalidCertificateOwnershipToken' });
  });

  it('times: Infinity holds until clear(); other operations are unaffected', async () => {
    sim.faults.script('CreateKeysAndCertificate', { type: 'reject', statusCode: 500 }, { times: Infinity });
    for (let i = 0; i < 3; i++) {
      expect((await ask(client, 'CreateKeysAndCertificate', {})).kind).toBe('rejected');
    }
    const csr = await ask(client, 'CreateCertificateFromCsr', { certificateSigningRequest: 'bad' });
    expect(csr.value).toMatchObject({ errorCode: 'InvalidCSR' });
    sim.faults.clear();
    expect((await ask(client, 'CreateKeysAndCertificate', {})).kind).toBe('accepted');
  });

  it('scripts queue up: normal first, then the next script', async () => {
    sim.faults.script('CreateKeysAndCertificate', { type: 'normal' });
    sim.faults.script('CreateKeysAndCertificate', { type: 'reject', statusCode: 500 });
    expect((await ask(client, 'CreateKeysAndCertificate', {})).kind).toBe('accepted');
    expect((await ask(client, 'CreateKeysAndCertificate', {})).kind).toBe('rejected');
    expect((await ask(client, 'CreateKeysAndCertificate', {})).kind).toBe('accepted');
  });
});

describe('silent and delay', () => {
  it('silent: never answers that request; the next one is answered', async () => {
    sim.faults.script('CreateKeysAndCertificate', { type: 'silent' });
    const t = operationTopics('CreateKeysAndCertificate', 'json');
    await client.subscribeAsync([t.accepted, t.rejected], { qos: 1 });
    await client.publishAsync(t.request, Buffer.from('{}'), { qos: 1 });
    // The second request's answer is a barrier: an answer to the first would have come before it.
    const barrier = await ask(client, 'CreateKeysAndCertificate', {});
    expect(barrier.kind).toBe('accepted');
    expect(seen).toHaveLength(1);
    const log = sim.requests('faults').filter((e) => e.operation === 'CreateKeysAndCertificate');
    const silent = log.find((e) => e.fault === 'silent');
    expect(silent?.type).toBe('publish');
    expect(log.filter((e) => e.type === 'answer' && e.requestId === silent?.requestId)).toEqual([]);
  });

  it('delay: answers normally after the delay, so a later request is answered first', async () => {
    sim.faults.script('CreateKeysAndCertificate', { type: 'delay', ms: 300 });
    const t = operationTopics('CreateKeysAndCertificate', 'json');
    await client.subscribeAsync([t.accepted, t.rejected], { qos: 1 });
    const two = answers('faults', 2);
    await client.publishAsync(t.request, Buffer.from('{}'), { qos: 1 });
    await client.publishAsync(t.request, Buffer.from('{}'), { qos: 1 });
    const [first, second] = await two;
    await received(2);
    await client.unsubscribeAsync([t.accepted, t.rejected]);
    expect(second).toMatchObject({ kind: 'accepted', fault: 'delay' });
    expect(first?.fault).toBeUndefined();
    expect((second?.requestId ?? 0) < (first?.requestId ?? 0)).toBe(true);
    expect(seen.every((m) => m.topic === t.accepted)).toBe(true);
  });
});

describe('duplicate and acceptThenReject', () => {
  it('duplicate: the same accepted answer twice', async () => {
    sim.faults.script('CreateKeysAndCertificate', { type: 'duplicate' });
    const first = await ask(client, 'CreateKeysAndCertificate', {}, { keepSubscribed: true });
    const both = await received(2);
    expect(both[1]?.topic).toBe(first.topic);
    expect(both[1]?.payload).toEqual(first.payload);
    await client.unsubscribeAsync(Object.values(operationTopics('CreateKeysAndCertificate')).slice(1));
    expect(sim.certificates().filter((c) => c.certificateId === field(first, 'certificateId'))).toHaveLength(
      1,
    );
  });

  it('acceptThenReject: the accepted answer, then a 500 on the rejected topic', async () => {
    sim.faults.script('CreateKeysAndCertificate', { type: 'acceptThenReject' });
    const first = await ask(client, 'CreateKeysAndCertificate', {}, { keepSubscribed: true });
    expect(first.kind).toBe('accepted');
    const [, second] = await received(2);
    const t = operationTopics('CreateKeysAndCertificate');
    expect(second?.topic).toBe(t.rejected);
    const decoded = decodePayload(second?.payload ?? Buffer.alloc(0), 'json');
    expect(decoded).toMatchObject({ ok: true, value: { statusCode: 500, errorCode: 'InternalFailure' } });
    await client.unsubscribeAsync([t.accepted, t.rejected]);
  });
});

describe.each(['json', 'cbor'] as const)('broken payloads, %s', (format: PayloadFormat) => {
  it.each(OPERATIONS)('malformed: %s gets bytes on accepted that do not decode', async (operation) => {
    sim.faults.script(operation, { type: 'malformed' });
    const answer = await ask(client, operation, REQUESTS[operation], { format });
    expect(answer.topic).toBe(operationTopics(operation, format, 'DemoTemplate').accepted);
    expect(decodePayload(answer.payload, format)).toEqual({ ok: false, reason: 'malformed' });
  });

  it.each(OPERATIONS)(
    'wrongShape: %s gets a payload that decodes but breaks the schema',
    async (operation) => {
      sim.faults.script(operation, { type: 'wrongShape' });
      const answer = await ask(client, operation, REQUESTS[operation], { format });
      expect(answer.kind).toBe('accepted');
      const decoded = decodePayload(answer.payload, format);
      expect(decoded.ok).toBe(true);
      if (!decoded.ok) return;
      const checked = checkSchema<unknown>(operations[operation].acceptedSchema, decoded.value);
      expect(checked.ok).toBe(false);
    },
  );

  it.each(OPERATIONS)('oversized: %s gets more than 128 KiB on accepted', async (operation) => {
    sim.faults.script(operation, { type: 'oversized' });
    const answer = await ask(client, operation, REQUESTS[operation], { format });
    expect(answer.kind).toBe('accepted');
    expect(answer.payload.byteLength).toBeGreaterThan(MAX_PAYLOAD_BYTES);
    expect(decodePayload(answer.payload, format)).toEqual({ ok: false, reason: 'too-large' });
  });
});

describe('refuseSubscribe', () => {
  it('refuses the answer topics of one SUBSCRIBE packet, then grants the next', async () => {
    sim.faults.script('RegisterThing', { type: 'refuseSubscribe' });
    const t = operationTopics('RegisterThing', 'cbor', 'DemoTemplate');
    await expect(client.subscribeAsync([t.accepted, t.rejected], { qos: 1 })).rejects.toMatchObject({
      packet: { granted: [0x80, 0x80] },
    });
    const granted = await client.subscribeAsync([t.accepted, t.rejected], { qos: 1 });
    expect(granted.map((g) => g.qos)).toEqual([1, 1]);
    await client.unsubscribeAsync([t.accepted, t.rejected]);
  });

  it('counts SUBSCRIBE packets, not requests, and leaves other operations alone', async () => {
    const start = sim.requests('faults').length;
    sim.faults.script('CreateKeysAndCertificate', { type: 'refuseSubscribe' }, { times: 2 });
    const csr = operationTopics('CreateCertificateFromCsr', 'json');
    expect((await client.subscribeAsync(csr.accepted, { qos: 1 }))[0]?.qos).toBe(1);
    const t = operationTopics('CreateKeysAndCertificate', 'json');
    await expect(client.subscribeAsync(t.accepted, { qos: 1 })).rejects.toMatchObject({
      packet: { granted: [0x80] },
    });
    await expect(client.subscribeAsync(t.rejected, { qos: 1 })).rejects.toMatchObject({
      packet: { granted: [0x80] },
    });
    expect((await client.subscribeAsync(t.accepted, { qos: 1 }))[0]?.qos).toBe(1);
    await client.unsubscribeAsync([t.accepted, csr.accepted]);
    const refusals = sim
      .requests('faults')
      .slice(start)
      .filter((e) => e.fault === 'refuseSubscribe');
    expect(refusals.map((e) => [e.type, e.allowed, e.kind])).toEqual([
      ['subscribe', false, 'accepted'],
      ['subscribe', false, 'rejected'],
    ]);
  });
});

describe('disconnect', () => {
  it('drops the connection on receiving the request, without answering', async () => {
    sim.faults.script('CreateCertificateFromCsr', { type: 'disconnect' });
    const victim = await connectTo(sim, undefined, { clientId: 'victim' });
    const t = operationTopics('CreateCertificateFromCsr', 'json');
    await victim.subscribeAsync([t.accepted, t.rejected], { qos: 1 });
    const closed = closedByServer(victim);
    victim.publish(t.request, Buffer.from('{"certificateSigningRequest":"x"}'), { qos: 1 });
    await closed;
    await closeClients(victim);
    const log = sim.requests('victim');
    expect(log.at(-1)).toMatchObject({ type: 'publish', fault: 'disconnect' });
    expect(log.some((e) => e.type === 'answer')).toBe(false);
  });
});

describe('script validation', () => {
  it('refuses unknown operations, unknown faults and bad counts', () => {
    const cast = (value: unknown) => value as never;
    expect(() => sim.faults.script(cast('Nope'), { type: 'silent' })).toThrow(InvalidArgumentError);
    expect(() => sim.faults.script('RegisterThing', cast({ type: 'explode' }))).toThrow(InvalidArgumentError);
    expect(() => sim.faults.script('RegisterThing', { type: 'silent' }, { times: 0 })).toThrow(
      InvalidArgumentError,
    );
    expect(() => sim.faults.script('RegisterThing', { type: 'delay', ms: -1 })).toThrow(InvalidArgumentError);
  });
});
