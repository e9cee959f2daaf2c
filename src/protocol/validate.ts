/**
 * Turning wire bytes into typed values: decode (size cap first), then a schema. Failures carry paths and
 * kinds of problem, never the offending values.
 */
import type { z } from 'zod/mini';
import { type DecodeResult, decodePayload, MAX_PAYLOAD_BYTES } from './payload.js';
import type { ResponseIssue } from './errors.js';
import type { PayloadFormat } from './topics.js';

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
