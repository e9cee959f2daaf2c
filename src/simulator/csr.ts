/**
 * Checking a certificate signing request as CreateCertificateFromCsr does. The rules (it parses, its
 * signature verifies with its own key, the key is RSA of 2048 bits or more or EC P-256, P-384 or P-521)
 * are the library's own, in device/keys.ts; this turns a refusal into the reason the service gives.
 */
import { checkCsr as checkCsrRules } from '../device/keys.js';
import * as x509 from '../device/x509.js';
import { FleetProvisioningError } from '../protocol/errors.js';

/** The outcome of {@link checkCsr}: the request to certify, or why it is refused (no key material in it). */
export type CsrCheck = { ok: true; csr: x509.Pkcs10CertificateRequest } | { ok: false; reason: string };

/** Parse and check a PEM CSR. Never throws. */
export async function checkCsr(pem: string): Promise<CsrCheck> {
  try {
    await checkCsrRules(pem);
    return { ok: true, csr: new x509.Pkcs10CertificateRequest(pem) };
  } catch (error) {
    // The library's messages say what is wrong and never echo the CSR.
    const reason = error instanceof FleetProvisioningError ? error.message : 'The CSR cannot be checked.';
    return { ok: false, reason };
  }
}
