/**
 * A request on its way out: checked against its operation's request schema, then encoded in the
 * connection's format. Both clients send through here, so they refuse the same requests the same way.
 */
import { formatIssues, InvalidArgumentError, type OperationName } from './errors.js';
import { operations } from './operations.js';
import { checkSchema, encodePayload } from './payload.js';
import type { PayloadFormat } from './topics.js';

/**
 * Check `payload` against the request schema of `operation` and encode it in `format`.
 * @throws {InvalidArgumentError} naming each path that is wrong (never the values).
 */
export function encodeRequest(operation: OperationName, payload: unknown, format: PayloadFormat): Buffer {
  if (isEmptyObject(payload)) return emptyRequest(operation, format);
  return checkAndEncode(operation, payload, format);
}

function checkAndEncode(operation: OperationName, payload: unknown, format: PayloadFormat): Buffer {
  const checked = checkSchema<unknown>(operations[operation].requestSchema, payload);
  if (!checked.ok) {
    throw new InvalidArgumentError(`Invalid ${operation} request (${formatIssues(checked.issues)}).`);
  }
  return encodePayload(checked.value, format);
}

/**
 * The empty request of each operation and format (CreateKeysAndCertificate sends nothing else), checked
 * and encoded once: it is on the path of every call. The bytes are shared, so they are never written to.
 */
const emptyRequests = new Map<string, Buffer>();

function emptyRequest(operation: OperationName, format: PayloadFormat): Buffer {
  const key = `${operation}/${format}`;
  let bytes = emptyRequests.get(key);
  if (bytes === undefined) {
    bytes = checkAndEncode(operation, {}, format);
    emptyRequests.set(key, bytes);
  }
  return bytes;
}

function isEmptyObject(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype)
    return false;
  for (const _ in value) return false;
  return true;
}
