/**
 * Sets that a run which is gone left before their commit: found so that provision() and rotate() resume
 * or report them instead of losing a certificate that may be active. Such a set records how far it got
 * in its `state.json` (see staged-set.ts); a set without one is a leftover, which the next
 * stageCredentials() removes.
 */
import { X509Certificate } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { optional } from '../internal/optional.js';
import {
  CREDENTIAL_FILES,
  currentSet,
  type DeviceJson,
  DeviceJsonSchema,
  OURS,
  parseJson,
  readOptional,
} from './credentials.js';
import { errorCode, inFlight, isProcessAlive, persistFailed, removeQuietly } from './durable-files.js';
import {
  STATE_FILE,
  Staged,
  type StagedCredentials,
  type StagedState,
  StagedStateSchema,
} from './staged-set.js';

/** A staged set left by a run that ended before its commit, found by {@link findStagedSets}. */
export interface UnfinishedSet {
  /** The set's certificate, PEM. */
  certificatePem: string;
  /** The set's private key, PEM, when it has one. */
  privateKeyPem?: string;
  /** How far it got; `state` is `registered` whenever `device` is present. */
  progress: StagedState;
  /** RegisterThing's answer as recorded, when it was accepted. */
  device?: DeviceJson;
  /** The set, to commit, mark or discard. */
  staged: StagedCredentials;
}

/**
 * The staged sets in `dir` that a run which is gone left before its commit, oldest first. Sets without
 * a state file (written by {@link stageCredentials} without one) are not listed: they are leftovers.
 * A set whose state file is unreadable is listed as `abandoned` with the certificate's SHA-256 as id.
 */
export async function findStagedSets(dir: string): Promise<UnfinishedSet[]> {
  const directory = resolve(dir);
  let current: string | undefined;
  let entries: string[];
  try {
    current = await currentSet(directory);
    entries = await readdir(directory);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return [];
    throw persistFailed('look for unfinished credentials', directory, error);
  }
  // The live set's state file is a leftover of a commit that ended before tidying.
  if (current !== undefined) await removeQuietly(join(directory, current, STATE_FILE));
  const found: UnfinishedSet[] = [];
  for (const entry of entries) {
    const match = OURS.exec(entry);
    const setDir = join(directory, entry);
    if (match?.[1] !== 'set' || entry === current || inFlight.has(setDir)) continue;
    const pid = Number(match[2]);
    if (pid !== process.pid && isProcessAlive(pid)) continue;
    const stateText = await readOptional(join(setDir, STATE_FILE));
    if (stateText === undefined) continue;
    const certificatePem = await readOptional(join(setDir, CREDENTIAL_FILES.certificate));
    if (certificatePem === undefined) continue;
    const privateKeyPem = await readOptional(join(setDir, CREDENTIAL_FILES.privateKey));
    const deviceText = await readOptional(join(setDir, CREDENTIAL_FILES.deviceJson));
    const device = deviceText === undefined ? undefined : parseJson(DeviceJsonSchema, deviceText);
    let progress = parseJson(StagedStateSchema, stateText) ?? {
      state: 'abandoned' as const,
      certificateId: fingerprintOf(certificatePem),
      issuedAt: 0,
      endpoint: '',
      templateName: '',
      parametersSha256: '',
    };
    if (device !== undefined && progress.state === 'issued') progress = { ...progress, state: 'registered' };
    if (device === undefined && progress.state === 'registered')
      progress = { ...progress, state: 'abandoned' };
    inFlight.add(setDir);
    found.push({
      certificatePem,
      ...optional('privateKeyPem', privateKeyPem),
      progress,
      ...optional('device', device),
      staged: new Staged(directory, entry, privateKeyPem !== undefined, progress, device !== undefined),
    });
  }
  return found.sort((a, b) => a.progress.issuedAt - b.progress.issuedAt);
}

/**
 * True when `dir` holds a staged set that a run which is gone left unfinished (one that provision() or
 * rotate() would resume or report); with `purpose`, only such sets made by that flow (`provision` counts
 * sets that record none). Reads only; never throws (false when the directory cannot be read).
 */
export async function hasUnfinishedSets(dir: string, purpose?: 'provision' | 'rotate'): Promise<boolean> {
  const directory = resolve(dir);
  try {
    const current = await currentSet(directory);
    for (const entry of await readdir(directory)) {
      const match = OURS.exec(entry);
      if (match?.[1] !== 'set' || entry === current) continue;
      const pid = Number(match[2]);
      if (pid !== process.pid && isProcessAlive(pid)) continue;
      const stateText = await readOptional(join(directory, entry, STATE_FILE));
      if (stateText === undefined) continue;
      if (purpose === undefined) return true;
      const recorded = parseJson(StagedStateSchema, stateText)?.purpose ?? 'provision';
      if (recorded === purpose) return true;
    }
  } catch {
    return false;
  }
  return false;
}

/** AWS's certificate id: the SHA-256 of the DER certificate, lowercase hex. */
function fingerprintOf(certificatePem: string): string {
  try {
    return new X509Certificate(certificatePem).fingerprint256.replaceAll(':', '').toLowerCase();
  } catch {
    return 'unknown';
  }
}
