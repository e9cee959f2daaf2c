/**
 * Keep the device's private key on the device: only a certificate signing request (CSR) crosses the
 * network, and AWS signs it with CreateCertificateFromCsr. Two ways: let provision() make the key, or
 * hand it a CSR from a key that never leaves your secure element or HSM. In your project, import from
 * 'iot-fleet-provisioning'.
 */
import { createCsr, generateKeyPair, type ProvisionedDevice, provision } from '../src/index.js';
import type { Claim } from './claim.js';

/** The key is made here (EC P-384), written to `outDir` with mode 0600, and never sent anywhere. */
export async function keyMadeByProvision(claim: Claim, outDir: string): Promise<ProvisionedDevice> {
  return provision({
    ...claim,
    templateName: 'FactoryTemplate',
    parameters: { SerialNumber: 'SN-0042' },
    keys: { generate: 'ec-p384' }, // or 'generate' for EC P-256; 'rsa-2048' and 'rsa-3072' work too
    csrSubject: 'CN=SN-0042, O=Acme', // AWS IoT sets its own subject in the certificate anyway
    outDir,
  });
}

/**
 * Stands in for your secure element: it makes a key pair it never exports, and signs a CSR with it.
 * With a real HSM this is a call to its SDK (PKCS#11, a TPM, an ATECC608, …).
 */
async function secureElementCsr(subject: string): Promise<string> {
  const pair = await generateKeyPair('ec-p256');
  return createCsr({ keys: pair.keys, subject });
}

/** Your CSR, your key: provision() sends the CSR, checks the certificate against it, never sees a key. */
export async function keyInSecureElement(claim: Claim, outDir: string): Promise<ProvisionedDevice> {
  const csr = await secureElementCsr('CN=SN-0043');
  const device = await provision({
    ...claim,
    templateName: 'FactoryTemplate',
    parameters: { SerialNumber: 'SN-0043' },
    keys: { csr },
    outDir, // certificate.pem.crt and device.json; there is no private.pem.key to write
  });
  // device.privateKey and device.files.privateKey are undefined: the key is where it always was.
  return device;
}

/** Both, one after the other. */
export async function main(claim: Claim, outDirs: { made: string; secureElement: string }) {
  return {
    made: await keyMadeByProvision(claim, outDirs.made),
    secureElement: await keyInSecureElement(claim, outDirs.secureElement),
  };
}
