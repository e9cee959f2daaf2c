import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProvisionOptions } from '../../src/provision/types.js';
import type { Simulator } from '../../src/simulator/index.js';

/** The options that point provision() at `sim` with its claim credentials. */
export function claimOptions(
  sim: Simulator,
): Pick<ProvisionOptions, 'endpoint' | 'claimCertificate' | 'claimPrivateKey' | 'caCertificate'> {
  return {
    endpoint: sim.url,
    claimCertificate: sim.claimCertificate,
    claimPrivateKey: sim.claimPrivateKey,
    caCertificate: sim.caCertificate,
  };
}

/** A fresh temporary directory, and a way to remove it. */
export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** The certificate's public key as SPKI DER, to compare keys. */
export function publicKeyOf(certificatePem: string): Buffer {
  return new X509Certificate(certificatePem).publicKey.export({ type: 'spki', format: 'der' });
}
