import { getEventListeners } from 'node:events';
import { describe, expect, it } from '@jest/globals';
import { FleetProvisioningClient } from '../../src/client/fleet-provisioning-client.js';
import { engineFor } from '../../src/client/request-engine.js';
import {
  AbortedError,
  FleetProvisioningError,
  SubscribeFailedError,
  TimeoutError,
} from '../../src/protocol/errors.js';
import { failure } from '../helpers/failure.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { answer, canned, FakeServiceTransport, serviceTopics } from '../helpers/fake-service-transport.js';

const T = serviceTopics();

/** A fake service that answers each request in order, once the test says so (or at once). */
function queuedService(fake: FakeServiceTransport, topic = T.keys.request) {
  let inFlight = 0;
  let maxInFlight = 0;
  let n = 0;
  fake.respond = (publish) => {
    if (publish.topic !== topic) return undefined;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    n++;
    const mine = n;
    // Answer on the next turn; the in-flight count drops when the answer is sent.
    setImmediate(() => inFlight--);
    return [answer(T.keys.accepted, canned.keys(mine))];
  };
  return { maxInFlight: () => maxInFlight };
}

describe('one call at a time per topic pair, first in first out', () => {
  it('runs 50 concurrent calls one at a time; each caller gets its own answer', async () => {
    const fake = new FakeServiceTransport();
    const service = queuedService(fake);
    const client = new FleetProvisioningClient(fake);
    const results = await Promise.all(Array.from({ length: 50 }, () => client.createKeysAndCertificate()));
    expect(results.map((r) => r.certificateId)).toEqual(
      Array.from({ length: 50 }, (_, i) => `cert-${i + 1}`),
    );
    expect(service.maxInFlight()).toBe(1);
    expect(fake.sent('subscribe')).toHaveLength(1);
    await client.close();
  });

  it('runs different pairs side by side', async () => {
    const fake = new FakeServiceTransport();
    const client = new FleetProvisioningClient(fake);
    fake.respond = () => undefined;
    const keys = client.createKeysAndCertificate();
    const thing = client.registerThing({ templateName: 'Factory', certificateOwnershipToken: 'tok' });
    await fake.waitFor('publish', 2);
    fake.deliver(T.register.accepted, JSON.stringify(canned.thing(2)));
    fake.deliver(T.keys.accepted, JSON.stringify(canned.keys(1)));
    await expect(thing).resolves.toEqual(canned.thing(2));
    await expect(keys).resolves.toEqual(canned.keys(1));
    await client.close();
  });

  it('aborting a queued call removes only that call', async () => {
    const fake = new FakeServiceTransport();
    const client = new FleetProvisioningClient(fake);
    const first = client.createKeysAndCertificate();
    const controller = new AbortController();
    const second = client.createKeysAndCertificate({ signal: controller.signal });
    const third = client.createKeysAndCertificate();
    await fake.waitFor('publish');
    const reason = new Error('user gave up');
    controller.abort(reason);
    const error = await failure(second);
    expect(error).toBeInstanceOf(AbortedError);
    expect(error.cause).toBe(reason);
    fake.deliver(T.keys.accepted, JSON.stringify(canned.keys(1)));
    await expect(first).resolves.toEqual(canned.keys(1));
    await fake.waitFor('publish', 2);
    fake.deliver(T.keys.accepted, JSON.stringify(canned.keys(3)));
    await expect(third).resolves.toEqual(canned.keys(3));
    expect(fake.published(T.keys.request)).toBe(2);
    await client.close();
  });

  it('an already aborted signal rejects at once with nothing sent', async () => {
    const fake = new FakeServiceTransport();
    const client = new FleetProvisioningClient(fake);
    const error = await failure(client.createKeysAndCertificate({ signal: AbortSignal.abort('stop') }));
    expect(error).toMatchObject({ code: 'ABORTED', cause: 'stop' });
    expect(fake.wire).toEqual([]);
    await client.close();
  });
});

