/**
 * Where the key hits the disk: a new set of credentials written so that a crash can never leave a
 * half-written or mixed set at the paths users read (the layout and its readers: credentials.ts).
 *
 * The guarantee: three renames cannot be made atomic together, one can. Each set is written into its own
 * directory (every file created fresh with O_EXCL and an explicit mode, written, fsynced, renamed, then
 * the directory fsynced); the switch from the old set to the new one is a single `rename()` of a
 * symlink over `.current`, followed by an fsync of the directory. So at every instant, including after
 * SIGKILL or power loss at any point, the three final paths resolve to the old complete set or the new
 * complete set, never to a mix.
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
 * alone.
 */
import { lstat, mkdir, readdir, readFile, readlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod/mini';
import { InvalidArgumentError } from '../protocol/errors.js';
import {
  CREDENTIAL_FILES,
  CURRENT,
  type CredentialFiles,
  credentialFiles,
  currentSet,
  type DeviceJson,
  DeviceJsonSchema,
  OURS,
} from './credentials.js';
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

const KEY_MODE = 0o600;
const PUBLIC_MODE = 0o644;
const modeOf = (name: string): number => (name === CREDENTIAL_FILES.privateKey ? KEY_MODE : PUBLIC_MODE);
const FINAL_NAMES = Object.values(CREDENTIAL_FILES);

/** The file inside a staged set that says how far it got; 0600, as it may hold the ownership token. */
export const STATE_FILE = 'state.json';

/**
 * How far a staged set got, recorded in the set (`state.json`, 0600) so that the next run can resume it:
 * - `issued`: the certificate was issued and its key is on disk; RegisterThing may or may not have been
 *   sent. Holds the ownership token (a secret, hence 0600 inside the 0700 set) until the commit.
 * - `registered`: RegisterThing accepted (its answer is the set's `device.json`); only the commit is left.
 * - `abandoned`: the certificate may be active but will not be used; kept until a run reports it.
 */
export const StagedStateSchema = z.object({
  /** How far the set got. */
  state: z.enum(['issued', 'registered', 'abandoned']),
  /** The certificate's id. */
  certificateId: z.string().check(z.minLength(1)),
  /** When the certificate (and its token) was issued, ms since the epoch. */
  issuedAt: z.number(),
  /** The ownership token, while the state is `issued`. A secret. */
  certificateOwnershipToken: z.optional(z.string()),
  /** The endpoint it was issued at, as a URL. */
  endpoint: z.string(),
  /** The template RegisterThing runs. */
  templateName: z.string(),
  /** SHA-256 (hex) of the template parameters. */
  parametersSha256: z.string(),
  /**
   * `rotate` for a set made by rotate(): it replaces a live set only after its certificate has connected,
   * so provision() leaves it to the next rotate(). Absent for provision()'s sets.
   */
  purpose: z.optional(z.enum(['provision', 'rotate'])),
});
/** The content of a staged set's `state.json`. */
export type StagedState = z.infer<typeof StagedStateSchema>;

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
   * @throws {InvalidArgumentError} when called after commit or discard, or with a malformed `device`,
   * or without `device` when {@link StagedCredentials.markRegistered} recorded none.
   */
  commit(device?: DeviceJson): Promise<{
    /** The final paths of the committed set. */
    files: CredentialFiles;
  }>;
  /** Drop the staged set. Never throws; a no-op after commit. */
  discard(): Promise<void>;
  /**
   * Record that RegisterThing accepted: write `device.json` into the set and drop the ownership token
   * from its state, durably, without touching the final paths. A later {@link StagedCredentials.commit}
   * (or the next run, after a crash) then only has to switch.
   * @throws {PersistFailedError} when it cannot be written.
   */
  markRegistered(device: DeviceJson): Promise<void>;
  /**
   * Stop tracking the set in this process and leave it on disk, with the state it records, for the next
   * run to resume or report. A no-op after commit or discard.
   */
  leave(): void;
  /**
   * Record that this set's certificate is abandoned (it may be active but will not be used), dropping the
   * token. Never throws: the set is reported either way.
   */
  markAbandoned(): Promise<void>;
}

