import { describe, expect, it } from '@jest/globals';
import { PendingCall } from '../../src/client/pending-call.js';
import { settleWithin, withDeadline } from '../../src/internal/deadline.js';
import { TimeoutError } from '../../src/protocol/errors.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** A promise and the functions that settle it. */
function deferred<T>(): { promise: Promise<T>; resolve(value: T): void; reject(error: unknown): void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('withDeadline', () => {
  it('passes the result through and clears its timer', async () => {
    const clock = new FakeClock();
    const work = deferred<string>();
    const result = withDeadline(work.promise, 1_000, () => new Error('late'), clock);
    expect(clock.pending).toBe(1);
    work.resolve('done');
    await expect(result).resolves.toBe('done');
    expect(clock.pending).toBe(0);
  });

  it("rejects with onTimeout()'s error once the time has passed", async () => {
    const clock = new FakeClock();
    const late = new Error('late');
    const result = withDeadline(deferred<string>().promise, 1_000, () => late, clock);
    clock.advance(999);
    clock.advance(1);
    await expect(result).rejects.toBe(late);
  });

  it("rejects with the signal's reason when it fires first", async () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    const result = withDeadline(
      deferred<string>().promise,
      1_000,
      () => new Error('late'),
      clock,
      controller.signal,
    );
    controller.abort(new Error('stop'));
    await expect(result).rejects.toThrow('stop');
    expect(clock.pending).toBe(0);
  });
});

describe('settleWithin', () => {
  it('is true when the promise settles in time, either way, and clears its timer', async () => {
    const clock = new FakeClock();
    const ok = deferred<void>();
    const failed = deferred<void>();
    const first = settleWithin(ok.promise, 1_000, clock);
    const second = settleWithin(failed.promise, 1_000, clock);
    expect(clock.pending).toBe(2);
    ok.resolve();
    failed.reject(new Error('refused'));
    await expect(first).resolves.toBe(true);
    await expect(second).resolves.toBe(true);
    expect(clock.pending).toBe(0);
  });

  it('is false once the bound has passed, and a later settle changes nothing', async () => {
    const clock = new FakeClock();
    const work = deferred<void>();
    const result = settleWithin(work.promise, 1_000, clock);
    clock.advance(1_000);
    await expect(result).resolves.toBe(false);
    work.reject(new Error('too late'));
    await expect(result).resolves.toBe(false);
  });
});

describe('PendingCall deadline', () => {
  it('ends the call with TIMEOUT naming its phase, and tells the owner before the caller', async () => {
    const clock = new FakeClock();
    const call = new PendingCall<string>('RegisterThing', 500, undefined, clock);
    call.phase = 'response';
    const order: string[] = [];
    call.onEnd((end) => order.push(`owner:${end}`));
    const outcome = call.promise.catch((error: unknown) => {
      order.push('caller');
      throw error;
    });
    clock.advance(500);
    await expect(outcome).rejects.toBeInstanceOf(TimeoutError);
    await expect(call.promise).rejects.toMatchObject({ code: 'TIMEOUT', phase: 'response', timeoutMs: 500 });
    expect(order).toEqual(['owner:failed', 'caller']);
    expect(call.resolve('late')).toBe(false);
  });

  it('clears its timer when answered, so nothing fires later', async () => {
    const clock = new FakeClock();
    const call = new PendingCall<string>('CreateKeysAndCertificate', 500, undefined, clock);
    expect(clock.pending).toBe(1);
    expect(call.resolve('answer')).toBe(true);
    expect(clock.pending).toBe(0);
    await expect(call.promise).resolves.toBe('answer');
  });
});
