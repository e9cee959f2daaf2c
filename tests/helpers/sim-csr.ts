import { createPrivateKey, webcrypto } from 'node:crypto';
import * as x509 from '../../src/device/x509.js';

/** Key types a test CSR can carry, including ones the service must refuse. */
export type TestKeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-1024';

const ALGORITHMS: Record<TestKeyType, webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams> = {
  'ec-p256': { name: 'ECDSA', namedCurve: 'P-256' },
  'ec-p384': { name: 'ECDSA', namedCurve: 'P-384' },
  'rsa-2048': {
    name: 'RSASSA-PKCS1-v1_5',
    hash: 'SHA-256',
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
  },
  'rsa-1024': {
    name: 'RSASSA-PKCS1-v1_5',
    hash: 'SHA-256',
    modulusLength: 1024,
    publicExponent: new Uint8Array([1, 0, 1]),
  },
};

/** A key pair made on the "device" and a CSR signed with it (test-only: the library's own lives in src/device/keys.ts). */
export async function makeCsr(
  type: TestKeyType = 'ec-p256',
  subject = 'CN=test-device',
): Promise<{ csrPem: string; privateKeyPem: string; publicKeyDer: Buffer }> {
  const algorithm = ALGORITHMS[type];
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const signingAlgorithm = type.startsWith('ec') ? { name: 'ECDSA', hash: 'SHA-256' } : algorithm;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: subject, keys, signingAlgorithm });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const privateKeyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })
    .export({ type: 'pkcs8', format: 'pem' })
    .toString();
  return { csrPem: csr.toString('pem'), privateKeyPem, publicKeyDer: Buffer.from(csr.publicKey.rawData) };
}

/** The same CSR with one bit of its signature flipped: it parses, but does not verify. */
export function tamperSignature(csrPem: string): string {
  const der = Buffer.from(new x509.Pkcs10CertificateRequest(csrPem).rawData);
  const last = der.length - 1;
  der[last] = (der[last] ?? 0) ^ 0x01;
  return new x509.Pkcs10CertificateRequest(der).toString('pem');
}
