import { createPublicKey, X509Certificate } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { MqttClient } from 'mqtt';
import { IotIdentityClient } from '../../src/identity/iot-identity-client.js';
import { decodePayload } from '../../src/protocol/payload.js';
import type { ErrorResponse, RegisterThingResponse } from '../../src/protocol/schemas.js';
import { operationTopics, type PayloadFormat, topics } from '../../src/protocol/topics.js';
import {
  type PreProvisioningHookInput,
  type Simulator,
  startSimulator,
  TOKEN_LIFETIME_MS,
} from '../../src/simulator/index.js';
import { closeClients } from '../helpers/mqtt.js';
import { makeCsr, tamperSignature } from '../helpers/sim-csr.js';
import { ask, connectTo, field, recordMessages } from '../helpers/sim-mqtt.js';

let clock = 1_700_000_000_000;
const hookCalls: PreProvisioningHookInput[] = [];
let sim: Simulator;
let client: MqttClient;

beforeAll(async () => {
  sim = await startSimulator({
    tls: false,
    serverKeyType: 'ec-p256',
    now: () => clock,
    hookTimeoutMs: 100,
    templates: {
      DemoTemplate: { thingName: '{{SerialNumber}}', requiredParameters: ['SerialNumber'] },
      Sensors: {
        thingName: 'sensor-{{SerialNumber}}',
        deviceConfiguration: { region: '{{Region}}', fixed: 'yes' },
        requiredParameters: ['SerialNumber', 'Region'],
      },
      NoThing: { deviceConfiguration: { mode: 'thingless' } },
      Hooked: {
        thingName: '{{SerialNumber}}',
        preProvisioningHook: (input) => {
          hookCalls.push(input);
          if (input.parameters.SerialNumber === 'deny') return { allowProvisioning: false };
          if (input.parameters.SerialNumber === 'throw') throw new Error('hook bug');
          if (input.parameters.SerialNumber === 'hang') return new Promise(() => {});
          return {
            allowProvisioning: true,
            parameterOverrides: { SerialNumber: `ok-${input.parameters.SerialNumber}` },
          };
        },
      },
    },
  });
  client = await connectTo(sim, undefined, { clientId: 'service-client' });
});

afterAll(async () => {
  await closeClients(client);
  await sim.close();
});

afterEach(() => sim.faults.clear());

async function createKeys(format: PayloadFormat = 'json') {
  const created = await ask(client, 'CreateKeysAndCertificate', {}, { format });
  expect(created.kind).toBe('accepted');
  return created;
}

async function register(token: string, parameters: Record<string, string>, templateName = 'DemoTemplate') {
  return ask(client, 'RegisterThing', { certificateOwnershipToken: token, parameters }, { templateName });
}

describe.each(['json', 'cbor'] as const)('all 18 topics, %s', (format) => {
  it('answers every operation on its accepted and rejected topics, in the format of the request', async () => {
    const created = await createKeys(format);
    expect(created.topic).toBe(topics.createKeysAndCertificate(format).accepted);
    const { csrPem } = await makeCsr('ec-p256');
    const fromCsr = await ask(
      client,
      'CreateCertificateFromCsr',
      { certificateSigningRequest: csrPem },
      { format },
    );
    expect(fromCsr.topic).toBe(topics.createCertificateFromCsr(format).accepted);
    const registered = await ask(
      client,
      'RegisterThing',
      {
        certificateOwnershipToken: field(fromCsr, 'certificateOwnershipToken'),
        parameters: { SerialNumber: `all-${format}` },
      },
      { format },
    );
    expect(registered).toMatchObject({
      topic: topics.registerThing('DemoTemplate', format).accepted,
      value: { thingName: `all-${format}`, deviceConfiguration: {} },
    });
    // Every answer decodes in the request's format and only in it.
    const other = format === 'json' ? 'cbor' : 'json';
    expect(decodePayload(registered.payload, other).ok).toBe(false);

    const garbage = Buffer.from([0xff, 0x00, 0x7b]);
    for (const operation of [
      'CreateKeysAndCertificate',
      'CreateCertificateFromCsr',
      'RegisterThing',
    ] as const) {
      const rejected = await ask(client, operation, garbage, { format });
      expect(rejected).toMatchObject({
        topic: operationTopics(operation, format, 'DemoTemplate').rejected,
        value: { statusCode: 400, errorCode: 'InvalidPayload' },
      });
    }
  });

  it('accepts an empty CreateKeysAndCertificate payload like {}', async () => {
    const created = await ask(client, 'CreateKeysAndCertificate', Buffer.alloc(0), { format });
    expect(created.kind).toBe('accepted');
  });
});

