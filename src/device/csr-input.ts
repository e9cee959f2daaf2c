/**
 * A CSR a caller handed in, checked before anything is sent, with the key rules of keys.ts.
 */
import { InvalidArgumentError } from '../protocol/errors.js';
import { type CsrSummary, checkCsr } from './keys.js';

/**
 * Check a caller's CSR before anything is sent: it parses, its signature verifies, its key is one AWS
 * IoT signs. Resolves with what it found.
 * @throws {InvalidArgumentError} saying what is wrong (never echoing the CSR).
 */
export function assertCsr(value: unknown): Promise<CsrSummary> {
  if (typeof value !== 'string') {
    return Promise.reject(
      new InvalidArgumentError(
        'certificateSigningRequest must be a PEM-encoded PKCS #10 certificate signing request.',
      ),
    );
  }
  return checkCsr(value);
}
