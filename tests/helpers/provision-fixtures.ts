import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from '@jest/globals';
import type { ProvisionOptions } from '../../src/provision/types.js';
import {
  DEFAULT_TEMPLATES,
  type Simulator,
  type SimulatorOptions,
  startSimulator,
} from '../../src/simulator/index.js';

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

/** The simulator's DemoTemplate with a device configuration, as the provisioning tests expect it. */
export const FACTORY_TEMPLATE = {
  ...DEFAULT_TEMPLATES.DemoTemplate,
  deviceConfiguration: { Fleet: 'factory' },
};

/** A fresh temporary directory, and a way to remove it. */
export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** The certificate's public key as SPKI DER, to compare keys. */
export function publicKeyOf(certificatePem: string): Buffer {
  return new X509Certificate(certificatePem).publicKey.export({ type: 'spki', format: 'der' });
}

/**
 * One simulator for a test file: started before its tests (and handed to `started`), closed after them.
 * After each test its faults are cleared and every cleanup the test pushed runs, in order. `outDir()` is
 * a credentials path inside a fresh temporary directory (named from `tempPrefix`) removed with them.
 */
export function simulatorForFile(
  tempPrefix: string,
  options: SimulatorOptions,
  started: (sim: Simulator) => void,
): { cleanups: Array<() => Promise<void>>; outDir(): Promise<string> } {
  let sim: Simulator | undefined;
  const cleanups: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    sim = await startSimulator(options);
    started(sim);
  });
  afterAll(async () => {
    await sim?.close();
  });
  afterEach(async () => {
    sim?.faults.clear();
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });
  return {
    cleanups,
    outDir: async () => {
      const dir = await tempDir(tempPrefix);
      cleanups.push(dir.remove);
      return join(dir.path, 'credentials');
    },
  };
}
