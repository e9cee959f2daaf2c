/**
 * Checking a certificate signing request as CreateCertificateFromCsr does: it must parse, its signature
 * must verify with its own key, and that key must be one AWS accepts (RSA of 2048 bits or more, or EC
 * P-256, P-384 or P-521).
 */
import { createPublicKey } from 'node:crypto';
import * as x509 from '../device/x509.js';

/** The outcome of {@link checkCsr}: the request to certify, or why it is refused (no key material in it). */
export type CsrCheck = { ok: true; csr: x509.Pkcs10CertificateRequest } | { ok: false; reason: string };

const ALLOWED_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

/** Parse and check a PEM CSR. Never throws. */
export async function checkCsr(pem: string): Promise<CsrCheck> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch {
    return { ok: false, reason: 'The CSR does not parse as a PEM PKCS#10 request.' };
  }
  const keyProblem = checkKey(csr.publicKey.rawData);
  if (keyProblem !== undefined) return { ok: false, reason: keyProblem };
  let verified = false;
  try {
    verified = await csr.verify();
  } catch {
    verified = false;
  }
  if (!verified) return { ok: false, reason: "The CSR's signature does not verify with its public key." };
  return { ok: true, csr };
}

function checkKey(spki: ArrayBuffer): string | undefined {
  try {
    const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    const details = key.asymmetricKeyDetails ?? {};
    if (key.asymmetricKeyType === 'rsa') {
      return (details.modulusLength ?? 0) >= 2048
        ? undefined
        : `The CSR's RSA key has ${details.modulusLength ?? 0} bits: at least 2048 are required.`;
    }
    if (key.asymmetricKeyType === 'ec') {
      return ALLOWED_CURVES.has(String(details.namedCurve))
        ? undefined
        : `The CSR's EC curve ${String(details.namedCurve)} is not allowed: use P-256, P-384 or P-521.`;
    }
    return `The CSR's ${String(key.asymmetricKeyType)} key is not allowed: use RSA (2048+) or EC P-256/384/521.`;
  } catch {
    return "The CSR's public key does not parse.";
  }
}
