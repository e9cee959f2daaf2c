import { describe, expect, it } from '@jest/globals';
import { encode as cborEncode } from 'cborg';
import { FleetProvisioningClient } from '../../src/client/fleet-provisioning-client.js';
import { FleetProvisioningError, InvalidResponseError, RejectedError } from '../../src/protocol/errors.js';
import { MAX_PAYLOAD_BYTES } from '../../src/protocol/payload.js';
import { redact } from '../../src/protocol/redact.js';
import { answer, canned, FakeServiceTransport, serviceTopics } from '../helpers/fake-service-transport.js';

const T = serviceTopics();

/** A fake that answers every request as the service would. */
function serviceFake(format: 'json' | 'cbor' = 'json'): FakeServiceTransport {
  const fake = new FakeServiceTransport();
  const t = serviceTopics(format);
  let n = 0;
  fake.respond = (publish) => {
    n++;
    if (publish.topic === t.keys.request) return [answer(t.keys.accepted, canned.keys(n), format)];
    if (publish.topic === t.register.request) return [answer(t.register.accepted, canned.thing(n), format)];
    return undefined;
  };
  return fake;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof FleetProvisioningError) return error.code;
    throw error;
  }
  throw new Error('expected the promise to reject');
}

describe('FleetProvisioningClient: the wire', () => {
  it('subscribes accepted and rejected in one SUBSCRIBE, waits for the SUBACK, then publishes', async () => {
    const fake = serviceFake();
    let releaseSuback!: () => void;
    fake.beforeAck = (e) =>
      e.type === 'subscribe' ? new Promise<void>((resolve) => (releaseSuback = resolve)) : undefined;
    const client = new FleetProvisioningClient(fake);
    const result = client.createKeysAndCertificate();
    await fake.waitFor('subscribe');
    expect(fake.sent('subscribe')).toEqual([
      { type: 'subscribe', topics: [T.keys.accepted, T.keys.rejected], qos: 1 },
    ]);
    expect(fake.sent('publish')).toHaveLength(0);
    releaseSuback();
    await expect(result).resolves.toEqual(canned.keys(1));
    expect(fake.wire.map((e) => e.type)).toEqual(['subscribe', 'publish']);
    const [publish] = fake.sent('publish');
    expect(publish?.topic).toBe(T.keys.request);
    expect(publish?.qos).toBe(1);
    expect(JSON.parse(String(publish?.payload))).toEqual({});
    await client.close();
  });

  it('keeps the subscriptions warm: a second call is one PUBLISH, and close() unsubscribes', async () => {
    const fake = serviceFake();
    const client = new FleetProvisioningClient(fake);
    await client.createKeysAndCertificate();
    await client.createKeysAndCertificate();
    expect(fake.wire.map((e) => e.type)).toEqual(['subscribe', 'publish', 'publish']);
    await client.close();
    expect(fake.sent('unsubscribe')).toEqual([
      { type: 'unsubscribe', topics: [T.keys.accepted, T.keys.rejected] },
    ]);
  });

  it('prepare() subscribes several operations in ONE SUBSCRIBE; the calls then only publish', async () => {
    const fake = serviceFake();
    const client = new FleetProvisioningClient(fake);
    await client.prepare([
      { operation: 'CreateKeysAndCertificate' },
      { operation: 'RegisterThing', templateName: 'Factory' },
    ]);
    expect(fake.sent('subscribe')).toEqual([
      {
        type: 'subscribe',
        topics: [T.keys.accepted, T.keys.rejected, T.register.accepted, T.register.rejected],
        qos: 1,
      },
    ]);
    const keys = await client.createKeysAndCertificate();
    const thing = await client.registerThing({
      templateName: 'Factory',
      certificateOwnershipToken: keys.certificateOwnershipToken,
      parameters: { SerialNumber: 'SN-1' },
    });
    expect(thing).toEqual(canned.thing(2));
    expect(fake.wire.map((e) => e.type)).toEqual(['subscribe', 'publish', 'publish']);
    const register = fake.sent('publish')[1];
    expect(register?.topic).toBe(T.register.request);
    expect(JSON.parse(String(register?.payload))).toEqual({
      certificateOwnershipToken: keys.certificateOwnershipToken,
      parameters: { SerialNumber: 'SN-1' },
    });
    // A second prepare of warm pairs sends nothing.
    await client.prepare([{ operation: 'CreateKeysAndCertificate' }]);
    expect(fake.sent('subscribe')).toHaveLength(1);
    await client.close();
  });

  it('speaks CBOR when asked', async () => {
    const fake = serviceFake('cbor');
    const client = new FleetProvisioningClient(fake, { format: 'cbor' });
    await expect(client.createKeysAndCertificate()).resolves.toEqual(canned.keys(1));
    const [publish] = fake.sent('publish');
    expect(publish?.topic).toBe('$aws/certificates/create/cbor');
    expect(publish?.payload).toEqual(Buffer.from(cborEncode({})));
    await client.close();
  });

  it('publishes with QoS 0 when configured', async () => {
    const fake = serviceFake();
    const client = new FleetProvisioningClient(fake, { qos: 0 });
    await client.createKeysAndCertificate();
    expect(fake.wire.map((e) => ('qos' in e ? e.qos : undefined))).toEqual([0, 0]);
    await client.close();
  });
});

