import { describe, expect, it, jest } from '@jest/globals';
import { IotIdentityClient } from '../../src/identity/iot-identity-client.js';
import { routerFor } from '../../src/mqtt/topic-router.js';
import type { FleetProvisioningError } from '../../src/protocol/errors.js';
import { encodePayload } from '../../src/protocol/payload.js';
import type { ErrorResponse } from '../../src/protocol/schemas.js';
import { topics } from '../../src/protocol/topics.js';
import { FakeTransport } from '../helpers/fake-transport.js';

const keys = topics.createKeysAndCertificate();

describe('IotIdentityClient over a fake transport', () => {
  it('installs one message listener before the first SUBSCRIBE and removes it after the last', async () => {
    const t = new FakeTransport();
    let listenersAtSubscribe = -1;
    t.beforeAck = () => {
      listenersAtSubscribe = t.listenerCount('message');
    };
    const id = new IotIdentityClient(t);
    const a = await id.subscribeToCreateKeysAndCertificateAccepted({}, 1);
    const b = await id.subscribeToCreateKeysAndCertificateRejected({}, 1);
    expect(listenersAtSubscribe).toBe(1);
    expect(t.listenerCount('message')).toBe(1);
    await a.unsubscribe();
    await b.unsubscribe();
    expect(t.listenerCount('message')).toBe(0);
  });

  it('reference-counts a topic: one SUBSCRIBE, UNSUBSCRIBE when the last holder leaves', async () => {
    const t = new FakeTransport();
    const one = new IotIdentityClient(t);
    const two = new IotIdentityClient(t);
    const s1 = await one.subscribeToCreateKeysAndCertificateAccepted({}, 1);
    const s2 = await two.subscribeToCreateKeysAndCertificateAccepted({}, 1);
    expect(t.sent('subscribe')).toEqual([{ type: 'subscribe', topics: [keys.accepted], qos: 1 }]);
    await s1.unsubscribe();
    expect(t.sent('unsubscribe')).toEqual([]);
    expect(routerFor(t).holders(keys.accepted)).toBe(1);
    await s2.unsubscribe();
    expect(t.sent('unsubscribe')).toEqual([{ type: 'unsubscribe', topics: [keys.accepted] }]);
  });

  it('lets concurrent subscribers to one topic share the SUBSCRIBE in flight', async () => {
    const t = new FakeTransport();
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    t.beforeAck = () => held;
    const id = new IotIdentityClient(t);
    const p1 = id.subscribeToCreateKeysAndCertificateAccepted({}, 1);
    const p2 = id.subscribeToCreateKeysAndCertificateAccepted({}, 1);
    release();
    await Promise.all([p1, p2]);
    expect(t.sent('subscribe')).toHaveLength(1);
  });

  it('rejects SUBSCRIBE_FAILED with the topic and reason code, and forgets the topic', async () => {
    const t = new FakeTransport();
    t.refuse.set(keys.rejected, 0x87);
    const id = new IotIdentityClient(t);
    await expect(id.subscribeToCreateKeysAndCertificateRejected({}, 1)).rejects.toMatchObject({
      code: 'SUBSCRIBE_FAILED',
      topic: keys.rejected,
      reasonCode: 0x87,
    });
    expect(routerFor(t).topics).toEqual([]);
    expect(t.listenerCount('message')).toBe(0);
  });

  it('refuses to subscribe or publish while offline', async () => {
    const t = new FakeTransport();
    t.connected = false;
    const id = new IotIdentityClient(t);
    await expect(id.subscribeToCreateKeysAndCertificateAccepted({}, 1)).rejects.toMatchObject({
      code: 'CONNECTION_LOST',
    });
    await expect(id.publishCreateKeysAndCertificate({}, 1)).rejects.toMatchObject({
      code: 'CONNECTION_LOST',
    });
    expect(t.wire).toEqual([]);
  });

  it('validates requests before any traffic', async () => {
    const t = new FakeTransport();
    const id = new IotIdentityClient(t);
    await expect(
      id.publishRegisterThing({ templateName: 'a/b', certificateOwnershipToken: 't' }, 1),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      id.publishCreateCertificateFromCsr({ certificateSigningRequest: '' }, 1),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(id.publishCreateKeysAndCertificate({}, 2 as 1)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(t.wire).toEqual([]);
  });

  it('keeps the template name out of the RegisterThing payload', async () => {
    const t = new FakeTransport();
    await new IotIdentityClient(t, { format: 'cbor' }).publishRegisterThing(
      { templateName: 'T', certificateOwnershipToken: 'tok', parameters: { SerialNumber: '1' } },
      1,
    );
    expect(t.sent('publish')).toEqual([
      {
        type: 'publish',
        topic: topics.registerThing('T', 'cbor').request,
        payload: encodePayload(
          { certificateOwnershipToken: 'tok', parameters: { SerialNumber: '1' } },
          'cbor',
        ),
        qos: 1,
      },
    ]);
  });

  it('wraps a failed publish as PUBLISH_FAILED', async () => {
    const t = new FakeTransport();
    t.publishAsync = async () => {
      throw new Error('write EPIPE');
    };
    await expect(new IotIdentityClient(t).publishCreateKeysAndCertificate({}, 1)).rejects.toMatchObject({
      code: 'PUBLISH_FAILED',
    });
  });

  it('routes only exact topics, and reports invalid payloads on the stream', async () => {
    const t = new FakeTransport();
    const seen: Array<[FleetProvisioningError | undefined, ErrorResponse | undefined]> = [];
    await new IotIdentityClient(t).subscribeToCreateKeysAndCertificateRejected({}, 1, (e, r) =>
      seen.push([e, r]),
    );
    const answer = { statusCode: 429, errorCode: 'ThrottlingException', errorMessage: 'slow down' };
    t.deliver(`${keys.rejected}/x`, JSON.stringify(answer));
    t.deliver(topics.createCertificateFromCsr().rejected, JSON.stringify(answer));
    t.deliver(keys.rejected, JSON.stringify(answer));
    t.deliver(keys.rejected, '{not json');
    expect(seen).toHaveLength(2);
    expect(seen[0]).toEqual([undefined, answer]);
    expect(seen[1]?.[0]).toMatchObject({ code: 'INVALID_RESPONSE', topic: keys.rejected });
  });

  it('never throws a callback error into the transport, and keeps delivering to others', async () => {
    const t = new FakeTransport();
    const id = new IotIdentityClient(t);
    await id.subscribeToCreateKeysAndCertificateRejected({}, 1, () => {
      throw new Error('user bug');
    });
    const others: unknown[] = [];
    await id.subscribeToCreateKeysAndCertificateRejected({}, 1, (_e, r) => others.push(r));
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      expect(() =>
        t.deliver(keys.rejected, '{"statusCode":500,"errorCode":"X","errorMessage":"y"}'),
      ).not.toThrow();
      expect(others).toHaveLength(1);
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('user bug'), {
        type: 'FleetProvisioningWarning',
      });
    } finally {
      warn.mockRestore();
    }
  });

  it('iterates validated answers and ends when unsubscribed', async () => {
    const t = new FakeTransport();
    const stream = await new IotIdentityClient(t).subscribeToRegisterThingAccepted({ templateName: 'T' }, 1);
    const topic = topics.registerThing('T').accepted;
    t.deliver(topic, JSON.stringify({ deviceConfiguration: {}, thingName: 'a' }));
    t.deliver(topic, JSON.stringify({ deviceConfiguration: { x: {} } }));
    t.deliver(topic, JSON.stringify({ deviceConfiguration: {}, thingName: 'b' }));
    const it = stream[Symbol.asyncIterator]();
    await expect(it.next()).resolves.toEqual({
      done: false,
      value: { deviceConfiguration: {}, thingName: 'a' },
    });
    await expect(it.next()).rejects.toMatchObject({
      code: 'INVALID_RESPONSE',
      issues: [{ path: 'deviceConfiguration.x', problem: 'expected string' }],
    });
    await expect(it.next()).resolves.toEqual({
      done: false,
      value: { deviceConfiguration: {}, thingName: 'b' },
    });
    const pending = it.next();
    await stream.unsubscribe();
    await expect(pending).resolves.toEqual({ done: true, value: undefined });
  });
});
