/**
 * Payload codecs for the service's two formats. Decoding refuses anything over the size cap before it
 * looks at a byte, and returns `unknown`: only a schema turns wire data into a type.
 */
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import type { PayloadFormat } from './topics.js';

/** AWS IoT's message size limit: nothing larger on a response topic is a real answer. */
export const MAX_PAYLOAD_BYTES = 128 * 1024;

/** Why a payload could not be decoded. */
export type DecodeFailure = 'too-large' | 'malformed';

/** The outcome of {@link decodePayload}. */
export type DecodeResult =
  | {
      /** Decoded. */
      ok: true;
      /** The decoded value, still unchecked: pass it through a schema. */
      value: unknown;
    }
  | {
      /** Not decoded. */
      ok: false;
      /** Why not. */
      reason: DecodeFailure;
    };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Encode a request payload in `format`. */
export function encodePayload(value: unknown, format: PayloadFormat): Buffer {
  if (format === 'cbor') return Buffer.from(cborEncode(value));
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/**
 * Decode a payload received in `format`. Never throws: a payload over {@link MAX_PAYLOAD_BYTES}, bytes
 * that are not valid UTF-8 JSON, or CBOR that does not parse (or carries unknown tags or trailing bytes)
 * come back as a failure.
 */
export function decodePayload(bytes: Uint8Array, format: PayloadFormat): DecodeResult {
  if (bytes.byteLength > MAX_PAYLOAD_BYTES) return { ok: false, reason: 'too-large' };
  try {
    const value: unknown = format === 'cbor' ? cborDecode(bytes) : JSON.parse(utf8.decode(bytes));
    return { ok: true, value };
  } catch {
    return { ok: false, reason: 'malformed' };
  }
}