describe('one deadline per call, counted from the call', () => {
  it('counts time spent queued: a queued call times out in phase "queued"', async () => {
    const fake = new FakeServiceTransport();
    const clock = new FakeClock();
    const client = new FleetProvisioningClient(fake, { timers: clock });
    const first = client.createKeysAndCertificate();
    const second = client.createKeysAndCertificate({ timeoutMs: 20 });
    await fake.waitFor('publish');
    clock.advance(19);
    expect(fake.published(T.keys.request)).toBe(1);
    clock.advance(1);
    const error = await failure(second);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ code: 'TIMEOUT', phase: 'queued', timeoutMs: 20 });
    fake.deliver(T.keys.accepted, JSON.stringify(canned.keys(1)));
    await expect(first).resolves.toEqual(canned.keys(1));
    expect(fake.published(T.keys.request)).toBe(1);
    // Both deadlines are gone: the answered call's and the timed-out one's.
    expect(clock.pending).toBe(0);
    await client.close();
  });

  it('reports phase "subscribe" when the SUBACK never comes, and publishes nothing', async () => {
    const fake = new FakeServiceTransport();
    const clock = new FakeClock();
    fake.beforeAck = (e) => (e.type === 'subscribe' ? new Promise<void>(() => {}) : undefined);
    const client = new FleetProvisioningClient(fake, { timers: clock });
    const call = client.createKeysAndCertificate({ timeoutMs: 20 });
    await fake.waitFor('subscribe');
    clock.advance(20);
    const error = await failure(call);
    expect(error).toMatchObject({ code: 'TIMEOUT', phase: 'subscribe' });
    expect(fake.sent('publish')).toHaveLength(0);
    const preparing = client.prepare([{ operation: 'CreateKeysAndCertificate' }], { timeoutMs: 20 });
    clock.advance(20);
    expect(await failure(preparing)).toMatchObject({ code: 'TIMEOUT', phase: 'subscribe' });
    await client.close();
  });

  it('reports phase "publish" when the PUBACK never comes, and takes the request back', async () => {
    const fake = new FakeServiceTransport();
    const clock = new FakeClock();
    fake.beforeAck = (e) => (e.type === 'publish' ? new Promise<void>(() => {}) : undefined);
    const client = new FleetProvisioningClient(fake, { timers: clock });
    const call = client.createKeysAndCertificate({ timeoutMs: 20 });
    await fake.waitFor('publish');
    clock.advance(20);
    const error = await failure(call);
    expect(error).toMatchObject({ code: 'TIMEOUT', phase: 'publish' });
    expect(fake.removed).toEqual([1]);
    await client.close();
  });

  it('reports phase "response" when the answer never comes', async () => {
    const fake = new FakeServiceTransport();
    const clock = new FakeClock();
    const client = new FleetProvisioningClient(fake, { timers: clock });
    const call = client.createKeysAndCertificate({ timeoutMs: 20 });
    await fake.waitFor('publish');
    // The fake acknowledges in a microtask: one turn of the event loop and the PUBACK is in.
    await new Promise((resolve) => setImmediate(resolve));
    clock.advance(20);
    const error = await failure(call);
    expect(error).toMatchObject({
      code: 'TIMEOUT',
      phase: 'response',
      operation: 'CreateKeysAndCertificate',
    });
    expect(fake.removed).toEqual([]);
    await client.close();
  });

  it('an answer that comes in time clears its deadline', async () => {
    const fake = new FakeServiceTransport();
    const clock = new FakeClock();
    const client = new FleetProvisioningClient(fake, { timers: clock });
    const call = client.createKeysAndCertificate({ timeoutMs: 20 });
    await fake.waitFor('publish');
    expect(clock.pending).toBe(1);
    clock.advance(19);
    fake.deliver(T.keys.accepted, JSON.stringify(canned.keys(1)));
    await expect(call).resolves.toEqual(canned.keys(1));
    expect(clock.pending).toBe(0);
    await client.close();
  });
});

