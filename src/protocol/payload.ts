/**
 * Payloads in the service's two formats, from bytes to typed values: the codecs, then a schema.
 * Decoding refuses anything over the size cap before it looks at a byte, and returns `unknown`: only a
 * schema turns wire data into a type. Failures carry paths and kinds of problem, never the offending
 * values.
 */
import type { z } from 'zod/mini';
import type { ResponseIssue } from './errors.js';
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

/** The CBOR codec (cborg), loaded on first use: JSON users never load it. */
let cbor: { encode(value: unknown): Uint8Array; decode(bytes: Uint8Array): unknown } | undefined;
let cborLoading: Promise<void> | undefined;

/**
 * Make sure the codec of `format` is loaded: undefined when it already is (always for JSON), otherwise a
 * promise to await before the first encode or decode in that format. cborg is 18 modules, about 10 ms of
 * the package's `import` (docs/performance.md), so it is loaded only by a client, stream or simulator
 * that speaks CBOR; each of them awaits this before its first request, subscription or start.
 * @internal
 */
export function loadCodec(format: PayloadFormat): Promise<void> | undefined {
  if (format !== 'cbor' || cbor !== undefined) return undefined;
  cborLoading ??= import('cborg').then((module) => {
    cbor = { encode: module.encode, decode: module.decode };
  });
  return cborLoading;
}

function cborCodec(): NonNullable<typeof cbor> {
  if (cbor === undefined) throw new Error('The CBOR codec is not loaded: await loadCodec("cbor") first.');
  return cbor;
}

/**
 * Encode a request payload in `format`.
 * @internal
 */
export function encodePayload(value: unknown, format: PayloadFormat): Buffer {
  if (format === 'cbor') return Buffer.from(cborCodec().encode(value));
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/**
 * Decode a payload received in `format` (CBOR once {@link loadCodec} has loaded it). Never throws for what
 * the bytes hold: a payload over {@link MAX_PAYLOAD_BYTES}, bytes that are not valid UTF-8 JSON, or CBOR
 * that does not parse (or carries unknown tags or trailing bytes) come back as a failure.
 * @internal
 */
export function decodePayload(bytes: Uint8Array, format: PayloadFormat): DecodeResult {
  if (bytes.byteLength > MAX_PAYLOAD_BYTES) return { ok: false, reason: 'too-large' };
  // Outside the try: a codec not loaded is this library's mistake, not a malformed payload.
  const codec = format === 'cbor' ? cborCodec() : undefined;
  try {
    const value: unknown = codec !== undefined ? codec.decode(bytes) : JSON.parse(utf8.decode(bytes));
    return { ok: true, value };
  } catch {
    return { ok: false, reason: 'malformed' };
  }
}

/** The outcome of reading a payload against a schema. */
export type ReadResult<T> = { ok: true; value: T } | { ok: false; issues: ResponseIssue[] };

/** Check `value` against `schema`; on failure, name the paths and the kind of each problem. */
export function checkSchema<T>(schema: z.ZodMiniType<T>, value: unknown): ReadResult<T> {
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, issues: result.error.issues.map(describeIssue) };
}

/** Decode `bytes` in `format` and check the result against `schema`. */
export function readPayload<T>(
  schema: z.ZodMiniType<T>,
  bytes: Uint8Array,
  format: PayloadFormat,
): ReadResult<T> {
  const decoded: DecodeResult = decodePayload(bytes, format);
  if (!decoded.ok) {
    const problem =
      decoded.reason === 'too-large'
        ? `larger than ${MAX_PAYLOAD_BYTES} bytes (${bytes.byteLength})`
        : `malformed ${format}`;
    return { ok: false, issues: [{ path: '(root)', problem }] };
  }
  return checkSchema(schema, decoded.value);
}

interface IssueLike {
  readonly code: string;
  readonly path: readonly PropertyKey[];
  readonly expected?: unknown;
}

function describeIssue(issue: IssueLike): ResponseIssue {
  const path = issue.path.length === 0 ? '(root)' : issue.path.map(String).join('.');
  const problem =
    issue.code === 'invalid_type' && typeof issue.expected === 'string'
      ? `expected ${issue.expected}`
      : issue.code.replaceAll('_', ' ');
  return { path, problem };
}