describe('FleetProvisioningClient: answers', () => {
  it('turns a rejection into REJECTED with the service fields; retryable only for 429 and 5xx', async () => {
    const fake = new FakeServiceTransport();
    const client = new FleetProvisioningClient(fake);
    for (const status of [400, 403, 404, 429, 500]) {
      fake.respond = () => [answer(T.keys.rejected, canned.rejection(status, `E${status}`))];
      const error = await client.createKeysAndCertificate().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RejectedError);
      expect(error).toMatchObject({
        code: 'REJECTED',
        operation: 'CreateKeysAndCertificate',
        statusCode: status,
        errorCode: `E${status}`,
        errorMessage: `failed with ${status}`,
        retryable: status === 429 || status === 500,
      });
    }
    await client.close();
  });

  it.each([
    ['malformed JSON on accepted', () => T.keys.accepted, '{"certificateId":', 'malformed json'],
    ['malformed JSON on rejected', () => T.keys.rejected, 'not json', 'malformed json'],
    ['invalid UTF-8', () => T.keys.accepted, Buffer.from([0xff, 0xfe, 0x7b]), 'malformed json'],
  ])('%s → INVALID_RESPONSE at once', async (_name, topic, payload, problem) => {
    const fake = new FakeServiceTransport();
    fake.respond = () => [{ topic: topic(), payload }];
    const client = new FleetProvisioningClient(fake, { timeoutMs: 60_000 });
    const error = await client.createKeysAndCertificate().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidResponseError);
    expect(error).toMatchObject({
      code: 'INVALID_RESPONSE',
      topic: topic(),
      issues: [{ path: '(root)', problem }],
    });
    await client.close();
  });

  it('names the paths of a wrong-shaped answer, never the values', async () => {
    const fake = new FakeServiceTransport();
    const secret = 'very-secret-private-key-material-0123456789';
    fake.respond = () => [
      answer(T.keys.accepted, { certificateId: 7, certificatePem: 'pem', privateKey: secret }),
    ];
    const client = new FleetProvisioningClient(fake);
    const error = await client.createKeysAndCertificate().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidResponseError);
    const issues = error instanceof InvalidResponseError ? error.issues : [];
    expect(issues.map((i) => i.path).sort()).toEqual(['certificateId', 'certificateOwnershipToken']);
    expect(JSON.stringify(issues) + String(error)).not.toContain(secret);
    await client.close();
  });

  it('refuses a nested object in deviceConfiguration', async () => {
    const fake = new FakeServiceTransport();
    fake.respond = () => [answer(T.register.accepted, { deviceConfiguration: { a: { b: 'c' } } })];
    const client = new FleetProvisioningClient(fake);
    const error = await client
      .registerThing({ templateName: 'Factory', certificateOwnershipToken: 'tok' })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'INVALID_RESPONSE', issues: [{ path: 'deviceConfiguration.a' }] });
    await client.close();
  });

  it('refuses an answer over 128 KiB before parsing it', async () => {
    const fake = new FakeServiceTransport();
    const big = JSON.stringify({ ...canned.keys(1), padding: 'x'.repeat(MAX_PAYLOAD_BYTES) });
    fake.respond = () => [{ topic: T.keys.accepted, payload: big }];
    const client = new FleetProvisioningClient(fake);
    const error = await client.createKeysAndCertificate().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'INVALID_RESPONSE', issues: [{ path: '(root)' }] });
    expect(String(error)).toMatch(/larger than 131072 bytes/);
    await client.close();
  });

  it('ignores messages on unrelated topics and for another template', async () => {
    const fake = new FakeServiceTransport();
    const other = serviceTopics('json', 'Other');
    fake.respond = () => [
      answer(other.register.accepted, canned.thing(99)),
      answer(T.keys.accepted, canned.keys(99)),
      answer('some/other/topic', 'noise'),
      answer(T.register.accepted, canned.thing(1)),
    ];
    const client = new FleetProvisioningClient(fake);
    await expect(
      client.registerThing({ templateName: 'Factory', certificateOwnershipToken: 'tok' }),
    ).resolves.toEqual(canned.thing(1));
    await client.close();
  });

  it('registers the secrets it handles with redact()', async () => {
    const fake = serviceFake();
    const client = new FleetProvisioningClient(fake);
    const keys = await client.createKeysAndCertificate();
    expect(redact(`oops ${keys.privateKey}`)).toBe('oops [REDACTED]');
    expect(redact(`oops ${keys.certificateOwnershipToken}`)).toBe('oops [REDACTED]');
    await client.close();
  });

  it.each([
    ['a short token', 'tok', 'a short token: zzShortTokenTailXYZ'],
    ['two PEM blocks in one key', 'key', `${twoBlocks()}\nzzTwoBlocksTailXYZ`],
    [
      'a PEM block with text after it',
      'key',
      `${twoBlocks().split('\n\n')[0]}\ntrailing words zzTrailingWordsXYZ`,
    ],
  ])('remembers a secret that is not shaped for redact(): %s', async (_name, field, secret) => {
    const fake = new FakeServiceTransport();
    fake.respond = (publish) =>
      publish.topic === T.keys.request
        ? [
            answer(T.keys.accepted, {
              ...canned.keys(1),
              ...(field === 'tok' ? { certificateOwnershipToken: secret } : { privateKey: secret }),
            }),
          ]
        : undefined;
    const client = new FleetProvisioningClient(fake);
    await client.createKeysAndCertificate();
    const piece = secret.slice(-17);
    expect(redact(`oops ${piece}`)).not.toContain(piece);
    await client.close();
  });
});

