/**
 * A simulator in the test process for the CLI's child processes to talk to: its CA and claim credentials
 * written to files, as a user would have them, and the connection flags that name them. The test keeps
 * the simulator object, so it can script faults and read the registry.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Simulator, type SimulatorOptions, startSimulator } from '../../src/simulator/index.js';

/** A running simulator and its credential files. */
export interface CliSimulator {
  sim: Simulator;
  /** A fresh temporary directory for the test's files; removed by close(). */
  dir: string;
  files: { ca: string; claimCert: string; claimKey: string };
  /** `--endpoint … --ca … --claim-cert … --claim-key … --template DemoTemplate`. */
  connectionFlags(): string[];
  close(): Promise<void>;
}

/** Start a simulator (EC P-256 server keys unless told otherwise: fast) and write its files. */
export async function startCliSimulator(options: SimulatorOptions = {}): Promise<CliSimulator> {
  const sim = await startSimulator({ serverKeyType: 'ec-p256', ...options });
  const dir = await mkdtemp(join(tmpdir(), 'fleet-provision-cli-'));
  const files = {
    ca: join(dir, 'ca.pem.crt'),
    claimCert: join(dir, 'claim.pem.crt'),
    claimKey: join(dir, 'claim.private.pem.key'),
  };
  await writeFile(files.ca, sim.caCertificate);
  await writeFile(files.claimCert, sim.claimCertificate);
  await writeFile(files.claimKey, sim.claimPrivateKey, { mode: 0o600 });
  return {
    sim,
    dir,
    files,
    connectionFlags: () => [
      '--endpoint',
      sim.url,
      '--ca',
      files.ca,
      '--claim-cert',
      files.claimCert,
      '--claim-key',
      files.claimKey,
      '--template',
      'DemoTemplate',
    ],
    close: async () => {
      await sim.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
