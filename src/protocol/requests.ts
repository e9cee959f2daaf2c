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
  const checked = checkSchema<unknown>(operations[operation].requestSchema, payload);
  if (!checked.ok) {
    throw new InvalidArgumentError(`Invalid ${operation} request (${formatIssues(checked.issues)}).`);
  }
  return encodePayload(checked.value, format);
}
