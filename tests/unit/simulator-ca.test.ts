import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { certificateHoldsPublicKey } from '../../src/device/keys.js';
import { certificateIdOfPem, createCertificateAuthority, issueCertificate } from '../../src/simulator/ca.js';

describe("the simulator CA's device certificates", () => {
  it('each carries its own key and serial number, verifies against the CA, and keeps subject, usage and validity', async () => {
    const ca = await createCertificateAuthority();
    const caCertificate = new X509Certificate(ca.certificatePem);
    const serials = new Set<string>();
    for (const curve of ['prime256v1', 'prime256v1', 'secp384r1']) {
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      const spki = publicKey.export({ type: 'spki', format: 'der' });
      const issued = await issueCertificate(ca, {
        publicKey: spki,
        subject: 'CN=AWS IoT Certificate',
        usage: 'client',
      });
      const certificate = new X509Certificate(issued.certificatePem);
      expect(certificate.verify(caCertificate.publicKey)).toBe(true);
      expect(certificate.checkIssued(caCertificate)).toBe(true);
      expect(certificateHoldsPublicKey(issued.certificatePem, spki)).toBe(true);
      expect(certificate.subject).toBe('CN=AWS IoT Certificate');
      expect(certificate.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
      expect(new Date(certificate.validTo).toISOString()).toBe('2049-12-31T23:59:59.000Z');
      expect(certificateIdOfPem(issued.certificatePem)).toBe(issued.certificateId);
      serials.add(certificate.serialNumber);
    }
    expect(serials.size).toBe(3);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const issued = await issueCertificate(ca, {
      publicKey: rsa.export({ type: 'spki', format: 'der' }),
      subject: 'CN=AWS IoT Certificate',
      usage: 'client',
    });
    expect(new X509Certificate(issued.certificatePem).verify(caCertificate.publicKey)).toBe(true);
  });
});
