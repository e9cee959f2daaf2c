/**
 * What a credentials directory holds, checked: the thing, the certificate (id, issuer, expiry), the key
 * (type, whether it matches), the file modes, and every problem found, one phrase each. Read-only; never
 * reads out a secret (the key is parsed, never printed).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { credentialFiles, readCurrentCredentials } from '../device/credentials.js';
import { certificateMatchesPrivateKey } from '../device/keys.js';
import { hasUnfinishedSets } from '../device/unfinished-sets.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** The mode a file of the set must not exceed: no one else may read the key or write anything. */
const MODE_RULES = {
  directory: { forbidden: 0o077, shown: '0700' },
  certificate: { forbidden: 0o022, shown: '0644' },
  privateKey: { forbidden: 0o077, shown: '0600' },
  deviceJson: { forbidden: 0o022, shown: '0644' },
} as const;

/** The status of one credentials directory. */
export interface SetStatus {
  directory: string;
  thingName?: string;
  /** The certificate's id (SHA-256 of its DER), computed from the file. */
  certificateId?: string;
  issuer?: string;
  /** ISO 8601. */
  notAfter?: string;
  /** Whole days until `notAfter` (negative once expired). */
  daysLeft?: number;
  /** Milliseconds until `notAfter`. */
  expiresInMs?: number;
  /** `ec-p256`, `ec-p384`, `rsa-2048`, …; absent without a key. */
  keyType?: string;
  keyMatchesCertificate?: boolean;
  /** Each file's mode, octal (`0600`); absent when the file is. */
  modes: { directory?: string; certificate?: string; privateKey?: string; deviceJson?: string };
  /** True when no file is more open than it should be. */
  modesOk: boolean;
  /** A run left a staged set here that the next provision/rotate finishes or reports. */
  unfinished: boolean;
  /** Everything wrong, one phrase each; empty when the set is fine. */
  problems: string[];
}

/** Inspect `dir`. Never throws for what it finds; every finding is a problem phrase. */
export async function readSetStatus(dir: string, now = Date.now()): Promise<SetStatus> {
  const directory = resolve(dir);
  const problems: string[] = [];
  const modes: SetStatus['modes'] = {};
  let modesOk = true;
  const check = async (name: keyof typeof MODE_RULES, path: string) => {
    const mode = await stat(path).then(
      (s) => s.mode & 0o777,
      () => undefined,
    );
    if (mode === undefined) return;
    const shown = `0${mode.toString(8).padStart(3, '0')}`;
    modes[name] = shown;
    const rule = MODE_RULES[name];
    if ((mode & rule.forbidden) !== 0) {
      modesOk = false;
      problems.push(
        `${name === 'directory' ? 'the directory' : path} is mode ${shown}, should be ${rule.shown}`,
      );
    }
  };
  await check('directory', directory);
  if (modes.directory === undefined) {
    return { directory, modes, modesOk: true, unfinished: false, problems: [`${directory} does not exist`] };
  }
  const status: SetStatus = { directory, modes, modesOk, unfinished: false, problems };
  let current: Awaited<ReturnType<typeof readCurrentCredentials>>;
  try {
    current = await readCurrentCredentials(directory);
  } catch (error) {
    problems.push(error instanceof Error ? error.message : String(error));
    return status;
  }
  const files = credentialFiles(directory, true);
  await check('certificate', files.certificate);
  await check('privateKey', files.privateKey ?? '');
  await check('deviceJson', files.deviceJson);
  status.modesOk = modesOk;
  status.unfinished = await hasUnfinishedSets(directory);

  const { device, certificatePem, privateKeyPem } = current;
  if (device === undefined) problems.push('device.json is missing');
  else if (device === null) problems.push('device.json is not valid');
  else if (device.thingName !== undefined) status.thingName = device.thingName;

  if (certificatePem === undefined) {
    problems.push('the certificate is missing');
  } else {
    try {
      const certificate = new X509Certificate(certificatePem);
      status.certificateId = certificate.fingerprint256.replaceAll(':', '').toLowerCase();
      status.issuer = certificate.issuer.replaceAll('\n', ', ');
      const notAfter = new Date(certificate.validTo);
      status.notAfter = notAfter.toISOString();
      status.expiresInMs = notAfter.getTime() - now;
      status.daysLeft = Math.floor(status.expiresInMs / DAY_MS);
      if (status.expiresInMs <= 0) problems.push(`the certificate expired on ${status.notAfter}`);
      if (device !== undefined && device !== null && device.certificateId !== status.certificateId) {
        problems.push(
          `device.json names certificate ${device.certificateId}, but the certificate file is ${status.certificateId}`,
        );
      }
    } catch {
      problems.push('the certificate is not a readable X.509 certificate');
    }
  }

  if (privateKeyPem === undefined) {
    problems.push('the private key is missing');
  } else {
    const type = keyTypeOf(privateKeyPem);
    if (type === undefined) problems.push('the private key is not a readable key');
    else status.keyType = type;
    // An unreadable certificate is already a problem: a key cannot match it either.
    if (certificatePem !== undefined && status.certificateId !== undefined && type !== undefined) {
      status.keyMatchesCertificate = safeMatch(certificatePem, privateKeyPem);
      if (!status.keyMatchesCertificate) problems.push('the private key does not match the certificate');
    }
  }
  return status;
}

function keyTypeOf(privateKeyPem: string): string | undefined {
  try {
    const key = createPrivateKey(privateKeyPem);
    const details = key.asymmetricKeyDetails;
    if (key.asymmetricKeyType === 'ec') {
      const curve = details?.namedCurve;
      if (curve === 'prime256v1') return 'ec-p256';
      if (curve === 'secp384r1') return 'ec-p384';
      if (curve === 'secp521r1') return 'ec-p521';
      return `ec-${curve ?? 'unknown'}`;
    }
    if (key.asymmetricKeyType === 'rsa') return `rsa-${details?.modulusLength ?? 'unknown'}`;
    return key.asymmetricKeyType ?? 'unknown';
  } catch {
    return undefined;
  }
}

function safeMatch(certificatePem: string, privateKeyPem: string): boolean {
  try {
    return certificateMatchesPrivateKey(certificatePem, privateKeyPem);
  } catch {
    return false;
  }
}
