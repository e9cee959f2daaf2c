/**
 * "Already provisioned?", decided one way for the library and the CLI: a credentials directory holds a
 * complete set (certificate, device.json, and the key when the set has one, matching the certificate)
 * made for the same endpoint, template and template parameters.
 */
import { createHash } from 'node:crypto';
import { optional } from '../internal/optional.js';
import { readCurrentCredentials } from './credentials.js';
import { certificateMatchesCsr, certificateMatchesPrivateKey } from './keys.js';

/** What a new provisioning would be for: compared with what a stored set was made for. */
export interface SetIdentity {
  /** The endpoint as a URL (`mqtts://host:8883`), or `''` with a handed-in client. */
  endpoint: string;
  /** The provisioning template. */
  templateName: string;
  /** The template parameters. */
  parameters: Record<string, string> | undefined;
  /** The caller's CSR, when the key stays with the caller: the certificate must certify it. */
  csr?: string;
}

/** What {@link inspectExistingSet} found. */
export type ExistingSet =
  | {
      /** Nothing provisioned there. */
      kind: 'none';
    }
  | {
      /** A complete set made for the same endpoint, template and parameters. */
      kind: 'match';
      /** Its certificate, PEM. */
      certificatePem: string;
      /** Its key, PEM, when the set has one. */
      privateKeyPem?: string;
      /** The thing, when there is one. */
      thingName?: string;
      /** Its certificate id. */
      certificateId: string;
      /** RegisterThing's `deviceConfiguration`, as recorded. */
      deviceConfiguration: Record<string, string>;
    }
  | {
      /** A set that is incomplete or made for something else. */
      kind: 'differs';
      /** What differs, one phrase each (never a secret). */
      differences: string[];
    };

/** SHA-256 (hex) of template parameters, independent of key order: what device.json records. */
export function parametersDigest(parameters: Record<string, string> | undefined): string {
  const entries = Object.entries(parameters ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256').update(JSON.stringify(entries)).digest('hex');
}

/**
 * Look at the set the final paths of `outDir` show, and compare it with `want`.
 * @throws {PersistFailedError} when the files exist but cannot be read.
 */
export async function inspectExistingSet(outDir: string, want: SetIdentity): Promise<ExistingSet> {
  const { certificatePem, privateKeyPem, device } = await readCurrentCredentials(outDir);
  if (device === undefined && certificatePem === undefined && privateKeyPem === undefined) {
    return { kind: 'none' };
  }
  const differences: string[] = [];
  if (device === undefined) differences.push('device.json is missing');
  else if (device === null) differences.push('device.json is not valid');
  if (certificatePem === undefined) differences.push('the certificate is missing');
  if (device !== undefined && device !== null) {
    if (device.endpoint !== want.endpoint) {
      differences.push(
        `it was made for endpoint ${device.endpoint || '(a handed-in client)'}, not ${want.endpoint || '(a handed-in client)'}`,
      );
    }
    if (device.templateName !== want.templateName) {
      differences.push(`it was made with template ${device.templateName}, not ${want.templateName}`);
    }
    if (device.parametersSha256 === undefined) {
      differences.push('it does not record its template parameters');
    } else if (device.parametersSha256 !== parametersDigest(want.parameters)) {
      differences.push('it was made with other template parameters');
    }
  }
  if (certificatePem !== undefined) {
    if (want.csr !== undefined) {
      if (!(await certificateMatchesCsr(certificatePem, want.csr).catch(() => false))) {
        differences.push("its certificate does not certify the CSR's key");
      }
    } else if (privateKeyPem === undefined) {
      differences.push('the private key is missing');
    } else if (!safeMatch(certificatePem, privateKeyPem)) {
      differences.push('the private key does not match the certificate');
    }
  }
  if (differences.length > 0 || device === undefined || device === null || certificatePem === undefined) {
    return { kind: 'differs', differences };
  }
  return {
    kind: 'match',
    certificatePem,
    ...(privateKeyPem === undefined || want.csr !== undefined ? {} : { privateKeyPem }),
    ...optional('thingName', device.thingName),
    certificateId: device.certificateId,
    deviceConfiguration: device.deviceConfiguration,
  };
}

function safeMatch(certificatePem: string, privateKeyPem: string): boolean {
  try {
    return certificateMatchesPrivateKey(certificatePem, privateKeyPem);
  } catch {
    return false;
  }
}
