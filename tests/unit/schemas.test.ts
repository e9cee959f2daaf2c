import { describe, expect, it } from '@jest/globals';
import { operations } from '../../src/protocol/operations.js';
import { checkSchema, decodePayload, loadCodec } from '../../src/protocol/payload.js';
import { encodeRequest } from '../../src/protocol/requests.js';
import {
  CreateCertificateFromCsrResponseSchema,
  CreateKeysAndCertificateResponseSchema,
  ErrorResponseSchema,
  RegisterThingRequestPayloadSchema,
  RegisterThingResponseSchema,
} from '../../src/protocol/schemas.js';

// Shaped as AWS sends them (values shortened).
const keysAccepted = {
  certificateId: '0123456789abcdef'.repeat(4),
  certificatePem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
  privateKey: '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n',
  certificateOwnershipToken: 'eyJ2ZXJzaW9uIjoiMjAxOS0xMC0xMCJ9',
};

describe('accepted answers', () => {
  it('CreateKeysAndCertificate accepts the AWS shape', () => {
    expect(checkSchema(CreateKeysAndCertificateResponseSchema, keysAccepted)).toEqual({
      ok: true,
      value: keysAccepted,
    });
  });

  it('CreateCertificateFromCsr accepts the AWS shape and drops unknown fields', () => {
    const { privateKey: _omit, ...csrAccepted } = keysAccepted;
    const result = checkSchema(CreateCertificateFromCsrResponseSchema, { ...csrAccepted, extra: 1 });
    expect(result).toEqual({ ok: true, value: csrAccepted });
  });

  it('RegisterThing is as lenient as AWS where nothing is at stake: no deviceConfiguration, thingName null', () => {
    expect(checkSchema(RegisterThingResponseSchema, { thingName: 't' })).toEqual({
      ok: true,
      value: { thingName: 't', deviceConfiguration: {} },
    });
    expect(
      checkSchema(RegisterThingResponseSchema, { thingName: null, deviceConfiguration: { a: 'b' } }),
    ).toEqual({
      ok: true,
      value: { deviceConfiguration: { a: 'b' } },
    });
    expect(checkSchema(RegisterThingResponseSchema, {})).toEqual({
      ok: true,
      value: { deviceConfiguration: {} },
    });
    expect(checkSchema(RegisterThingResponseSchema, { thingName: 7 }).ok).toBe(false);
  });

  it('RegisterThing accepts an answer with and without thingName', () => {
    const withThing = { deviceConfiguration: { Fallback: 'v1', Url: 'https://x' }, thingName: 'sensor-1' };
    expect(checkSchema(RegisterThingResponseSchema, withThing)).toEqual({ ok: true, value: withThing });
    expect(checkSchema(RegisterThingResponseSchema, { deviceConfiguration: {} })).toEqual({
      ok: true,
      value: { deviceConfiguration: {} },
    });
  });

  it('ErrorResponse accepts the AWS shape', () => {
    const rejected = { statusCode: 400, errorCode: 'InvalidPayload', errorMessage: 'bad' };
    expect(checkSchema(ErrorResponseSchema, rejected)).toEqual({ ok: true, value: rejected });
  });
});

describe('wrong shapes name paths, never values', () => {
  it.each([
    ['a missing field', { ...keysAccepted, certificatePem: undefined }, 'certificatePem', 'expected string'],
    ['a number for a string', { ...keysAccepted, certificateId: 12 }, 'certificateId', 'expected string'],
    ['an empty id', { ...keysAccepted, certificateId: '' }, 'certificateId', 'too small'],
    ['an array', [], '(root)', 'expected object'],
    ['null', null, '(root)', 'expected object'],
  ])('CreateKeysAndCertificate: %s', (_label, payload, path, problem) => {
    const result = checkSchema(CreateKeysAndCertificateResponseSchema, payload);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues).toContainEqual({ path, problem });
    expect(JSON.stringify(result.issues)).not.toContain('BEGIN');
  });

  it('RegisterThing: a nested object in deviceConfiguration', () => {
    const result = checkSchema(RegisterThingResponseSchema, {
      deviceConfiguration: { ok: 'x', nested: { secret: 'hunter2-value' } },
    });
    expect(result).toEqual({
      ok: false,
      issues: [{ path: 'deviceConfiguration.nested', problem: 'expected string' }],
    });
    expect(JSON.stringify(result)).not.toContain('hunter2');
  });

  it('ErrorResponse: a non-integer statusCode', () => {
    const result = checkSchema(ErrorResponseSchema, { statusCode: 4.5, errorCode: 'X', errorMessage: 'y' });
    expect(result.ok).toBe(false);
  });
});

describe('requests', () => {
  it('CreateKeysAndCertificate is an empty object', () => {
    expect(checkSchema(operations.CreateKeysAndCertificate.requestSchema, {})).toEqual({
      ok: true,
      value: {},
    });
  });

  it('CreateCertificateFromCsr needs a CSR', () => {
    expect(checkSchema(operations.CreateCertificateFromCsr.requestSchema, {}).ok).toBe(false);
    expect(
      checkSchema(operations.CreateCertificateFromCsr.requestSchema, { certificateSigningRequest: 'x' }).ok,
    ).toBe(true);
  });

  it('RegisterThing needs a token and flat string parameters', () => {
    expect(checkSchema(RegisterThingRequestPayloadSchema, { certificateOwnershipToken: 't' }).ok).toBe(true);
    expect(
      checkSchema(RegisterThingRequestPayloadSchema, {
        certificateOwnershipToken: 't',
        parameters: { SerialNumber: 'SN-1' },
      }).ok,
    ).toBe(true);
    expect(
      checkSchema(RegisterThingRequestPayloadSchema, {
        certificateOwnershipToken: 't',
        parameters: { n: 1 },
      }),
    ).toEqual({ ok: false, issues: [{ path: 'parameters.n', problem: 'expected string' }] });
  });

  it('an empty request is checked once per operation and format, and its bytes are shared', async () => {
    await loadCodec('cbor');
    const json = encodeRequest('CreateKeysAndCertificate', {}, 'json');
    expect(json.toString()).toBe('{}');
    expect(encodeRequest('CreateKeysAndCertificate', {}, 'json')).toBe(json);
    expect(decodePayload(encodeRequest('CreateKeysAndCertificate', {}, 'cbor'), 'cbor')).toEqual({
      ok: true,
      value: {},
    });
    // An empty request that its operation refuses is refused every time, never cached.
    for (let i = 0; i < 2; i++) {
      expect(() => encodeRequest('RegisterThing', {}, 'json')).toThrow(/certificateOwnershipToken/);
    }
    // Only a plain empty object takes the shortcut.
    expect(() => encodeRequest('CreateKeysAndCertificate', [], 'json')).toThrow(/Invalid/);
  });
});
