/**
 * How provision() reads a failure: is it this code, may the RegisterThing it ended still have run in the
 * service, and a sentence added to its message that says what to do next.
 */
import { FleetProvisioningError, RejectedError, TimeoutError } from '../protocol/errors.js';

/** True when `error` is a FleetProvisioningError with this code. */
export function isCode(error: unknown, code: string): boolean {
  return error instanceof FleetProvisioningError && error.code === code;
}

/**
 * True when a RegisterThing that failed this way may still have run in the service: the request may have
 * gone out and its answer was lost, cut off, unreadable or a server error.
 */
export function mayHaveRun(error: unknown): boolean {
  if (!(error instanceof FleetProvisioningError)) return true;
  if (error instanceof TimeoutError) return error.phase === 'publish' || error.phase === 'response';
  if (error instanceof RejectedError) return error.statusCode >= 500;
  return ['CONNECTION_LOST', 'ABORTED', 'INVALID_RESPONSE', 'PUBLISH_FAILED', 'CLIENT_CLOSED'].includes(
    error.code,
  );
}

/** Add a sentence to an error's message (never a secret: ids and paths only). */
export function withNote(error: unknown, note: string): unknown {
  if (error instanceof Error) error.message = `${error.message} ${note}`;
  return error;
}
