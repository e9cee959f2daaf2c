/**
 * Correct on every connection state: re-subscription after a reconnect, answers that may be late,
 * acknowledgements that never come, close() with work in flight, granted QoS and streams. Over the fake
 * transport; the wire-level twin of the reconnect case is tests/integration/reconnecting-client.test.ts.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { FleetProvisioningClient } from '../../src/client/fleet-provisioning-client.js';
import { createCsr, generateKeyPair } from '../../src/device/keys.js';
import { IotIdentityClient } from '../../src/identity/iot-identity-client.js';
import { routerFor } from '../../src/mqtt/topic-router.js';
import { provision } from '../../src/provision/provision.js';
import { isRetryable } from '../../src/provision/retry.js';
import { failure } from '../helpers/failure.js';
import { answer, canned, FakeServiceTransport, serviceTopics } from '../helpers/fake-service-transport.js';
import { issueCertificate, makeCa, type TestCa } from '../helpers/x509.js';

const T = serviceTopics();

/** A promise and the function that resolves it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe('after a reconnect', () => {
  it('subscribes again with a SUBSCRIBE of its own and publishes only after its SUBACK', async () => {
    const fake = new FakeServiceTransport();
    let n = 0;
    fake.respond = () => [answer(T.keys.accepted, canned.keys(++n))];
    const client = new FleetProvisioningClient(fake);
    await client.createKeysAndCertificate();
    fake.drop();
    const suback = gate();
    fake.beforeAck = (e) => (e.type === 'subscribe' ? suback.promise : undefined);
    fake.reconnect();
    const call = client.createKeysAndCertificate();
    await fake.waitFor('subscribe', 2);
    expect(fake.published(T.keys.request)).toBe(1);
    suback.open();
    await expect(call).resolves.toMatchObject({ certificateId: 'cert-2' });
    expect(fake.wire.slice(-2).map((e) => e.type)).toEqual(['subscribe', 'publish']);
    await client.close();
  });

  it('a refused re-subscription fails the pending and the next calls with SUBSCRIBE_FAILED', async () => {
    const fake = new FakeServiceTransport();
    fake.respond = () => [answer(T.keys.accepted, canned.keys(1))];
    const before = fake.listenerTotals();
    const client = new FleetProvisioningClient(fake);
    await client.createKeysAndCertificate();
    fake.drop();
    fake.refuse.set(T.keys.rejected, 0x87);
    const suback = gate();
    fake.beforeAck = (e) => (e.type === 'subscribe' ? suback.promise : undefined);
    fake.reconnect();
    const pending = client.createKeysAndCertificate();
    suback.open();
    await expect(failure(pending)).resolves.toMatchObject({
      code: 'SUBSCRIBE_FAILED',
      topic: T.keys.rejected,
      reasonCode: 0x87,
    });
    await expect(failure(client.createKeysAndCertificate())).resolves.toMatchObject({
      code: 'SUBSCRIBE_FAILED',
    });
    expect(fake.published(T.keys.request)).toBe(1);
    await client.close();
    expect(fake.listenerTotals()).toEqual(before);
  });

  it('streams held across a reconnect are subscribed again, and a FleetProvisioningClient sharing their topics waits for that SUBACK', async () => {
    const fake = new FakeServiceTransport();
    const identity = new IotIdentityClient(fake);
    const accepted = await identity.subscribeToCreateKeysAndCertificateAccepted({}, 1);
    const rejected = await identity.subscribeToCreateKeysAndCertificateRejected({}, 1);
    fake.drop();
    const suback = gate();
    fake.beforeAck = (e) => (e.type === 'subscribe' ? suback.promise : undefined);
    fake.reconnect();
    fake.respond = () => [answer(T.keys.accepted, canned.keys(7))];
    const client = new FleetProvisioningClient(fake);
    const call = client.createKeysAndCertificate();
    await fake.waitFor('subscribe', 3);
    // One turn of the event loop: a client that trusted the old connection's SUBACK has published by now.
    await new Promise((resolve) => setImmediate(resolve));
    expect(fake.published(T.keys.request)).toBe(0);
    suback.open();
    await expect(call).resolves.toMatchObject({ certificateId: 'cert-7' });
    await client.close();
    await accepted.unsubscribe();
    await rejected.unsubscribe();
    expect(routerFor(fake).topics).toEqual([]);
  });
});

describe('a stream across a reconnect', () => {
  it('hears a refused re-subscription as SUBSCRIBE_FAILED', async () => {
    const fake = new FakeServiceTransport();
    const identity = new IotIdentityClient(fake);
    const errors: unknown[] = [];
    const stream = await identity.subscribeToCreateKeysAndCertificateAccepted({}, 1, (error) => {
      if (error !== undefined) errors.push(error);
    });
    fake.drop();
    fake.refuse.set(T.keys.accepted, 0x87);
    fake.reconnect();
    const iterated = failure(
      (async () => {
        for await (const _ of stream) return;
      })(),
    );
    await expect(iterated).resolves.toMatchObject({ code: 'SUBSCRIBE_FAILED', reasonCode: 0x87 });
    expect(errors).toHaveLength(1);
    await stream.unsubscribe();
  });
});

describe('late rejected answers', () => {
  let ca: TestCa;
  let csrA: string;
  let csrB: string;
  let certB: string;

  beforeAll(async () => {
    ca = await makeCa();
    csrA = await createCsr({ keys: (await generateKeyPair('ec-p256')).keys });
    csrB = await createCsr({ keys: (await generateKeyPair('ec-p256')).keys });
    certB = await issueCertificate(ca, csrB);
  });

  it('a late rejected answer of an unanswered CreateCertificateFromCsr call does not settle the next one', async () => {
    const fake = new FakeServiceTransport();
    const client = new FleetProvisioningClient(fake, { lateAnswerWindowMs: 1 });
    await expect(
      client.createCertificateFromCsr({ certificateSigningRequest: csrA }, { timeoutMs: 10 }),
    ).rejects.toMatchObject({ code: 'TIMEOUT', phase: 'response' });
    const next = client.createCertificateFromCsr({ certificateSigningRequest: csrB });
    await fake.waitFor('publish', 2);
    const late = answer(T.csr.rejected, canned.rejection(400, 'InvalidCSR'));
    fake.deliver(late.topic, late.payload);
    const own = answer(T.csr.accepted, {
      certificateId: 'cert-b',
      certificatePem: certB,
      certificateOwnershipToken: 'token-b-abcdefgh',
    });
    fake.deliver(own.topic, own.payload);
    await expect(next).resolves.toMatchObject({ certificateId: 'cert-b' });
    await client.close();
  });
});

describe('IotIdentityClient publish at QoS 1', () => {
  it('settles CONNECTION_LOST when the connection drops before the PUBACK, and takes the request back', async () => {
    const fake = new FakeServiceTransport();
    fake.beforeAck = (e) => (e.type === 'publish' ? new Promise<void>(() => {}) : undefined);
    const identity = new IotIdentityClient(fake);
    const published = identity.publishCreateKeysAndCertificate({}, 1);
    await fake.waitFor('publish');
    fake.drop();
    await expect(failure(published)).resolves.toMatchObject({ code: 'CONNECTION_LOST' });
    expect(fake.removed).toEqual([1]);
    expect(fake.listenerTotals()).toEqual({ message: 0, close: 0, offline: 0 });
  });

  it('settles TIMEOUT phase "publish" when the PUBACK never comes', async () => {
    const fake = new FakeServiceTransport();
    fake.beforeAck = (e) => (e.type === 'publish' ? new Promise<void>(() => {}) : undefined);
    const identity = new IotIdentityClient(fake, { timeoutMs: 20 });
    await expect(failure(identity.publishCreateKeysAndCertificate({}, 1))).resolves.toMatchObject({
      code: 'TIMEOUT',
      phase: 'publish',
    });
    expect(fake.removed).toEqual([1]);
  });

  it('settles TIMEOUT phase "subscribe" when the SUBACK never comes, and holds nothing after', async () => {
    const fake = new FakeServiceTransport();
    fake.beforeAck = (e) => (e.type === 'subscribe' ? new Promise<void>(() => {}) : undefined);
    const identity = new IotIdentityClient(fake, { timeoutMs: 20 });
    await expect(failure(identity.subscribeToCreateKeysAndCertificateAccepted({}, 1))).resolves.toMatchObject(
      { code: 'TIMEOUT', phase: 'subscribe' },
    );
    expect(routerFor(fake).topics).toEqual([]);
    expect(fake.listenerCount('message')).toBe(0);
  });
});

describe('close() with a SUBSCRIBE in flight', () => {
  it('removes the message listener before it resolves, and undoes the late SUBACK', async () => {
    const fake = new FakeServiceTransport();
    const suback = gate();
    fake.beforeAck = (e) => (e.type === 'subscribe' ? suback.promise : undefined);
    const client = new FleetProvisioningClient(fake);
    const call = failure(client.createKeysAndCertificate());
    await fake.waitFor('subscribe');
    const closed = client.close();
    let listenersWhenClosed = -1;
    void closed.then(() => {
      listenersWhenClosed = fake.listenerCount('message');
    });
    // One turn of the event loop: a close() that does not wait for the SUBACK has resolved by now.
    await new Promise((resolve) => setImmediate(resolve));
    suback.open();
    await closed;
    expect(listenersWhenClosed).toBe(0);
    await expect(call).resolves.toMatchObject({ code: 'CLIENT_CLOSED' });
    expect(fake.sent('unsubscribe').flatMap((e) => e.topics)).toEqual([T.keys.accepted, T.keys.rejected]);
  });
});

describe('granted QoS', () => {
  it('a stream reports the QoS the broker granted, not the one asked for', async () => {
    const fake = new FakeServiceTransport();
    fake.maxQos.set(T.keys.accepted, 0);
    const identity = new IotIdentityClient(fake);
    const stream = await identity.subscribeToCreateKeysAndCertificateAccepted({}, 1);
    expect(stream.qos).toBe(0);
    await stream.unsubscribe();
  });

  it('a QoS 1 subscriber joining a topic held at QoS 0 subscribes again at QoS 1', async () => {
    const fake = new FakeServiceTransport();
    const identity = new IotIdentityClient(fake);
    const zero = await identity.subscribeToCreateKeysAndCertificateAccepted({}, 0);
    const one = await identity.subscribeToCreateKeysAndCertificateAccepted({}, 1);
    expect(zero.qos).toBe(0);
    expect(one.qos).toBe(1);
    expect(fake.sent('subscribe').map((e) => e.qos)).toEqual([0, 1]);
    await zero.unsubscribe();
    await one.unsubscribe();
  });
});

describe('streams', () => {
  it('a stream opened with a callback also yields to for await', async () => {
    const fake = new FakeServiceTransport();
    const identity = new IotIdentityClient(fake);
    const seen: string[] = [];
    const stream = await identity.subscribeToCreateKeysAndCertificateAccepted({}, 1, (_e, r) => {
      if (r !== undefined) seen.push(r.certificateId);
    });
    const iterated = (async () => {
      for await (const response of stream) return response.certificateId;
      return undefined;
    })();
    const a = answer(T.keys.accepted, canned.keys(1));
    fake.deliver(a.topic, a.payload);
    await expect(iterated).resolves.toBe('cert-1');
    expect(seen).toEqual(['cert-1']);
    await stream.unsubscribe();
  });

  it('break out of for await releases the subscription', async () => {
    const fake = new FakeServiceTransport();
    const identity = new IotIdentityClient(fake);
    const stream = await identity.subscribeToCreateKeysAndCertificateAccepted({}, 1);
    const a = answer(T.keys.accepted, canned.keys(1));
    fake.deliver(a.topic, a.payload);
    for await (const response of stream) {
      expect(response.certificateId).toBe('cert-1');
      break;
    }
    expect(stream.closed).toBe(true);
    expect(fake.sent('unsubscribe')).toEqual([{ type: 'unsubscribe', topics: [T.keys.accepted] }]);
    expect(fake.listenerCount('message')).toBe(0);
  });
});

describe('MQTT 5 reason codes by meaning', () => {
  const refusal = (code: number) =>
    Promise.reject(Object.assign(new Error(`Publish error: ${code}`), { code }));

  it('a PUBACK 0x97 (quota exceeded) is a retryable throttle, and says so', async () => {
    const fake = new FakeServiceTransport();
    fake.beforeAck = (e) => (e.type === 'publish' ? refusal(0x97) : undefined);
    const client = new FleetProvisioningClient(fake);
    const error = await failure(client.createKeysAndCertificate());
    expect(error).toMatchObject({ code: 'PUBLISH_FAILED', reasonCode: 0x97, retryable: true });
    expect(error.message).toMatch(/quota exceeded/);
    expect(error.message).toMatch(/throttles/);
    expect(error.message).not.toMatch(/policy/);
    expect(isRetryable(error)).toBe(true);
    await client.close();
  });

  it('a PUBACK 0x87 (not authorized) names the policy and is not retryable', async () => {
    const fake = new FakeServiceTransport();
    fake.beforeAck = (e) => (e.type === 'publish' ? refusal(0x87) : undefined);
    const client = new FleetProvisioningClient(fake);
    const error = await failure(client.createKeysAndCertificate());
    expect(error).toMatchObject({ code: 'PUBLISH_FAILED', reasonCode: 0x87, retryable: false });
    expect(error.message).toMatch(/not authorized.*policy does not allow iot:Publish/);
    expect(isRetryable(error)).toBe(false);
    await client.close();
  });

  it.each([
    ['0x96', 0x96],
    ['0x97', 0x97],
  ])('a SUBACK %s is a retryable throttle', async (_name, code) => {
    const fake = new FakeServiceTransport();
    fake.refuse.set(T.keys.accepted, code);
    const client = new FleetProvisioningClient(fake);
    const error = await failure(client.createKeysAndCertificate());
    expect(error).toMatchObject({ code: 'SUBSCRIBE_FAILED', reasonCode: code, retryable: true });
    expect(error.message).toMatch(/throttles this client: retry with backoff/);
    expect(isRetryable(error)).toBe(true);
    await client.close();
  });

  it('provision() retries a throttled PUBACK and then succeeds', async () => {
    const ca = await makeCa();
    const pair = await generateKeyPair('ec-p256');
    const certificatePem = await issueCertificate(ca, await createCsr({ keys: pair.keys }));
    const fake = new FakeServiceTransport();
    let throttled = false;
    fake.beforeAck = (e) => {
      if (e.type !== 'publish' || throttled) return undefined;
      throttled = true;
      return refusal(0x97);
    };
    fake.respond = (e) =>
      e.topic === T.keys.request
        ? [
            answer(T.keys.accepted, {
              certificateId: 'cert-1',
              certificatePem,
              privateKey: pair.privateKeyPem,
              certificateOwnershipToken: 'token-1-abcdefgh',
            }),
          ]
        : [answer(T.register.accepted, canned.thing(1))];
    const retries: string[] = [];
    const device = await provision({
      client: fake,
      templateName: 'Factory',
      retry: { baseDelayMs: 0 },
      onProgress: (event) => {
        if (event.step === 'retrying') retries.push(event.code);
      },
    });
    expect(device).toMatchObject({ certificateId: 'cert-1', thingName: 'thing-1' });
    expect(retries).toEqual(['PUBLISH_FAILED']);
  });
});

describe('every wait is bounded', () => {
  it('close() resolves even when the broker never answers the UNSUBSCRIBE', async () => {
    const fake = new FakeServiceTransport();
    fake.respond = () => [answer(T.keys.accepted, canned.keys(1))];
    const client = new FleetProvisioningClient(fake);
    await client.createKeysAndCertificate();
    fake.unsubscribeAsync = () => new Promise<unknown>(() => {});
    await client.close();
    expect(fake.listenerTotals()).toEqual({ message: 0, close: 0, offline: 0 });
  }, 15_000);

  it('close() resolves even when a SUBACK in flight never comes', async () => {
    const fake = new FakeServiceTransport();
    fake.beforeAck = (e) => (e.type === 'subscribe' ? new Promise<void>(() => {}) : undefined);
    const client = new FleetProvisioningClient(fake);
    const call = failure(client.createKeysAndCertificate());
    await fake.waitFor('subscribe');
    await client.close();
    await expect(call).resolves.toMatchObject({ code: 'CLIENT_CLOSED' });
    expect(fake.listenerCount('message')).toBe(0);
  }, 15_000);
});

describe('an UNSUBACK that refuses', () => {
  it('is reported as a process warning naming the topics, with its reason code', async () => {
    const fake = new FakeServiceTransport();
    fake.respond = () => [answer(T.keys.accepted, canned.keys(1))];
    const client = new FleetProvisioningClient(fake);
    await client.createKeysAndCertificate();
    // An MQTT 5 UNSUBACK: 0x87 "not authorized" for the first topic, 0x11 "no subscription existed" next.
    fake.unsubscribeAsync = async () => ({ cmd: 'unsuback', granted: [0x87, 0x11] });
    // Jest's sandboxed `process` does not see the real one's 'warning' events: catch the call itself.
    const warnings: { message: string; code: unknown }[] = [];
    const emitWarning = process.emitWarning;
    process.emitWarning = ((message: string, options?: { code?: string }) => {
      warnings.push({ message, code: options?.code });
    }) as typeof process.emitWarning;
    try {
      await client.close();
    } finally {
      process.emitWarning = emitWarning;
    }
    expect(warnings).toEqual([
      {
        code: 'FLEET_PROVISION_UNSUBSCRIBE_REFUSED',
        message: expect.stringContaining(`${T.keys.accepted} (reason code 0x87)`),
      },
    ]);
  });
});

describe('releasing and holding a topic again in one turn', () => {
  it('never sends an UNSUBSCRIBE after the new SUBSCRIBE', async () => {
    const fake = new FakeServiceTransport();
    const router = routerFor(fake);
    const first = await router.subscribe([T.keys.accepted], 1, () => {});
    const released = first.release();
    const second = await router.subscribe([T.keys.accepted], 1, () => {});
    await released;
    expect(fake.wire.at(-1)).toMatchObject({ type: 'subscribe', topics: [T.keys.accepted] });
    await second.release();
    expect(fake.wire.at(-1)).toMatchObject({ type: 'unsubscribe', topics: [T.keys.accepted] });
  });

  it('a SUBACK of a released subscription does not undo the one that replaced it', async () => {
    const fake = new FakeServiceTransport();
    const router = routerFor(fake);
    const suback = gate();
    fake.beforeAck = (e) => (e.type === 'subscribe' ? suback.promise : undefined);
    const first = router.hold([T.keys.accepted], 1, () => {});
    const firstReady = first.ready().catch(() => undefined);
    const released = first.release();
    const second = router.hold([T.keys.accepted], 1, () => {});
    const secondReady = second.ready();
    suback.open();
    await Promise.all([firstReady, released, secondReady]);
    expect(fake.sent('unsubscribe')).toEqual([]);
    await second.release();
  });
});