describe('requests the service refuses', () => {
  it('400 InvalidPayload for fields of the wrong type', async () => {
    const wrong = await ask(client, 'CreateCertificateFromCsr', { certificateSigningRequest: 42 });
    expect(wrong.value).toMatchObject({ statusCode: 400, errorCode: 'InvalidPayload' });
    const created = await createKeys();
    const params = await ask(client, 'RegisterThing', {
      certificateOwnershipToken: field(created, 'certificateOwnershipToken'),
      parameters: { SerialNumber: 7 },
    });
    expect(params.value).toMatchObject({ statusCode: 400, errorCode: 'InvalidPayload' });
  });

  it('400 InvalidCSR for a CSR that does not parse, does not verify, or has a weak key', async () => {
    const { csrPem } = await makeCsr('ec-p256');
    const weak = await makeCsr('rsa-1024');
    for (const bad of ['not a csr', tamperSignature(csrPem), weak.csrPem]) {
      const answer = await ask(client, 'CreateCertificateFromCsr', { certificateSigningRequest: bad });
      expect(answer.value).toMatchObject({ statusCode: 400, errorCode: 'InvalidCSR' });
    }
    const rsa = await makeCsr('rsa-2048');
    const accepted = await ask(client, 'CreateCertificateFromCsr', { certificateSigningRequest: rsa.csrPem });
    const issued = new X509Certificate(field(accepted, 'certificatePem'));
    expect(issued.publicKey.export({ type: 'spki', format: 'der' })).toEqual(
      createPublicKey(rsa.privateKeyPem).export({ type: 'spki', format: 'der' }),
    );
  });

  it('404 ResourceNotFound for a template that does not exist', async () => {
    const created = await createKeys();
    const answer = await register(field(created, 'certificateOwnershipToken'), {}, 'Nope');
    expect(answer).toMatchObject({
      topic: topics.registerThing('Nope').rejected,
      value: { statusCode: 404, errorCode: 'ResourceNotFound' },
    });
  });

  it('400 InvalidParameters for a missing required parameter; the token stays usable', async () => {
    const created = await createKeys();
    const token = field(created, 'certificateOwnershipToken');
    const missing = await register(token, { SerialNumber: 'S-1' }, 'Sensors');
    expect(missing.value).toMatchObject({ statusCode: 400, errorCode: 'InvalidParameters' });
    expect(JSON.stringify(missing.value)).toContain('Region');
    const fixed = await register(token, { SerialNumber: 'S-1', Region: 'eu' }, 'Sensors');
    expect(fixed.value).toEqual({
      thingName: 'sensor-S-1',
      deviceConfiguration: { region: 'eu', fixed: 'yes' },
    });
  });
});

