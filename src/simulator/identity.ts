/**
 * The simulator's own credentials: its CA, its TLS server certificate (SAN `127.0.0.1` and `localhost`)
 * and the claim certificate it hands to devices. Made at start, or loaded from (and saved to) a directory
 * so a long-running simulator, and the devices it provisioned, keep trusting each other across restarts.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ensurePrivateDirectory,
  persisting,
  syncDirectory,
  writeFileAtomic,
} from '../device/durable-files.js';
import {
  type CertificateAuthority,
  certificateIdOfPem,
  createCertificateAuthority,
  issueKeyPair,
  loadCertificateAuthority,
  type PemPair,
} from './ca.js';

/** Everything the simulator needs to speak mutual TLS and to issue certificates. */
export interface SimulatorIdentity {
  readonly ca: CertificateAuthority;
  readonly server: PemPair;
  readonly claim: PemPair;
  readonly claimCertificateId: string;
}

/** The file names in an identity directory. */
export const IDENTITY_FILES = {
  /** The simulator's CA: devices pass it as `caCertificate` (it plays Amazon Root CA 1). */
  caCertificate: 'ca.pem.crt',
  /** The CA's key, so a restarted simulator keeps issuing from the same CA. */
  caPrivateKey: 'ca.private.pem.key',
  /** The TLS server certificate (SAN `127.0.0.1` and `localhost`). */
  serverCertificate: 'server.pem.crt',
  /** The TLS server certificate's key. */
  serverPrivateKey: 'server.private.pem.key',
  /** The claim certificate devices connect with. */
  claimCertificate: 'claim.pem.crt',
  /** The claim certificate's key. */
  claimPrivateKey: 'claim.private.pem.key',
} as const;

/** Make a fresh identity, or load the one in `dir` (making and saving whatever is missing). */
export async function loadOrCreateIdentity(dir?: string): Promise<SimulatorIdentity> {
  const files = dir === undefined ? undefined : await readIdentityFiles(dir);
  let ca: CertificateAuthority;
  let fresh = false;
  if (files?.caCertificate !== undefined && files.caPrivateKey !== undefined) {
    ca = await loadCertificateAuthority(files.caCertificate, files.caPrivateKey);
  } else {
    ca = await createCertificateAuthority();
    fresh = true;
  }
  const server =
    !fresh && files?.serverCertificate !== undefined && files.serverPrivateKey !== undefined
      ? { certificatePem: files.serverCertificate, privateKeyPem: files.serverPrivateKey }
      : await issueKeyPair(ca, {
          subject: 'CN=localhost, O=iot-fleet-provisioning simulator',
          usage: 'server',
          altNames: { dns: ['localhost'], ip: ['127.0.0.1', '::1'] },
        });
  const claim =
    !fresh && files?.claimCertificate !== undefined && files.claimPrivateKey !== undefined
      ? { certificatePem: files.claimCertificate, privateKeyPem: files.claimPrivateKey }
      : await issueKeyPair(ca, {
          subject: 'CN=Fleet Provisioning claim, O=iot-fleet-provisioning',
          usage: 'client',
        });
  const identity = { ca, server, claim, claimCertificateId: certificateIdOfPem(claim.certificatePem) };
  if (dir !== undefined) await saveIdentity(dir, identity);
  return identity;
}

async function readIdentityFiles(dir: string): Promise<Partial<Record<keyof typeof IDENTITY_FILES, string>>> {
  const out: Partial<Record<keyof typeof IDENTITY_FILES, string>> = {};
  for (const [field, name] of Object.entries(IDENTITY_FILES) as Array<
    [keyof typeof IDENTITY_FILES, string]
  >) {
    try {
      out[field] = await readFile(join(dir, name), 'utf8');
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
  }
  return out;
}

/**
 * Save what changed with the library's durable writer: each file is created fresh under a random name
 * (O_EXCL: never a file or symlink someone planted, even in a shared directory), chmod'ed, fsynced and
 * renamed into place, so a crash never leaves half a key where the next start would read it.
 */
async function saveIdentity(dir: string, identity: SimulatorIdentity): Promise<void> {
  const entries: Array<[string, string, number]> = [
    [IDENTITY_FILES.caCertificate, identity.ca.certificatePem, 0o644],
    [IDENTITY_FILES.caPrivateKey, identity.ca.privateKeyPem, 0o600],
    [IDENTITY_FILES.serverCertificate, identity.server.certificatePem, 0o644],
    [IDENTITY_FILES.serverPrivateKey, identity.server.privateKeyPem, 0o600],
    [IDENTITY_FILES.claimCertificate, identity.claim.certificatePem, 0o644],
    [IDENTITY_FILES.claimPrivateKey, identity.claim.privateKeyPem, 0o600],
  ];
  await persisting('save the simulator identity', dir, async () => {
    await ensurePrivateDirectory(dir);
    let changed = false;
    for (const [name, text, mode] of entries) {
      const existing = await readFile(join(dir, name), 'utf8').catch(() => undefined);
      if (existing === text) continue;
      await writeFileAtomic(dir, name, text, mode);
      changed = true;
    }
    if (changed) await syncDirectory(dir);
  });
}

function isMissing(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === 'ENOENT';
}
