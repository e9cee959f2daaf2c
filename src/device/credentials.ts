/**
 * The one credential file layout: the names of a credentials directory, what `device.json` holds, and
 * reading the set the final paths show. Writing a set is staged-set.ts.
 *
 * Layout of the credentials directory (0700):
 * ```
 * certificate.pem.crt -> .current/certificate.pem.crt    (symlinks, made once, never rewritten)
 * private.pem.key     -> .current/private.pem.key
 * device.json         -> .current/device.json
 * .current            -> .set-<pid>-<random>             (the one pointer that changes)
 * .set-<pid>-<random>/  certificate.pem.crt 0644, private.pem.key 0600, device.json 0644
 * ```
 * At every instant, including after SIGKILL or power loss at any point of a write, the three final paths
 * resolve to the old complete set or the new complete set, never to a mix. A final path whose set has no
 * such file (no key in the CSR flow, or no set yet) reads as "no such file". Readers that may race a
 * writer should resolve `.current` once and read the three files there, as
 * {@link readCurrentCredentials} does.
 * POSIX only: the switch relies on symlinks and on rename() replacing a symlink atomically.
 */
import { readFile, readlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod/mini';
import { optional } from '../internal/optional.js';
import { PersistFailedError } from '../protocol/errors.js';
import { StringMapSchema } from '../protocol/schemas.js';
import { errorCode, persistFailed } from './durable-files.js';

/** The file names of a credentials directory (docs/credentials.md). */
export const CREDENTIAL_FILES = {
  /** The device certificate, mode 0644. */
  certificate: 'certificate.pem.crt',
  /** The device private key, mode 0600 (absent when you supplied the CSR). */
  privateKey: 'private.pem.key',
  /** What was provisioned ({@link DeviceJsonSchema}), mode 0644. */
  deviceJson: 'device.json',
} as const;

/** The pointer the final names resolve through: a symlink to the live set. */
export const CURRENT = '.current';
/** `.set-<pid>-<random>` and `.tmp-<pid>-<random>`: the sets and temp files a writer makes. */
export const OURS = /^\.(set|tmp)-(\d+)-[0-9a-f]+$/;

/** `device.json`: what was provisioned, for the CLI's "already provisioned" check and for people. */
export const DeviceJsonSchema = z.object({
  /** Absent when the template creates no thing. */
  thingName: z.optional(z.string()),
  /** The device certificate's id. */
  certificateId: z.string().check(z.minLength(1)),
  /** RegisterThing's `deviceConfiguration`. */
  deviceConfiguration: StringMapSchema,
  /** The template the device was provisioned with. */
  templateName: z.string(),
  /** The endpoint it was provisioned at, as a URL (`mqtts://host:8883`). */
  endpoint: z.string(),
  /** ISO 8601. */
  provisionedAt: z.string(),
  /**
   * SHA-256 (hex) of the template parameters the set was made with, so that "already provisioned" can
   * tell a set made for another serial number. Absent in sets written by older versions.
   */
  parametersSha256: z.optional(z.string()),
  /** ISO 8601: when rotate() last replaced the certificate (absent until then). */
  rotatedAt: z.optional(z.string()),
  /** The certificate rotate() replaced, to deactivate once the new one is in use. */
  previousCertificateId: z.optional(z.string()),
});
/** The content of `device.json`. */
export type DeviceJson = z.infer<typeof DeviceJsonSchema>;

/** The final paths of a committed set. `privateKey` is absent when the set has no key (CSR flow). */
export interface CredentialFiles {
  /** The credentials directory, absolute. */
  directory: string;
  /** Path of `certificate.pem.crt`. */
  certificate: string;
  /** Path of `private.pem.key`; absent when there is no key (you supplied the CSR). */
  privateKey?: string;
  /** Path of `device.json`. */
  deviceJson: string;
}

/** The final paths of the set in `directory` (absolute), with the key's path when the set has a key. */
export function credentialFiles(directory: string, hasKey: boolean): CredentialFiles {
  const absolute = resolve(directory);
  return {
    directory: absolute,
    certificate: join(absolute, CREDENTIAL_FILES.certificate),
    ...(hasKey ? { privateKey: join(absolute, CREDENTIAL_FILES.privateKey) } : {}),
    deviceJson: join(absolute, CREDENTIAL_FILES.deviceJson),
  };
}

/** The file's text, or undefined when it does not exist. */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return undefined;
    throw error;
  }
}

/** `text` parsed as JSON and checked by `schema`; undefined when it is not valid. */
export function parseJson<T>(schema: z.ZodMiniType<T>, text: string): T | undefined {
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** What the final paths of a credentials directory show now; a missing file is undefined. */
export interface CurrentCredentials {
  /** `certificate.pem.crt`. */
  certificatePem?: string;
  /** `private.pem.key`. */
  privateKeyPem?: string;
  /** `device.json` text, parsed; `null` when present but not a valid device.json. */
  device?: DeviceJson | null;
}

/**
 * Read the set the final paths of `dir` show (resolving `.current` once, so a concurrent switch cannot
 * mix two sets).
 * @throws {PersistFailedError} when a file exists but cannot be read.
 */
export async function readCurrentCredentials(dir: string): Promise<CurrentCredentials> {
  const directory = resolve(dir);
  try {
    const current = await currentSet(directory);
    const base = current === undefined ? directory : join(directory, current);
    const certificatePem = await readOptional(join(base, CREDENTIAL_FILES.certificate));
    const privateKeyPem = await readOptional(join(base, CREDENTIAL_FILES.privateKey));
    const deviceText = await readOptional(join(base, CREDENTIAL_FILES.deviceJson));
    return {
      ...optional('certificatePem', certificatePem),
      ...optional('privateKeyPem', privateKeyPem),
      ...(deviceText === undefined ? {} : { device: parseJson(DeviceJsonSchema, deviceText) ?? null }),
    };
  } catch (error) {
    throw persistFailed('read the existing credentials', directory, error);
  }
}

/**
 * Read `device.json` from a credentials directory.
 * @returns undefined when there is none (never provisioned there).
 * @throws {PersistFailedError} when it exists but cannot be read or is not a device.json.
 */
export async function readDeviceJson(dir: string): Promise<DeviceJson | undefined> {
  const path = join(resolve(dir), CREDENTIAL_FILES.deviceJson);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return undefined;
    throw persistFailed('read device.json', resolve(dir), error);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const parsed = DeviceJsonSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new PersistFailedError(
    `${path} is not a valid device.json. Remove the credentials directory's content or provision again with --force.`,
  );
}

/**
 * The set `.current` points at, or undefined when there is no pointer (or it points at something not
 * ours). Any other failure is thrown: guessing "none" would make the live set look like a leftover.
 */
export async function currentSet(directory: string): Promise<string | undefined> {
  let target: string;
  try {
    target = await readlink(join(directory, CURRENT));
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  return OURS.exec(target)?.[1] === 'set' ? target : undefined;
}