describe('ownership tokens', () => {
  it('are single use', async () => {
    const created = await createKeys();
    const token = field(created, 'certificateOwnershipToken');
    expect((await register(token, { SerialNumber: 'once' })).kind).toBe('accepted');
    const again = await register(token, { SerialNumber: 'twice' });
    expect(again.value).toMatchObject({ statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken' });
    expect(JSON.stringify(again.value)).not.toContain(token);
  });

  it('are refused when unknown', async () => {
    const answer = await register('made-up-token', { SerialNumber: 'x' });
    expect(answer.value).toMatchObject({ statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken' });
  });

  it('expire after an hour on the injected clock, and the pending certificate is deleted', async () => {
    const created = await createKeys();
    const id = field(created, 'certificateId');
    clock += TOKEN_LIFETIME_MS - 1;
    expect(sim.certificates().some((c) => c.certificateId === id)).toBe(true);
    clock += 1;
    const answer = await register(field(created, 'certificateOwnershipToken'), { SerialNumber: 'late' });
    expect(answer.value).toMatchObject({ statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken' });
    expect(sim.certificates().some((c) => c.certificateId === id)).toBe(false);
  });
});

describe('templates', () => {
  it('without a thingName make no thing, but still activate the certificate', async () => {
    const created = await createKeys();
    const before = sim.things().length;
    const answer = await register(field(created, 'certificateOwnershipToken'), {}, 'NoThing');
    expect(answer.value).toEqual({ deviceConfiguration: { mode: 'thingless' } });
    expect(sim.things()).toHaveLength(before);
    const record = sim.certificates().find((c) => c.certificateId === field(created, 'certificateId'));
    expect(record?.status).toBe('ACTIVE');
    expect(record?.thingName).toBeUndefined();
  });

  it('run the pre-provisioning hook with AWS input, and apply its overrides', async () => {
    const created = await createKeys();
    const answer = await register(
      field(created, 'certificateOwnershipToken'),
      { SerialNumber: 'H1' },
      'Hooked',
    );
    expect(answer.value).toMatchObject({ thingName: 'ok-H1' });
    expect(hookCalls.at(-1)).toEqual({
      claimCertificateId: sim.claimCertificateId,
      certificateId: field(created, 'certificateId'),
      certificatePem: field(created, 'certificatePem'),
      templateArn: 'arn:aws:iot:us-east-1:123456789012:provisioningtemplate/Hooked',
      clientId: 'service-client',
      parameters: { SerialNumber: 'H1' },
    });
    expect(sim.things().find((t) => t.thingName === 'ok-H1')?.parameters).toEqual({ SerialNumber: 'ok-H1' });
  });

  it.each(['deny', 'throw', 'hang'])('answer 403 AccessDenied when the hook says %s', async (serial) => {
    const created = await createKeys();
    const answer = await register(
      field(created, 'certificateOwnershipToken'),
      { SerialNumber: serial },
      'Hooked',
    );
    expect(answer.value).toMatchObject({ statusCode: 403, errorCode: 'AccessDenied' });
    expect(sim.certificates().find((c) => c.certificateId === field(created, 'certificateId'))?.status).toBe(
      'PENDING_ACTIVATION',
    );
  });
});

describe('registry', () => {
  it('records things and certificates with their template, parameters and times', async () => {
    const created = await createKeys();
    const id = field(created, 'certificateId');
    const at = clock;
    await register(field(created, 'certificateOwnershipToken'), { SerialNumber: 'REG-1', Extra: 'e' });
    expect(sim.things().find((t) => t.thingName === 'REG-1')).toEqual({
      thingName: 'REG-1',
      certificateId: id,
      certificateIds: [id],
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'REG-1', Extra: 'e' },
      createdAt: new Date(at),
    });
    expect(sim.certificates().find((c) => c.certificateId === id)).toMatchObject({
      status: 'ACTIVE',
      thingName: 'REG-1',
      issuedBy: 'CreateKeysAndCertificate',
      certificatePem: field(created, 'certificatePem'),
      createdAt: new Date(at),
    });
  });
});

describe('delivery', () => {
  it('sends an answer only to the connection that asked, though others subscribe to the topic', async () => {
    const other = await connectTo(sim, undefined, { clientId: 'bystander' });
    try {
      const seen = recordMessages(other);
      await other.subscribeAsync(topics.createKeysAndCertificate().accepted, { qos: 1 });
      const mine = await createKeys();
      // The bystander's own request is a barrier: were the first answer forwarded, it would arrive first.
      const theirs = await ask(other, 'CreateKeysAndCertificate', {}, { keepSubscribed: true });
      expect(seen).toHaveLength(1);
      expect(seen[0]?.payload).toEqual(theirs.payload);
      expect(field(theirs, 'certificateId')).not.toBe(field(mine, 'certificateId'));
    } finally {
      await closeClients(other);
    }
  });

  it('sends nothing to a connection that is not subscribed when the answer goes out', async () => {
    const late = await connectTo(sim, undefined, { clientId: 'unsubscribed' });
    try {
      const seen = recordMessages(late);
      const answered = new Promise<void>((resolve) => {
        const onAnswer = (entry: { clientId: string }) => {
          if (entry.clientId !== 'unsubscribed') return;
          sim.off('answer', onAnswer);
          resolve();
        };
        sim.on('answer', onAnswer);
      });
      await late.publishAsync(topics.createKeysAndCertificate().request, Buffer.from('{}'), { qos: 1 });
      await answered;
      await ask(late, 'CreateKeysAndCertificate', {});
      expect(seen).toHaveLength(1);
      expect(sim.requests('unsubscribed').filter((e) => e.type === 'answer')).toHaveLength(2);
    } finally {
      await closeClients(late);
    }
  });
});

describe('rate limit', () => {
  it('answers 429 ThrottlingException over the configured rate, and recovers as the clock moves', async () => {
    let now = 0;
    const limited = await startSimulator({
      tls: false,
      serverKeyType: 'ec-p256',
      requestsPerSecond: 2,
      now: () => now,
    });
    const c = await connectTo(limited);
    try {
      expect((await ask(c, 'CreateKeysAndCertificate', {})).kind).toBe('accepted');
      expect((await ask(c, 'CreateKeysAndCertificate', {})).kind).toBe('accepted');
      const throttled = await ask(c, 'CreateKeysAndCertificate', {});
      expect(throttled.value).toEqual({
        statusCode: 429,
        errorCode: 'ThrottlingException',
        errorMessage: expect.any(String),
      });
      now += 500;
      expect((await ask(c, 'CreateKeysAndCertificate', {})).kind).toBe('accepted');
    } finally {
      await closeClients(c);
      await limited.close();
    }
  });
});

describe('with IotIdentityClient', () => {
  it('provisions in CBOR, and the log shows both SUBACKs before each request', async () => {
    const c = await connectTo(sim, undefined, { clientId: 'identity-cbor' });
    try {
      const identity = new IotIdentityClient(c, { format: 'cbor' });
      const keys = deferred<{ certificateOwnershipToken: string }>();
      await identity.subscribeToCreateKeysAndCertificateAccepted({}, 1, (_e, r) => r && keys.resolve(r));
      await identity.subscribeToCreateKeysAndCertificateRejected({}, 1);
      await identity.publishCreateKeysAndCertificate({}, 1);
      const { certificateOwnershipToken } = await keys.promise;
      const registered = deferred<RegisterThingResponse | ErrorResponse>();
      await identity.subscribeToRegisterThingAccepted(
        { templateName: 'DemoTemplate' },
        1,
        (_e, r) => r && registered.resolve(r),
      );
      await identity.subscribeToRegisterThingRejected(
        { templateName: 'DemoTemplate' },
        1,
        (_e, r) => r && registered.resolve(r),
      );
      await identity.publishRegisterThing(
        { templateName: 'DemoTemplate', certificateOwnershipToken, parameters: { SerialNumber: 'CBOR-1' } },
        1,
      );
      const done = registered.promise;
      expect(await done).toEqual({ thingName: 'CBOR-1', deviceConfiguration: {} });
      const log = sim.requests('identity-cbor').filter((e) => e.type !== 'connect');
      expect(log.map((e) => `${e.type}:${e.operation}:${e.kind}`)).toEqual([
        'subscribe:CreateKeysAndCertificate:accepted',
        'subscribe:CreateKeysAndCertificate:rejected',
        'publish:CreateKeysAndCertificate:request',
        'answer:CreateKeysAndCertificate:accepted',
        expect.stringMatching(/^subscribe:RegisterThing:/),
        expect.stringMatching(/^subscribe:RegisterThing:/),
        'publish:RegisterThing:request',
        'answer:RegisterThing:accepted',
      ]);
      expect(log.every((e) => e.operation === undefined || e.format === 'cbor')).toBe(true);
    } finally {
      await closeClients(c);
    }
  });
});

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => {};
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