/**
 * Write the certificate and, when there is one, the private key into a new set in `dir`, durably (both
 * fsynced, with their directory), without touching what the final paths show. Creates `dir` (0700) if
 * missing and tightens an existing one to 0700 (one owned by another user is refused). Removes leftovers
 * of crashed runs first. With `state`, the set records how far it got (`state.json`, 0600) so that
 * provision() can resume it after a crash; such a set is never removed as a leftover.
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
  state?: StagedState,
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
    if (state !== undefined) await writeState(setDir, state);
    await syncDirectory(setDir);
    await syncDirectory(directory);
  } catch (error) {
    await removeQuietly(setDir);
    inFlight.delete(setDir);
    throw persistFailed('write the new credentials', directory, error);
  }
  return new Staged(directory, setName, privateKeyPem !== undefined, state);
}

async function writeState(setDir: string, state: StagedState): Promise<void> {
  await writeFileAtomic(setDir, STATE_FILE, `${JSON.stringify(state)}\n`, KEY_MODE);
}

/**
 * The set {@link stageCredentials} wrote, or one an earlier run left (found by unfinished-sets.ts), to
 * mark, commit, leave or discard.
 */
export class Staged implements StagedCredentials {
  #state: 'staged' | 'committed' | 'discarded' = 'staged';
  #registered = false;
  #progress: StagedState | undefined;

  constructor(
    readonly directory: string,
    private readonly setName: string,
    private readonly hasKey: boolean,
    progress: StagedState | undefined,
    registered = false,
  ) {
    this.#progress = progress;
    this.#registered = registered;
  }

  async markRegistered(device: DeviceJson): Promise<void> {
    this.#assertStaged();
    const text = deviceJsonText(device);
    const setDir = join(this.directory, this.setName);
    await persisting('record the registered credentials', this.directory, async () => {
      // device.json first: a set holding it counts as registered whatever its state file says.
      await writeFileAtomic(setDir, CREDENTIAL_FILES.deviceJson, text, PUBLIC_MODE);
      const progress = this.#progress;
      if (progress !== undefined) {
        const { certificateOwnershipToken: _token, ...rest } = progress;
        this.#progress = { ...rest, state: 'registered' };
        await writeState(setDir, this.#progress);
      }
      await syncDirectory(setDir);
    });
    this.#registered = true;
  }

  leave(): void {
    if (this.#state !== 'staged') return;
    this.#state = 'discarded';
    inFlight.delete(join(this.directory, this.setName));
  }

  async markAbandoned(): Promise<void> {
    const progress = this.#progress;
    if (this.#state !== 'staged' || progress === undefined) return;
    const { certificateOwnershipToken: _token, ...rest } = progress;
    this.#progress = { ...rest, state: 'abandoned' };
    const setDir = join(this.directory, this.setName);
    await writeState(setDir, this.#progress)
      .then(() => syncDirectory(setDir))
      .catch(() => undefined);
  }

  async commit(device?: DeviceJson): Promise<{ files: CredentialFiles }> {
    this.#assertStaged();
    if (device === undefined && !this.#registered) {
      throw new InvalidArgumentError('commit() needs the device.json content: none was recorded.');
    }
    const text = device === undefined ? undefined : deviceJsonText(device);
    const { directory, setName } = this;
    const setDir = join(directory, setName);
    const retired: string[] = [];
    await persisting('save the new credentials', directory, async () => {
      if (text !== undefined) {
        await writeFileAtomic(setDir, CREDENTIAL_FILES.deviceJson, text, PUBLIC_MODE);
        await syncDirectory(setDir);
      }
      retired.push(...(await adoptFinalNames(directory, this.hasKey)));
      await replaceWithSymlink(directory, CURRENT, setName);
    });
    // From here on the new set is what the final paths show: never discard it, even if the fsync fails.
    this.#state = 'committed';
    inFlight.delete(setDir);
    await persisting('make the switch to the new credentials durable', directory, () =>
      syncDirectory(directory),
    );
    // The new set is live and durable; what follows is tidying, and a failure there is left to the next run
    // (which removes the state file of the live set before anything else).
    await removeQuietly(join(setDir, STATE_FILE));
    if (!this.hasKey) await removeQuietly(join(directory, CREDENTIAL_FILES.privateKey));
    for (const name of retired) if (name !== setName) await removeQuietly(join(directory, name));
    return { files: credentialFiles(directory, this.hasKey) };
  }

  #assertStaged(): void {
    if (this.#state !== 'staged') {
      throw new InvalidArgumentError(`These credentials were already ${this.#state}; stage them again.`);
    }
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

function deviceJsonText(device: DeviceJson): string {
  const parsed = DeviceJsonSchema.safeParse(device);
  if (!parsed.success) {
    const paths = parsed.error.issues.map((issue) => issue.path.join('.') || '(root)').join(', ');
    throw new InvalidArgumentError(`device.json is malformed at: ${paths}.`);
  }
  return `${JSON.stringify(parsed.data, null, 2)}\n`;
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
    // A set that records its progress is resumed or reported by provision(), never silently removed.
    if (
      match[1] === 'set' &&
      (await lstat(join(path, STATE_FILE)).then(
        () => true,
        () => false,
      ))
    )
      continue;
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
