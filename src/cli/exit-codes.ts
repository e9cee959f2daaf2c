/**
 * The CLI's exit codes (docs/cli.md), derived from error codes in one table, so that a script can
 * branch on what went wrong without parsing messages.
 */
import { type ErrorCode, FleetProvisioningError } from '../protocol/errors.js';
import { UsageError } from './args.js';

/** Exit codes by meaning. */
export const EXIT = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  rejected: 3,
  timeout: 4,
  connection: 5,
  invalidResponse: 6,
  persist: 7,
} as const;

/** The one table: every library error code and the exit code it ends the CLI with. */
export const EXIT_CODE_BY_ERROR: Readonly<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: EXIT.usage,
  REJECTED: EXIT.rejected,
  TIMEOUT: EXIT.timeout,
  ABORTED: EXIT.timeout,
  CONNECTION_LOST: EXIT.connection,
  SUBSCRIBE_FAILED: EXIT.connection,
  PUBLISH_FAILED: EXIT.connection,
  INVALID_RESPONSE: EXIT.invalidResponse,
  PERSIST_FAILED: EXIT.persist,
  // The CLI never closes a client with calls pending: if it happens, it is a bug.
  CLIENT_CLOSED: EXIT.unexpected,
};

/** System error codes of a socket or TLS handshake that failed: a connect failure, exit 5. */
const CONNECT_FAILURE =
  /^(ECONNREFUSED|ECONNRESET|ECONNABORTED|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|ERR_TLS_.*|ERR_SSL_.*|.*_CERT.*|CERT_.*|UNABLE_TO_.*|DEPTH_ZERO_.*)$/;

/** The exit code for an error: a usage error, a library error by its code, a connect failure, or 1. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return EXIT.usage;
  if (error instanceof FleetProvisioningError) return EXIT_CODE_BY_ERROR[error.code];
  for (let cause = error, depth = 0; cause !== undefined && depth < 5; depth++) {
    const code = typeof cause === 'object' && cause !== null && 'code' in cause ? cause.code : undefined;
    if (typeof code === 'string' && CONNECT_FAILURE.test(code)) return EXIT.connection;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return EXIT.unexpected;
}

/** A short name for what went wrong, for summaries (`REJECTED`, `ECONNREFUSED`, `UNEXPECTED`). */
export function errorLabel(error: unknown): string {
  if (error instanceof FleetProvisioningError) return error.code;
  if (error instanceof UsageError) return 'USAGE';
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  return typeof code === 'string' ? code : 'UNEXPECTED';
}
