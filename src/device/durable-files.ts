/**
 * The file-system primitives credentials are written with: files created fresh and made durable before
 * they get their name, symlinks swapped atomically, directories fsynced, and fs errors turned into
 * `PERSIST_FAILED` with advice. Nothing here knows the credentials layout (see credentials.ts).
 * @internal
 */

import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, rename, rm, stat, symlink } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { withDeadline } from '../internal/deadline.js';
import { PersistFailedError, TimeoutError } from '../protocol/errors.js';

/**
 * Temp files, symlinks and sets this process is writing right now. Leftover cleanup skips them even
 * though their names carry this process's id.
 */
export const inFlight = new Set<string>();

/** `.<kind>-<pid>-<random>`: the pid lets the next run tell a crashed writer's leftovers from a live one's. */
export function uniqueName(kind: 'set' | 'tmp'): string {
  return `.${kind}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/**
 * Make `name` in `directory` appear in one rename: `make` builds the entry under a fresh temp name, which
 * is renamed over `name`, or removed if anything fails.
 */
async function renameIntoPlace(
  directory: string,
  name: string,
  make: (temp: string) => Promise<void>,
): Promise<void> {
  const temp = join(directory, uniqueName('tmp'));
  inFlight.add(temp);
  try {
    await make(temp);
    await rename(temp, join(directory, name));
  } catch (error) {
    await removeQuietly(temp);
    throw error;
  } finally {
    inFlight.delete(temp);
  }
}

/**
 * Create `name` in `directory` atomically: a fresh file (O_EXCL, so never someone else's file or a
 * symlink) under a temp name, chmod'ed to `mode` (open()'s mode is filtered by the umask), written,
 * fsynced, then renamed over `name`. The caller fsyncs `directory` once its names are all in place.
 */
export function writeFileAtomic(
  directory: string,
  name: string,
  content: string | Uint8Array,
  mode: number,
): Promise<void> {
  return renameIntoPlace(directory, name, async (temp) => {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.chmod(mode);
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
  });
}

/** Make `name` in `directory` a symlink to `target` in one rename, whatever was there before. */
export function replaceWithSymlink(directory: string, name: string, target: string): Promise<void> {
  return renameIntoPlace(directory, name, (temp) => symlink(target, temp));
}

/**
 * Make `directory` a private directory: 0700, owned by this user. A missing one is created (with its
 * missing parents) at 0700 and its parent fsynced, so the new name survives a power loss. An existing one
 * this user owns is tightened to 0700 (AWS IoT Device Client refuses a key whose directory is more open,
 * and in a group- or world-writable directory another user could repoint the live set). One owned by
 * another user is refused with `PERSIST_FAILED`: it could be changed behind this process's back.
 * @throws {PersistFailedError} for a directory owned by someone else; the fs error for anything else.
 */
export async function ensurePrivateDirectory(directory: string): Promise<void> {
  const existing = await stat(directory).catch((error: unknown) => {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  });
  if (existing === undefined) {
    const created = await mkdir(directory, { recursive: true, mode: 0o700 });
    // mkdir's mode is filtered by the umask; the directory must be 0700 exactly.
    await chmod(directory, 0o700);
    // Every directory mkdir made, and the one above the first, must record its new entry durably.
    let path = created ?? directory;
    await syncDirectory(dirname(path));
    while (path !== directory) {
      await syncDirectory(path);
      path = join(path, relative(path, directory).split(sep)[0] ?? '');
    }
    return;
  }
  if (!existing.isDirectory()) {
    throw Object.assign(new Error(`${directory} is not a directory`), { code: 'ENOTDIR' });
  }
  const uid = process.getuid?.();
  if (uid !== undefined && existing.uid !== uid) {
    throw new PersistFailedError(
      `${directory} belongs to user ${existing.uid}, not to this process's user ${uid}: another user could ` +
        'change the credentials in it. Nothing was sent. Choose a directory this user owns, or give this one ' +
        'to this user (chown).',
    );
  }
  if ((existing.mode & 0o777) !== 0o700) await chmod(directory, 0o700);
}

/**
 * Settle with `work`, or reject with `TIMEOUT` (phase `persist`) once `ms` have passed: a file step on a
 * file system that never answers must not hang its caller. The step itself cannot be cancelled; it may
 * still finish later.
 */
export function withinDeadline<T>(ms: number, work: () => Promise<T>): Promise<T> {
  // Started here, so that a step that throws at once rejects like one that fails later.
  const step = new Promise<T>((resolve) => resolve(work()));
  return withDeadline(step, ms, () => new TimeoutError({ phase: 'persist', timeoutMs: ms }));
}

/** fsync a directory so the names created or renamed in it survive a power loss. */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Some file systems cannot fsync a directory; there is nothing stronger to do there.
    if (errorCode(error) !== 'EINVAL' && errorCode(error) !== 'ENOTSUP') throw error;
  } finally {
    await handle.close();
  }
}

/** Remove a file, symlink or directory tree; ignore every failure (used for tidying only). */
export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true }).catch(() => undefined);
}

/** True when a process with this id exists (possibly another user's). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === 'EPERM';
  }
}

/** The `code` of a Node system error (`ENOENT`, `EACCES` …), or undefined. */
export function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

/** Run `work`; any failure becomes a {@link PersistFailedError} about `action` in `directory`. */
export async function persisting<T>(action: string, directory: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw persistFailed(action, directory, error);
  }
}

const ADVICE: Record<string, string> = {
  EACCES: 'Check that this process may write there (owner and permissions), or choose another directory.',
  EPERM:
    'Check that this process may write there (owner, permissions, immutable flags), or choose another directory.',
  ENOSPC: 'The disk is full: free some space and retry.',
  EDQUOT: 'The disk quota is used up: free some space and retry.',
  EROFS: 'The file system is read-only: choose another directory.',
  ENOTDIR: 'Part of the path is a file, not a directory: fix the path or choose another directory.',
  EEXIST: 'Something that is not a directory sits at that path: fix the path or choose another directory.',
  EISDIR: 'A directory sits where a credential file belongs: move it away and retry.',
  ENOTEMPTY: 'A directory sits where a credential file belongs: move it away and retry.',
};

/**
 * A {@link PersistFailedError} that says what failed, where, the system error code and what to do.
 * Paths and codes only: never file content.
 */
export function persistFailed(action: string, directory: string, error: unknown): PersistFailedError {
  if (error instanceof PersistFailedError) return error;
  const code = errorCode(error) ?? 'unknown error';
  const advice = ADVICE[code] ?? 'Check the directory and the disk, then retry.';
  return new PersistFailedError(
    `Could not ${action} in ${directory} (${code}). ${advice} No partial set of credentials was left at the final paths.`,
    { cause: error },
  );
}
