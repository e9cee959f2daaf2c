import { beforeAll, describe, expect, it } from '@jest/globals';
import { encode as cborEncode } from 'cborg';
import {
  decodePayload,
  encodePayload,
  loadCodec,
  MAX_PAYLOAD_BYTES,
  readPayload,
} from '../../src/protocol/payload.js';
import { CreateKeysAndCertificateResponseSchema } from '../../src/protocol/schemas.js';

// First in this file: the codec is loaded once per module registry, and these run before anything loads it.
describe('the CBOR codec loads on demand', () => {
  it('is not loaded until asked for, and a CBOR use before that is a clear error, not a malformed payload', async () => {
    expect(loadCodec('json')).toBeUndefined();
    expect(() => encodePayload({}, 'cbor')).toThrow(/loadCodec/);
    expect(() => decodePayload(Buffer.of(0xa0), 'cbor')).toThrow(/loadCodec/);
    const loading = loadCodec('cbor');
    expect(loading).toBeInstanceOf(Promise);
    expect(loadCodec('cbor')).toBe(loading);
    await loading;
    expect(loadCodec('cbor')).toBeUndefined();
    expect([...encodePayload({}, 'cbor')]).toEqual([0xa0]);
  });
});

describe('codecs', () => {
  beforeAll(async () => {
    await loadCodec('cbor');
  });

  it('encodes CreateKeysAndCertificate as {} in JSON and 0xa0 in CBOR', () => {
    expect(encodePayload({}, 'json').toString()).toBe('{}');
    expect([...encodePayload({}, 'cbor')]).toEqual([0xa0]);
  });

  it.each(['json', 'cbor'] as const)('round-trips a payload in %s', (format) => {
    const value = { certificateOwnershipToken: 'tok', parameters: { SerialNumber: 'SN-1', ü: 'ß' } };
    expect(decodePayload(encodePayload(value, format), format)).toEqual({ ok: true, value });
  });

  it('refuses a payload one byte over the cap without decoding it', () => {
    const big = Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x20);
    expect(decodePayload(big, 'json')).toEqual({ ok: false, reason: 'too-large' });
    expect(decodePayload(big, 'cbor')).toEqual({ ok: false, reason: 'too-large' });
  });

  it('decodes a payload exactly at the cap', () => {
    const text = JSON.stringify({ v: 'x'.repeat(MAX_PAYLOAD_BYTES - 8) });
    expect(Buffer.byteLength(text)).toBe(MAX_PAYLOAD_BYTES);
    expect(decodePayload(Buffer.from(text), 'json').ok).toBe(true);
  });

  it.each([
    ['truncated JSON', Buffer.from('{"a":'), 'json'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]), 'json'],
    ['empty JSON', Buffer.alloc(0), 'json'],
    ['a CBOR break with no start', Buffer.from([0xff]), 'cbor'],
    [
      'CBOR with trailing bytes',
      Buffer.concat([Buffer.from(cborEncode({ a: 1 })), Buffer.from([0x01])]),
      'cbor',
    ],
    ['CBOR with an unknown tag', Buffer.from([0xd9, 0x12, 0x34, 0x01]), 'cbor'],
    ['truncated CBOR', Buffer.from(cborEncode({ a: 'hello' })).subarray(0, 4), 'cbor'],
  ] as const)('reports %s as malformed', (_label, bytes, format) => {
    expect(decodePayload(bytes, format)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('readPayload names the problem for each failure kind', () => {
    const schema = CreateKeysAndCertificateResponseSchema;
    expect(readPayload(schema, Buffer.alloc(MAX_PAYLOAD_BYTES + 1), 'json')).toEqual({
      ok: false,
      issues: [
        { path: '(root)', problem: `larger than ${MAX_PAYLOAD_BYTES} bytes (${MAX_PAYLOAD_BYTES + 1})` },
      ],
    });
    expect(readPayload(schema, Buffer.from('nope'), 'json')).toEqual({
      ok: false,
      issues: [{ path: '(root)', problem: 'malformed json' }],
    });
    expect(readPayload(schema, encodePayload({ certificateId: 1 }, 'cbor'), 'cbor')).toMatchObject({
      ok: false,
      issues: expect.arrayContaining([{ path: 'certificateId', problem: 'expected string' }]),
    });
  });
});
