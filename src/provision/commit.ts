/**
 * A registered set made final: RegisterThing's answer recorded in the staged set, then the switch of the
 * final paths to it (retried; a set that cannot be saved stays on disk, and `PERSIST_FAILED` says so).
 * For a rotation, the new certificate must connect before that switch.
 */
import { type CredentialFiles, credentialFiles, type DeviceJson } from '../device/credentials.js';
import { withinDeadline } from '../device/durable-files.js';
import type { StagedCredentials } from '../device/staged-set.js';
import { delay } from '../internal/delay.js';
import { ConnectionLostError, FleetProvisioningError, PersistFailedError } from '../protocol/errors.js';
import type { AbandonedCertificates } from './abandoned.js';
import { type Certificate, verifyCertificate } from './certificate.js';
import { withNote } from './failures.js';
import type { ProvisionPlan } from './plan.js';
import { backoffDelay } from './retry.js';
import type { ProvisionedDevice } from './types.js';

/** Tries at saving the credentials once RegisterThing accepted. */
const SAVE_ATTEMPTS = 3;

/** The provision() or rotate() call a set belongs to, as its last steps need it. */
export interface SetCall {
  plan: ProvisionPlan;
  /** What to tell the user to run again: `provision()` or `rotate()`. */
  again: string;
  /** The certificates the call gave up on. */
  abandoned: AbandonedCertificates;
}

/**
 * Record RegisterThing's answer in the staged set, then (with `switchNow`) switch the final paths to
 * it; a failure is retried. A set that cannot be saved stays on disk for the next run, and
 * `PERSIST_FAILED` says which certificate and thing it holds.
 */
export async function commitSet(
  call: SetCall,
  staged: StagedCredentials,
  certificateId: string,
  thingName: string | undefined,
  device: DeviceJson | undefined,
  switchNow = true,
): Promise<CredentialFiles> {
  const plan = call.plan;
  let recorded = device === undefined;
  let lastError: unknown;
  for (let attempt = 1; attempt <= SAVE_ATTEMPTS; attempt++) {
    try {
      if (!recorded && device !== undefined) {
        await withinDeadline(plan.timeoutMs, () => staged.markRegistered(device));
        recorded = true;
        plan.onProgress({ step: 'registered', thingName });
      }
      if (!switchNow) return credentialFiles(staged.directory, false);
      const { files } = await withinDeadline(plan.timeoutMs, () => staged.commit());
      plan.onProgress({ step: 'saved', files });
      return files;
    } catch (error) {
      lastError = error;
      if (attempt < SAVE_ATTEMPTS) {
        const delayMs = backoffDelay(attempt, plan.retry);
        const code = error instanceof FleetProvisioningError ? error.code : 'PERSIST_FAILED';
        plan.onProgress({ step: 'retrying', operation: 'save', attempt: attempt + 1, delayMs, code });
        // No signal: the certificate is active, and saving it is what an abort must not prevent.
        await delay(delayMs);
      }
    }
  }
  staged.leave();
  const reason = lastError instanceof Error ? lastError.message : String(lastError);
  throw new PersistFailedError(
    `RegisterThing accepted certificate ${certificateId}${thingName === undefined ? '' : ` for thing ${thingName}`}, ` +
      `but the credentials could not be saved in ${staged.directory}: ${reason} The certificate is ACTIVE and ` +
      `its key is kept in a staged set there: fix the problem, then run ${call.again} again with the same outDir ` +
      'to finish without network traffic.',
    { cause: lastError },
  );
}

/**
 * Rotation's end: connect with the new certificate (with `verify`), then switch the final paths to it.
 * A certificate the broker refuses is abandoned and the old set stays live; one whose check could not
 * finish (deadline, abort, a broker out of reach) stays staged as registered, and the next rotate()
 * checks it again.
 */
export async function verifyAndSwitch(
  call: SetCall,
  device: ProvisionedDevice,
  certificate: Certificate,
  staged: StagedCredentials,
): Promise<ProvisionedDevice> {
  const plan = call.plan;
  const { certificateId } = certificate;
  if (plan.verify && certificate.privateKey !== undefined) {
    let accepted: boolean;
    try {
      accepted = await verifyCertificate(
        plan,
        certificate.certificatePem,
        certificate.privateKey,
        device.thingName,
        true,
      );
    } catch (error) {
      staged.leave();
      throw withNote(
        error,
        `The new certificate ${certificateId} is registered but could not be checked; the previous ` +
          `certificate stays in use. Run ${call.again} again with the same outDir to check it and switch.`,
      );
    }
    plan.onProgress({ step: 'verified', accepted });
    if (!accepted) {
      await call.abandoned.abandon(certificateId, staged, 'the broker refused it');
      throw new ConnectionLostError(
        `The broker refused a connection with the new certificate ${certificateId} (client id ` +
          `${device.thingName ?? '(none)'}); the previous certificate stays in use. Check the policy the ` +
          `rotation template attaches, then deactivate ${certificateId}: it is ACTIVE but will not be used.`,
        { retryable: false },
      );
    }
    device.verified = true;
  }
  device.files = await commitSet(call, staged, certificateId, device.thingName, undefined);
  return device;
}