describe('late and duplicate answers', () => {
  it('holds the next call until the late answer of a timed-out call arrives, and drops it', async () => {
    const fake = new FakeServiceTransport();
    const client = new FleetProvisioningClient(fake, { lateAnswerWindowMs: 60_000 });
    await failure(client.createKeysAndCertificate({ timeoutMs: 20 }));
    const next = client.createKeysAndCertificate();
    await fake.waitFor('publish');
    // The quarantine holds the next request: nothing but the first one is out.
    await new Promise((resolve) => setImmediate(resolve));
    expect(fake.published(T.keys.request)).toBe(1);
    fake.deliver(T.keys.accepted, JSON.stringify(canned.keys(666)));
    await fake.waitFor('publish', 2);
    fake.deliver(T.keys.accepted, JSON.stringify(canned.keys(2)));
    await expect(next).resolves.toEqual(canned.keys(2));
    await client.close();
  });

  it('stops waiting for the late answer after the window', async () => {
    const fake = new FakeServiceTransport();
    const client = new FleetProvisioningClient(fake, { lateAnswerWindowMs: 20 });
    await failure(client.createKeysAndCertificate({ timeoutMs: 10 }));
    fake.respond = () => [answer(T.keys.accepted, canned.keys(2))];
    await expect(client.createKeysAndCertificate()).resolves.toEqual(canned.keys(2));
    await client.close();
  });

  it('after an abort with the request out, the late answer does not settle the next call', async () => {
    const fake = new FakeServiceTransport();
    const client = new FleetProvisioningClient(fake);
    const controller = new AbortController();
    const first = client.createKeysAndCertificate({ signal: controller.signal });
    await fake.waitFor('publish');
    controller.abort();
    await failure(first);
    const next = client.createKeysAndCertificate();
    // Give the next call every chance to go out before the late answer comes: it must not.
    await new Promise((resolve) => setImmediate(resolve));
    expect(fake.published(T.keys.request)).toBe(1);
    fake.deliver(T.keys.rejected, JSON.stringify(canned.rejection(500)));
    await fake.waitFor('publish', 2);
    fake.deliver(T.keys.accepted, JSON.stringify(canned.keys(2)));
    await expect(next).resolves.toEqual(canned.keys(2));
    await client.close();
  });

  it('a duplicate received before the next request goes out is dropped, not given to the next call', async () => {
    const fake = new FakeServiceTransport();
    const client = new FleetProvisioningClient(fake);
    const first = client.createKeysAndCertificate();
    const second = client.createKeysAndCertificate();
    await fake.waitFor('publish');
    fake.deliver(T.keys.accepted, JSON.stringify(canned.keys(1)));
    await expect(first).resolves.toEqual(canned.keys(1));
    fake.deliver(T.keys.accepted, JSON.stringify(canned.keys(1)));
    await fake.waitFor('publish', 2);
    fake.deliver(T.keys.accepted, JSON.stringify(canned.keys(2)));
    await expect(second).resolves.toEqual(canned.keys(2));
    await client.close();
  });

  it('a duplicate that arrives after the next request went out is dropped: its certificate was delivered', async () => {
    const fake = new FakeServiceTransport();
    const client = new FleetProvisioningClient(fake);
    const first = client.createKeysAndCertificate();
    await fake.waitFor('publish');
    fake.deliver(T.keys.accepted, JSON.stringify(canned.keys(1)));
    await expect(first).resolves.toEqual(canned.keys(1));
    const second = client.createKeysAndCertificate();
    await fake.waitFor('publish', 2);
    // The second request is out: by timing alone this could be its answer. Its certificate id says not.
    fake.deliver(T.keys.accepted, JSON.stringify(canned.keys(1)));
    fake.deliver(T.keys.accepted, JSON.stringify(canned.keys(2)));
    await expect(second).resolves.toEqual(canned.keys(2));
    await client.close();
  });

  it.each([
    ['the same answer twice', [canned.keys(1), canned.keys(1)], []],
    ['accepted then rejected', [canned.keys(1)], [canned.rejection(500)]],
  ])('%s: the first settles, the rest are dropped', async (_name, accepted, rejected) => {
    const fake = new FakeServiceTransport();
    let n = 0;
    fake.respond = () => {
      n++;
      if (n > 1) return [answer(T.keys.accepted, canned.keys(n))];
      return [
        ...accepted.map((a) => answer(T.keys.accepted, a)),
        ...rejected.map((r) => answer(T.keys.rejected, r)),
      ];
    };
    const client = new FleetProvisioningClient(fake);
    const both = [client.createKeysAndCertificate(), client.createKeysAndCertificate()];
    await expect(Promise.all(both)).resolves.toEqual([canned.keys(1), canned.keys(2)]);
    await expect(client.createKeysAndCertificate()).resolves.toEqual(canned.keys(3));
    await client.close();
  });
});

describe('subscriptions', () => {
  it.each([0x80, 0x87])(
    'SUBACK %d → SUBSCRIBE_FAILED with the reason code, nothing published',
    async (code) => {
      const fake = new FakeServiceTransport();
      fake.respond = () => [answer(T.keys.accepted, canned.keys(1))];
      fake.refuse.set(T.keys.rejected, code);
      const client = new FleetProvisioningClient(fake);
      const error = await failure(client.createKeysAndCertificate());
      expect(error).toBeInstanceOf(SubscribeFailedError);
      expect(error).toMatchObject({ code: 'SUBSCRIBE_FAILED', topic: T.keys.rejected, reasonCode: code });
      expect(fake.sent('publish')).toHaveLength(0);
      // The refusal is not remembered: the next call subscribes again.
      fake.refuse.clear();
      await expect(client.createKeysAndCertificate()).resolves.toEqual(canned.keys(1));
      expect(fake.sent('subscribe')).toHaveLength(2);
      await client.close();
    },
  );
});

