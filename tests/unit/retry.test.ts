import { describe, expect, it } from '@jest/globals';
import {
  AbortedError,
  ConnectionLostError,
  InvalidArgumentError,
  InvalidResponseError,
  PublishFailedError,
  RejectedError,
  SubscribeFailedError,
  TimeoutError,
} from '../../src/protocol/errors.js';
import { backoffDelay, DEFAULT_RETRY, isRetryable, retryPolicy } from '../../src/provision/retry.js';

const rejected = (statusCode: number) =>
  new RejectedError({ operation: 'RegisterThing', statusCode, errorCode: 'E', errorMessage: 'm' });

describe('backoffDelay', () => {
  const policy = { attempts: 10, baseDelayMs: 500, maxDelayMs: 10_000 };
  const highest = () => 0.999_999;

  it('doubles its ceiling with each attempt, from baseDelayMs', () => {
    expect(backoffDelay(1, policy, highest)).toBe(499);
    expect(backoffDelay(2, policy, highest)).toBe(999);
    expect(backoffDelay(3, policy, highest)).toBe(1_999);
  });

  it('never waits longer than maxDelayMs', () => {
    expect(backoffDelay(6, policy, highest)).toBe(9_999);
    expect(backoffDelay(60, policy, highest)).toBe(9_999);
  });

  it('is fully jittered: anywhere from 0 up to the ceiling', () => {
    expect(backoffDelay(5, policy, () => 0)).toBe(0);
    expect(backoffDelay(5, policy, () => 0.5)).toBe(4_000);
  });
});

describe('isRetryable', () => {
  it.each([
    ['a 429 rejection', rejected(429)],
    ['a 500 rejection', rejected(500)],
    ['a 503 rejection', rejected(503)],
    ['a timeout', new TimeoutError({ operation: 'RegisterThing', phase: 'response', timeoutMs: 5 })],
    ['a lost connection', new ConnectionLostError('gone')],
    ['a throttled SUBSCRIBE (0x97)', new SubscribeFailedError({ topic: 't', reasonCode: 0x97 })],
    ['a throttled PUBLISH (0x96)', new PublishFailedError('slow down', { reasonCode: 0x96 })],
  ])('retries %s', (_name, error) => {
    expect(isRetryable(error)).toBe(true);
  });

  it.each([
    ['a 400 rejection', rejected(400)],
    ['a 403 rejection', rejected(403)],
    ['an untrusted server certificate', new ConnectionLostError('bad CA', { retryable: false })],
    ['a refused SUBSCRIBE (0x80)', new SubscribeFailedError({ topic: 't', reasonCode: 0x80 })],
    ['a PUBLISH failure without a reason code', new PublishFailedError('no')],
    ['a bad answer', new InvalidResponseError({ issues: [{ path: '(root)', problem: 'malformed json' }] })],
    ['a bad argument', new InvalidArgumentError('x')],
    ['an abort', new AbortedError(undefined)],
    ['an error that is not ours', new Error('boom')],
    ['something that is not an error', 'boom'],
  ])('does not retry %s', (_name, error) => {
    expect(isRetryable(error)).toBe(false);
  });
});

describe('retryPolicy', () => {
  it('fills in the defaults: four tries, 0.5 s doubling up to 10 s', () => {
    expect(retryPolicy(undefined)).toEqual(DEFAULT_RETRY);
    expect(retryPolicy({})).toEqual({ attempts: 4, baseDelayMs: 500, maxDelayMs: 10_000 });
    expect(retryPolicy({ attempts: 2 })).toEqual({ ...DEFAULT_RETRY, attempts: 2 });
  });

  it('turns retries off with false, keeping the delays', () => {
    expect(retryPolicy(false)).toEqual({ ...DEFAULT_RETRY, attempts: 1 });
  });

  it('accepts zero delays (retry at once)', () => {
    expect(retryPolicy({ baseDelayMs: 0, maxDelayMs: 0 })).toEqual({
      attempts: 4,
      baseDelayMs: 0,
      maxDelayMs: 0,
    });
  });

  it.each([
    [{ attempts: 0 }, /retry.attempts/],
    [{ attempts: 101 }, /retry.attempts/],
    [{ attempts: 2.5 }, /retry.attempts/],
    [{ baseDelayMs: -1 }, /retry.baseDelayMs/],
    [{ baseDelayMs: 1.5 }, /retry.baseDelayMs/],
    [{ maxDelayMs: 2 ** 31 }, /retry.maxDelayMs/],
  ])('refuses %j with INVALID_ARGUMENT naming the field', (options, message) => {
    expect(() => retryPolicy(options)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(message) }),
    );
  });
});
