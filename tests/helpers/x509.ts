/**
 * A tiny certificate authority for tests: real X.509 certificates, signed with a real key, so that
 * the key/certificate/CSR checks run against what a CA actually issues.
 */
import { createHash, createPublicKey, type KeyObject, webcrypto } from 'node:crypto';
import * as x509 from '../../src/device/x509.js';

/** A self-signed CA. */
export interface TestCa {
  readonly keys: webcrypto.CryptoKeyPair;
  readonly certificate: x509.X509Certificate;
  readonly certificatePem: string;
  readonly name: string;
}

const SIGNING: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

/** Make a self-signed EC P-256 CA valid from yesterday for a year. */
export async function makeCa(name = 'CN=Test CA'): Promise<TestCa> {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ]);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name,
      keys,
      signingAlgorithm: SIGNING,
      notBefore: new Date(Date.now() - 86_400_000),
      notAfter: new Date(Date.now() + 365 * 86_400_000),
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    },
    webcrypto,
  );
  return { keys, certificate, certificatePem: certificate.toString('pem'), name };
}

/**
 * Issue a leaf certificate from `ca` for `publicKey`: a WebCrypto key, a KeyObject, or PEM text
 * (`PUBLIC KEY`, a private key, or a certificate request, whose public key is used).
 */
export async function issueCertificate(
  ca: TestCa,
  publicKey: webcrypto.CryptoKey | KeyObject | string,
  subject = 'CN=AWS IoT Certificate',
): Promise<string> {
  const certificate = await x509.X509CertificateGenerator.create(
    {
      subject,
      issuer: ca.name,
      publicKey: await toSpki(publicKey),
      signingKey: ca.keys.privateKey,
      signingAlgorithm: SIGNING,
      notBefore: new Date(Date.now() - 86_400_000),
      notAfter: new Date(Date.now() + 365 * 86_400_000),
    },
    webcrypto,
  );
  return certificate.toString('pem');
}

async function toSpki(
  key: webcrypto.CryptoKey | KeyObject | string,
): Promise<Uint8Array | webcrypto.CryptoKey> {
  if (typeof key === 'string') {
    if (key.includes('CERTIFICATE REQUEST')) {
      return new Uint8Array(new x509.Pkcs10CertificateRequest(key).publicKey.rawData);
    }
    return createPublicKey(key).export({ type: 'spki', format: 'der' });
  }
  if ('export' in key) return createPublicKey(key).export({ type: 'spki', format: 'der' });
  return key;
}

/** The id AWS IoT gives a certificate: the lowercase hex SHA-256 of its DER. */
export function certificateIdOf(certificatePem: string): string {
  return createHash('sha256')
    .update(new Uint8Array(new x509.X509Certificate(certificatePem).rawData))
    .digest('hex');
}