describe('the connection', () => {
  it('a call made offline fails at once with CONNECTION_LOST and leaves nothing queued', async () => {
    const fake = new FakeServiceTransport();
    fake.connected = false;
    const client = new FleetProvisioningClient(fake);
    await expect(failure(client.createKeysAndCertificate())).resolves.toMatchObject({
      code: 'CONNECTION_LOST',
    });
    await expect(failure(client.prepare([{ operation: 'CreateKeysAndCertificate' }]))).resolves.toMatchObject(
      {
        code: 'CONNECTION_LOST',
      },
    );
    expect(fake.wire).toEqual([]);
    expect(engineFor(fake).pending).toBe(0);
    await client.close();
  });

  it('a drop fails every pending call at once, takes the request back, and resubscribes after', async () => {
    const fake = new FakeServiceTransport();
    fake.beforeAck = (e) => (e.type === 'publish' ? new Promise<void>(() => {}) : undefined);
    const client = new FleetProvisioningClient(fake);
    const running = client.createKeysAndCertificate();
    const queued = client.createKeysAndCertificate();
    const other = client.registerThing({ templateName: 'Factory', certificateOwnershipToken: 'tok' });
    await fake.waitFor('publish', 2);
    fake.drop();
    for (const call of [running, queued, other]) {
      await expect(failure(call)).resolves.toMatchObject({ code: 'CONNECTION_LOST' });
    }
    expect(fake.removed.sort()).toEqual([1, 2]);
    expect(engineFor(fake).pending).toBe(0);
    // Back online: the subscriptions are made again before the next request, with no quarantine.
    fake.connected = true;
    fake.beforeAck = () => undefined;
    fake.respond = () => [answer(T.keys.accepted, canned.keys(7))];
    await expect(client.createKeysAndCertificate()).resolves.toEqual(canned.keys(7));
    expect(fake.wire.slice(-2).map((e) => e.type)).toEqual(['subscribe', 'publish']);
    await client.close();
  });

  it('a drop while subscribing fails prepare() with CONNECTION_LOST', async () => {
    const fake = new FakeServiceTransport();
    fake.beforeAck = (e) => (e.type === 'subscribe' ? new Promise<void>(() => {}) : undefined);
    const client = new FleetProvisioningClient(fake);
    const prepared = client.prepare([{ operation: 'CreateKeysAndCertificate' }]);
    await fake.waitFor('subscribe');
    fake.drop();
    await expect(failure(prepared)).resolves.toMatchObject({ code: 'CONNECTION_LOST' });
    await client.close();
  });
});

