/**
 * Where the key hits the disk: the device's credentials written so that a crash can never leave a
 * half-written or mixed set at the paths users read.
 *
 * Layout of the credentials directory (0700):
 * ```
 * certificate.pem.crt -> .current/certificate.pem.crt    (symlinks, made once, never rewritten)
 * private.pem.key     -> .current/private.pem.key
 * device.json         -> .current/device.json
 * .current            -> .set-<pid>-<random>             (the one pointer that changes)
 * .set-<pid>-<random>/  certificate.pem.crt 0644, private.pem.key 0600, device.json 0644
 * ```
 * The guarantee: three renames cannot be made atomic together, one can. Each set is written into its own
 * directory (every file created fresh with O_EXCL and an explicit mode, written, fsynced, renamed, then
 * the directory fsynced); the switch from the old set to the new one is a single `rename()` of a
 * symlink over `.current`, followed by an fsync of the directory. So at every instant, including after
 * SIGKILL or power loss at any point, the three final paths resolve to the old complete set or the new
 * complete set, never to a mix. A final path whose set has no such file (no key in the CSR flow, or no set
 * yet) reads as "no such file".
 *
 * Two phases, so that `provision()` can make the key durable before RegisterThing and publish the set
 * only after it: {@link stageCredentials} writes key and certificate into a fresh set directory that
 * nothing points at yet; {@link StagedCredentials.commit} adds `device.json` and switches the pointer;
 * {@link StagedCredentials.discard} drops the set. A write failure during staging is found before
 * RegisterThing is sent.
 *
 * Regular files already sitting at the final names (an older layout, or files put there by hand) are
 * first copied into a set of their own and replaced, one by one, by symlinks that show the same content,
 * so the old set stays visible until the switch.
 *
 * Leftovers: a set or temp file whose name carries the id of a process that is gone (or of this
 * process, when this process did not make it) is removed by the next {@link stageCredentials} in that
 * directory. One writer per directory at a time is expected; a concurrent live writer's files are left
 * alone. Readers that may race a writer should resolve `.current` once and read the three files there.
 * POSIX only: the switch relies on symlinks and on rename() replacing a symlink atomically.
 */
