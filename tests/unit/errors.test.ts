import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  AbortedError,
  ClientClosedError,
  ConnectionLostError,
  ERROR_CODES,
  FleetProvisioningError,
  InvalidArgumentError,
  InvalidResponseError,
  isFleetProvisioningError,
  PersistFailedError,
  PublishFailedError,
  RejectedError,
  SubscribeFailedError,
  TimeoutError,
} from '../../src/protocol/errors.js';
import { redact, rememberSecret } from '../../src/protocol/redact.js';

const PEM =
  '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----';

describe('error classes', () => {
  const made: FleetProvisioningError[] = [
    new InvalidArgumentError('x'),
    new RejectedError({ operation: 'RegisterThing', statusCode: 400, errorCode: 'E', errorMessage: 'm' }),
    new TimeoutError({ operation: 'CreateKeysAndCertificate', phase: 'response', timeoutMs: 5 }),
    new InvalidResponseError({ issues: [{ path: '(root)', problem: 'malformed json' }] }),
    new SubscribeFailedError({ topic: 't', reasonCode: 0x87 }),
    new PublishFailedError('x'),
    new ConnectionLostError('x'),
    new ClientClosedError(),
    new AbortedError('why'),
    new PersistFailedError('x'),
  ];

  it('covers every code once, each an instanceof FleetProvisioningError and Error', () => {
    expect(made.map((e) => e.code).sort()).toEqual([...ERROR_CODES].sort());
    for (const e of made) {
      expect(e).toBeInstanceOf(FleetProvisioningError);
      expect(e).toBeInstanceOf(Error);
      expect(isFleetProvisioningError(e, e.code)).toBe(true);
    }
    expect(isFleetProvisioningError(new Error('plain'))).toBe(false);
  });

  it('keeps the cause', () => {
    const cause = new Error('socket hang up');
    expect(new ConnectionLostError('lost', { cause }).cause).toBe(cause);
    expect(new AbortedError('the reason').cause).toBe('the reason');
  });

  it.each([
    [429, true],
    [500, true],
    [503, true],
    [400, false],
    [403, false],
    [404, false],
  ])('RejectedError %i is retryable: %s', (statusCode, retryable) => {
    const e = new RejectedError({
      operation: 'RegisterThing',
      statusCode,
      errorCode: 'E',
      errorMessage: 'm',
    });
    expect(e.retryable).toBe(retryable);
    expect(e.message).toContain(String(statusCode));
  });

  it('does not double the full stop of a service message', () => {
    const e = new RejectedError({
      operation: 'RegisterThing',
      statusCode: 400,
      errorCode: 'E',
      errorMessage: 'Token expired.',
    });
    expect(e.message).toContain('Token expired. ');
    expect(e.message).not.toContain('..');
  });

  it('SubscribeFailedError shows the reason code in hex', () => {
    expect(new SubscribeFailedError({ topic: 'a/b', reasonCode: 0x87 }).message).toContain('0x87');
  });

  it('TimeoutError names the phase', () => {
    const e = new TimeoutError({ operation: 'RegisterThing', phase: 'subscribe', timeoutMs: 100 });
    expect(e).toMatchObject({
      code: 'TIMEOUT',
      operation: 'RegisterThing',
      phase: 'subscribe',
      timeoutMs: 100,
    });
    expect(e.message).toContain('subscribe');
  });
});

describe('redaction', () => {
  it('removes a PEM block, complete or cut off', () => {
    expect(redact(`before ${PEM} after`)).toBe('before [REDACTED] after');
    expect(redact(`cut: ${PEM.slice(0, 60)}`)).toBe('cut: [REDACTED]');
  });

  it('removes long opaque tokens but keeps a certificate id readable', () => {
    const token = 'eyJ'.padEnd(400, 'Ab9+/');
    const id = 'a1'.repeat(32);
    expect(redact(`token ${token} for ${id}`)).toBe(`token [REDACTED] for ${id}`);
  });

  it('removes remembered secrets of any shape', () => {
    rememberSecret('short-secret-123');
    expect(redact('the token short-secret-123 expired')).toBe('the token [REDACTED] expired');
  });

  it('applies to every error message, including a service errorMessage', () => {
    const e = new RejectedError({
      operation: 'RegisterThing',
      statusCode: 400,
      errorCode: 'InvalidCertificateOwnershipToken',
      errorMessage: `token ${'x'.repeat(200)} is bad; key ${PEM}`,
    });
    expect(e.message).not.toContain('xxxxxxxxxx');
    expect(e.message).not.toContain('BEGIN');
    expect(e.errorMessage).not.toContain('BEGIN');
  });

  it('never lets a remembered secret through any error message (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 8, maxLength: 300 }).filter((s) => s.trim().length >= 8),
        fc.string({ maxLength: 40 }),
        (secret, around) => {
          rememberSecret(secret);
          const text = `${around}${secret}${around}`;
          const errors = [
            new InvalidArgumentError(text),
            new PersistFailedError(text),
            new RejectedError({
              operation: 'RegisterThing',
              statusCode: 400,
              errorCode: 'E',
              errorMessage: text,
            }),
          ];
          for (const e of errors) expect(e.message.includes(secret)).toBe(false);
        },
      ),
      { seed: 7, numRuns: 300 },
    );
  });
});