/** Two PEM blocks with made-up bodies: not one whole block, so redact() must be told of the text. */
function twoBlocks(): string {
  const block = (label: string, body: string) => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----`;
  return `${block('PRIVATE KEY', 'QUJD'.repeat(20))}\n\n${block('CERTIFICATE', 'WFla'.repeat(20))}`;
}

describe('FleetProvisioningClient: arguments', () => {
  it.each(['a/b', '+', '#', '', 'x'.repeat(37), 'ünïcode'])(
    'refuses template name %j with INVALID_ARGUMENT before any traffic',
    async (templateName) => {
      const fake = serviceFake();
      const client = new FleetProvisioningClient(fake);
      await expect(
        codeOf(client.registerThing({ templateName, certificateOwnershipToken: 'tok' })),
      ).resolves.toBe('INVALID_ARGUMENT');
      await expect(codeOf(client.prepare([{ operation: 'RegisterThing', templateName }]))).resolves.toBe(
        'INVALID_ARGUMENT',
      );
      expect(fake.wire).toEqual([]);
      await client.close();
    },
  );

  it('refuses bad options and requests before any traffic', async () => {
    const fake = serviceFake();
    expect(() => new FleetProvisioningClient(fake, { timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => new FleetProvisioningClient(fake, JSON.parse('{"qos":2}'))).toThrow(/qos/);
    const client = new FleetProvisioningClient(fake);
    await expect(codeOf(client.createKeysAndCertificate({ timeoutMs: -1 }))).resolves.toBe(
      'INVALID_ARGUMENT',
    );
    await expect(codeOf(client.createKeysAndCertificate({ timeoutMs: 1.5 }))).resolves.toBe(
      'INVALID_ARGUMENT',
    );
    await expect(
      codeOf(client.registerThing({ templateName: 'Factory', certificateOwnershipToken: '' })),
    ).resolves.toBe('INVALID_ARGUMENT');
    await expect(
      codeOf(client.createCertificateFromCsr({ certificateSigningRequest: 'not a csr' })),
    ).resolves.toBe('INVALID_ARGUMENT');
    expect(fake.wire).toEqual([]);
    await client.close();
  });
});