import { lstat, mkdir, readdir, readFile, readlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod/mini';
import {
  ensurePrivateDirectory,
  errorCode,
  inFlight,
  isProcessAlive,
  persistFailed,
  persisting,
  removeQuietly,
  replaceWithSymlink,
  syncDirectory,
  uniqueName,
  writeFileAtomic,
} from './durable-files.js';
import { InvalidArgumentError, PersistFailedError } from './errors.js';
import { StringMapSchema } from './schemas.js';

/** The file names of a credentials directory (docs/credentials.md). */
export const CREDENTIAL_FILES = {
  /** The device certificate, mode 0644. */
  certificate: 'certificate.pem.crt',
  /** The device private key, mode 0600 (absent when you supplied the CSR). */
  privateKey: 'private.pem.key',
  /** What was provisioned ({@link DeviceJsonSchema}), mode 0644. */
  deviceJson: 'device.json',
} as const;

const KEY_MODE = 0o600;
const PUBLIC_MODE = 0o644;
const modeOf = (name: string): number => (name === CREDENTIAL_FILES.privateKey ? KEY_MODE : PUBLIC_MODE);
const FINAL_NAMES = Object.values(CREDENTIAL_FILES);
const CURRENT = '.current';
const OURS = /^\.(set|tmp)-(\d+)-[0-9a-f]+$/;

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

/** A set written to disk but not yet visible at the final paths. */
export interface StagedCredentials {
  /** The absolute credentials directory. */
  readonly directory: string;
  /**
   * Add `device.json` and make the set visible at the final paths in one atomic switch; the old set is
   * then removed. May be retried after a failure; the old set stays in place until it succeeds.
   * @throws {PersistFailedError} when the set could not be published: the old set is still in place.
   * Rarely, the switch happened but its fsync failed: then the new set is in place, not known durable,
   * and this object counts as committed.
   * @throws {InvalidArgumentError} when called after commit or discard, or with a malformed `device`.
   */
  commit(device: DeviceJson): Promise<{
    /** The final paths of the committed set. */
    files: CredentialFiles;
  }>;
  /** Drop the staged set. Never throws; a no-op after commit. */
  discard(): Promise<void>;
}

/**
 * Write the certificate and, when there is one, the private key into a new set in `dir`, durably (both
 * fsynced, with their directory), without touching what the final paths show. Creates `dir` (0700) if
 * missing; an existing directory keeps its mode. Removes leftovers of crashed runs first.
 * @throws {PersistFailedError} when anything cannot be written; nothing is left behind.
 * @example
 * const staged = await stageCredentials('./credentials', { certificatePem, privateKeyPem });
 * // ... RegisterThing ...
 * const { files } = await staged.commit({ thingName, certificateId, deviceConfiguration, templateName,
 *   endpoint, provisionedAt: new Date().toISOString() });
 */
export async function stageCredentials(
  dir: string,
  credentials: { certificatePem: string; privateKeyPem?: string },
): Promise<StagedCredentials> {
  const { certificatePem, privateKeyPem } = credentials;
  if (typeof certificatePem !== 'string' || certificatePem.length === 0) {
    throw new InvalidArgumentError('stageCredentials needs the certificate PEM text.');
  }
  if (privateKeyPem !== undefined && (typeof privateKeyPem !== 'string' || privateKeyPem.length === 0)) {
    throw new InvalidArgumentError('stageCredentials: privateKeyPem, when given, must be PEM text.');
  }
  const directory = resolve(dir);
  await persisting('create the credentials directory', directory, () => ensurePrivateDirectory(directory));
  await removeLeftovers(directory);
  const setName = uniqueName('set');
  const setDir = join(directory, setName);
  inFlight.add(setDir);
  try {
    await mkdir(setDir, { mode: 0o700 });
    if (privateKeyPem !== undefined) {
      await writeFileAtomic(setDir, CREDENTIAL_FILES.privateKey, privateKeyPem, KEY_MODE);
    }
    await writeFileAtomic(setDir, CREDENTIAL_FILES.certificate, certificatePem, PUBLIC_MODE);
    await syncDirectory(setDir);
    await syncDirectory(directory);
  } catch (error) {
    await removeQuietly(setDir);
    inFlight.delete(setDir);
    throw persistFailed('write the new credentials', directory, error);
  }
  return new Staged(directory, setName, privateKeyPem !== undefined);
}

class Staged implements StagedCredentials {
  #state: 'staged' | 'committed' | 'discarded' = 'staged';

  constructor(
    readonly directory: string,
    private readonly setName: string,
    private readonly hasKey: boolean,
  ) {}

  async commit(device: DeviceJson): Promise<{ files: CredentialFiles }> {
    if (this.#state !== 'staged') {
      throw new InvalidArgumentError(`These credentials were already ${this.#state}; stage them again.`);
    }
    const parsed = DeviceJsonSchema.safeParse(device);
    if (!parsed.success) {
      const paths = parsed.error.issues.map((issue) => issue.path.join('.') || '(root)').join(', ');
      throw new InvalidArgumentError(`device.json is malformed at: ${paths}.`);
    }
    const { directory, setName } = this;
    const setDir = join(directory, setName);
    const retired: string[] = [];
    await persisting('save the new credentials', directory, async () => {
      await writeFileAtomic(
        setDir,
        CREDENTIAL_FILES.deviceJson,
        `${JSON.stringify(parsed.data, null, 2)}\n`,
        PUBLIC_MODE,
      );
      await syncDirectory(setDir);
      retired.push(...(await adoptFinalNames(directory, this.hasKey)));
      await replaceWithSymlink(directory, CURRENT, setName);
    });
    // From here on the new set is what the final paths show: never discard it, even if the fsync fails.
    this.#state = 'committed';
    inFlight.delete(setDir);
    await persisting('make the switch to the new credentials durable', directory, () =>
      syncDirectory(directory),
    );
    // The new set is live and durable; what follows is tidying, and a failure there is left to the next run.
    if (!this.hasKey) await removeQuietly(join(directory, CREDENTIAL_FILES.privateKey));
    for (const name of retired) if (name !== setName) await removeQuietly(join(directory, name));
    return {
      files: {
        directory,
        certificate: join(directory, CREDENTIAL_FILES.certificate),
        ...(this.hasKey ? { privateKey: join(directory, CREDENTIAL_FILES.privateKey) } : {}),
        deviceJson: join(directory, CREDENTIAL_FILES.deviceJson),
      },
    };
  }

  async discard(): Promise<void> {
    if (this.#state !== 'staged') return;
    this.#state = 'discarded';
    const setDir = join(this.directory, this.setName);
    inFlight.delete(setDir);
    // Belt and braces: the live set is never removed, whatever this object believes.
    if ((await currentSet(this.directory).catch(() => this.setName)) === this.setName) return;
    await removeQuietly(setDir);
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
async function currentSet(directory: string): Promise<string | undefined> {
  let target: string;
  try {
    target = await readlink(join(directory, CURRENT));
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  return OURS.exec(target)?.[1] === 'set' ? target : undefined;
}

/**
 * Make each final name a symlink through `.current`, without changing what any of them shows.
 * Returns the sets that stop being current once the caller switches the pointer.
 */
async function adoptFinalNames(directory: string, needKey: boolean): Promise<string[]> {
  const previous = await currentSet(directory);
  const foreign: string[] = [];
  const missing: string[] = [];
  for (const name of FINAL_NAMES) {
    const stat = await lstat(join(directory, name)).catch((error: unknown) => {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw error;
    });
    if (stat === undefined) {
      if (name !== CREDENTIAL_FILES.privateKey || needKey) missing.push(name);
    } else if (!stat.isSymbolicLink() || (await readlink(join(directory, name))) !== `${CURRENT}/${name}`) {
      foreign.push(name);
    }
  }
  const retired = previous === undefined ? [] : [previous];
  if (foreign.length > 0) {
    // Copy what the final names show now into a set of its own, point at it, then swap each name for a
    // symlink: every step shows the same old content.
    const snapshot = uniqueName('set');
    const snapshotDir = join(directory, snapshot);
    inFlight.add(snapshotDir);
    try {
      await mkdir(snapshotDir, { mode: 0o700 });
      for (const name of FINAL_NAMES) {
        const content = await readFile(join(directory, name)).catch((error: unknown) => {
          if (errorCode(error) === 'ENOENT') return undefined;
          throw error;
        });
        if (content !== undefined) await writeFileAtomic(snapshotDir, name, content, modeOf(name));
      }
      await syncDirectory(snapshotDir);
      await pointCurrentAt(directory, snapshot);
    } finally {
      inFlight.delete(snapshotDir);
    }
    retired.push(snapshot);
  }
  for (const name of [...foreign, ...missing]) {
    await replaceWithSymlink(directory, name, `${CURRENT}/${name}`);
  }
  if (foreign.length + missing.length > 0) await syncDirectory(directory);
  return retired;
}

/** The atomic switch: a fresh symlink renamed over `.current`, then the directory fsynced. */
async function pointCurrentAt(directory: string, setName: string): Promise<void> {
  await replaceWithSymlink(directory, CURRENT, setName);
  await syncDirectory(directory);
}

/** Remove sets and temp files left by runs that are gone, and a key symlink left dangling by a keyless set. */
async function removeLeftovers(directory: string): Promise<void> {
  let current: string | undefined;
  let entries: string[];
  try {
    current = await currentSet(directory);
    entries = await readdir(directory);
  } catch {
    return; // Tidying is optional; removing without knowing the live set is not.
  }
  for (const entry of entries) {
    const match = OURS.exec(entry);
    const path = join(directory, entry);
    if (match === null || entry === current || inFlight.has(path)) continue;
    const pid = Number(match[2]);
    if (pid !== process.pid && isProcessAlive(pid)) continue;
    await removeQuietly(path);
  }
  // A keyless set's commit unlinks the key symlink after the switch; a crash in between leaves it dangling.
  const keyLink = join(directory, CREDENTIAL_FILES.privateKey);
  const linkTarget = await readlink(keyLink).catch(() => undefined);
  if (current !== undefined && linkTarget === `${CURRENT}/${CREDENTIAL_FILES.privateKey}`) {
    const keyExists = await lstat(join(directory, current, CREDENTIAL_FILES.privateKey)).then(
      () => true,
      () => false,
    );
    if (!keyExists) await removeQuietly(keyLink);
  }
}