describe('close() and cleanup', () => {
  it('writes the UNSUBSCRIBE in the next turn; a client that takes the topics first keeps them', async () => {
    const fake = new FakeServiceTransport();
    const keys = [{ operation: 'CreateKeysAndCertificate' as const }];
    const first = new FleetProvisioningClient(fake);
    await first.prepare(keys);
    const closed = first.close();
    // Nothing written after the pending microtasks either: the caller that released goes on first.
    for (let i = 0; i < 5; i++) await Promise.resolve();
    expect(fake.sent('unsubscribe')).toEqual([]);
    const second = new FleetProvisioningClient(fake);
    await second.prepare(keys);
    await closed;
    await new Promise((resolve) => setImmediate(resolve));
    // The topics were held again before the UNSUBSCRIBE went out: it never does, and the second client's
    // own SUBSCRIBE reached the broker.
    expect(fake.sent('unsubscribe')).toEqual([]);
    expect(fake.sent('subscribe')).toHaveLength(2);
    await second.close();
    expect(fake.sent('unsubscribe').flatMap((e) => e.topics)).toEqual([T.keys.accepted, T.keys.rejected]);
  });

  it('rejects every pending call with CLIENT_CLOSED and removes subscriptions and listeners', async () => {
    const fake = new FakeServiceTransport();
    let releaseSuback!: () => void;
    fake.beforeAck = (e) =>
      e.type === 'subscribe' && e.topics.includes(T.csr.accepted)
        ? new Promise<void>((resolve) => (releaseSuback = resolve))
        : undefined;
    const before = fake.listenerTotals();
    const client = new FleetProvisioningClient(fake);
    const calls = [
      client.createKeysAndCertificate(),
      client.createKeysAndCertificate(),
      client.registerThing({ templateName: 'Factory', certificateOwnershipToken: 'tok' }),
      client.prepare([{ operation: 'CreateCertificateFromCsr' }]),
    ];
    await fake.waitFor('publish', 2);
    await fake.waitFor('subscribe', 3);
    const settled = calls.map(failure);
    const closed = client.close();
    // The listeners go at once, even with a SUBSCRIBE in flight.
    expect(fake.listenerTotals()).toEqual(before);
    for (const call of settled) await expect(call).resolves.toMatchObject({ code: 'CLIENT_CLOSED' });
    // The subscribed pairs are undone in one UNSUBSCRIBE, without waiting for the SUBACK in flight.
    await fake.waitFor('unsubscribe');
    expect(
      fake
        .sent('unsubscribe')
        .flatMap((e) => e.topics)
        .sort(),
    ).toEqual([T.keys.accepted, T.keys.rejected, T.register.accepted, T.register.rejected].sort());
    // close() waits for the SUBACK in flight, then undoes that subscription too.
    releaseSuback();
    await closed;
    const late = await fake.waitFor('unsubscribe', 1, (e) => e.topics.includes(T.csr.accepted));
    expect(late.topics).toEqual([T.csr.accepted, T.csr.rejected]);
    expect(fake.listenerTotals()).toEqual(before);
    expect(engineFor(fake).pending).toBe(0);
    await expect(failure(client.createKeysAndCertificate())).resolves.toMatchObject({
      code: 'CLIENT_CLOSED',
    });
    await client.close();
  });

  it('two clients on one connection share the queue; closing one leaves the other working', async () => {
    const fake = new FakeServiceTransport();
    const service = queuedService(fake);
    const a = new FleetProvisioningClient(fake);
    const b = new FleetProvisioningClient(fake);
    const results = await Promise.all([a.createKeysAndCertificate(), b.createKeysAndCertificate()]);
    expect(results.map((r) => r.certificateId)).toEqual(['cert-1', 'cert-2']);
    expect(service.maxInFlight()).toBe(1);
    await a.close();
    expect(fake.sent('unsubscribe')).toHaveLength(0);
    await expect(b.createKeysAndCertificate()).resolves.toEqual(canned.keys(3));
    await b.close();
    expect(fake.sent('unsubscribe')).toHaveLength(1);
  });

  it('1,000 calls with mixed outcomes leave no listener, timer or abort handler behind', async () => {
    const fake = new FakeServiceTransport();
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const shared = new AbortController();
    const client = new FleetProvisioningClient(fake, { lateAnswerWindowMs: 1 });
    await client.prepare([
      { operation: 'CreateKeysAndCertificate' },
      { operation: 'RegisterThing', templateName: 'Factory' },
    ]);
    const baseline = fake.listenerTotals();
    const outcomes = new Map<string, number>();
    let n = 0;
    fake.respond = (publish) => {
      n++;
      const t = publish.topic === T.keys.request ? T.keys : T.register;
      switch (n % 4) {
        case 0:
          return [answer(t.accepted, t === T.keys ? canned.keys(n) : canned.thing(n))];
        case 1:
          return [answer(t.rejected, canned.rejection(429))];
        case 2:
          return [{ topic: t.accepted, payload: '{broken' }];
        default:
          return undefined;
      }
    };
    for (let round = 0; round < 100; round++) {
      const batch: Promise<unknown>[] = [];
      for (let i = 0; i < 5; i++) {
        batch.push(client.createKeysAndCertificate({ signal: shared.signal, timeoutMs: 20 }));
        batch.push(
          client.registerThing(
            { templateName: 'Factory', certificateOwnershipToken: 'tok' },
            { signal: shared.signal, timeoutMs: 20 },
          ),
        );
      }
      const aborter = new AbortController();
      batch.push(client.createKeysAndCertificate({ signal: aborter.signal }));
      aborter.abort();
      for (const r of await Promise.allSettled(batch)) {
        const key =
          r.status === 'fulfilled' ? 'ok' : r.reason instanceof FleetProvisioningError ? r.reason.code : '?';
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      }
    }
    process.removeListener('warning', onWarning);
    expect([...outcomes.values()].reduce((a, b) => a + b)).toBe(1100);
    expect([...outcomes.keys()].sort()).toEqual(['ABORTED', 'INVALID_RESPONSE', 'REJECTED', 'TIMEOUT', 'ok']);
    expect(fake.listenerTotals()).toEqual(baseline);
    expect(getEventListeners(shared.signal, 'abort')).toHaveLength(0);
    expect(engineFor(fake).pending).toBe(0);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    await client.close();
  });
});
