/**
 * What earlier runs left unfinished in `outDir`, finished by the next provision() or rotate() there: a
 * set whose RegisterThing was accepted is made final, one whose certificate was issued gets
 * RegisterThing again while its token is valid, and the rest are abandoned and reported.
 */
import type { StagedCredentials } from '../device/staged-set.js';
import type { UnfinishedSet } from '../device/unfinished-sets.js';
import { certificateMatchesPrivateKey } from '../device/keys.js';
import { optional } from '../internal/optional.js';
import type { RegisterThingResponse } from '../protocol/schemas.js';
import { type Certificate, type Registration, tokenValid } from './certificate.js';
import { commitSet, type SetCall, verifyAndSwitch } from './commit.js';
import type { ProvisionedDevice } from './types.js';

/** What resuming needs from the call that found the sets: what it asks for, and its steps. */
export interface ResumeCall extends SetCall {
  /** True for rotate(): a rotation's set replaces a live set only after its certificate connected. */
  rotating: boolean;
  /** The endpoint URL a set must record to have been made for this request. */
  endpoint: string;
  /** The parameters digest a set must record to have been made for this request. */
  parametersSha256(): string;
  /** RegisterThing again with the set's token (the earlier outcome is unknown). */
  register(certificate: Certificate, staged: StagedCredentials): Promise<Registration>;
  /** RegisterThing accepted: make the set final. */
  save(
    certificate: Certificate,
    staged: StagedCredentials,
    answer: RegisterThingResponse,
  ): Promise<ProvisionedDevice>;
}

/**
 * Finish the `sets` earlier runs left in the credentials directory: commit a registered set, retry
 * RegisterThing for an issued one whose token is valid and that was made for this request, abandon (and
 * report) the rest. Returns the device when a set made for this request was finished.
 */
export async function resumeStagedSets(
  sets: UnfinishedSet[],
  call: ResumeCall,
): Promise<ProvisionedDevice | undefined> {
  const plan = call.plan;
  let finished: { device: ProvisionedDevice; matches: boolean } | undefined;
  for (const set of sets) {
    const { progress, staged } = set;
    // A rotation's set replaces a live set only after its certificate connected: rotate() finishes it.
    if (!call.rotating && progress.purpose === 'rotate') continue;
    const matches =
      progress.endpoint === call.endpoint &&
      progress.templateName === plan.templateName &&
      progress.parametersSha256 === call.parametersSha256();
    if (progress.state === 'abandoned') {
      await call.abandoned.abandon(progress.certificateId, staged, 'an earlier run gave it up');
      continue;
    }
    if (
      set.privateKeyPem !== undefined &&
      !certificateMatchesPrivateKey(set.certificatePem, set.privateKeyPem)
    ) {
      await call.abandoned.abandon(
        progress.certificateId,
        staged,
        'its staged key does not match its certificate',
      );
      continue;
    }
    const certificate: Certificate = {
      certificateId: progress.certificateId,
      certificatePem: set.certificatePem,
      certificateOwnershipToken: progress.certificateOwnershipToken ?? '',
      privateKey: set.privateKeyPem,
      issuedAt: progress.issuedAt,
    };
    let device: ProvisionedDevice;
    if (progress.state === 'registered' && set.device !== undefined) {
      plan.onProgress({ step: 'resuming', certificateId: progress.certificateId, state: 'registered' });
      const recorded = set.device;
      if (call.rotating) {
        device = await verifyAndSwitch(
          call,
          {
            ...optional('thingName', recorded.thingName),
            deviceConfiguration: recorded.deviceConfiguration,
            certificateId: recorded.certificateId,
            certificatePem: set.certificatePem,
            ...optional('privateKey', set.privateKeyPem),
            abandonedCertificateIds: [],
          },
          certificate,
          staged,
        );
        if (finished !== undefined)
          call.abandoned.report(finished.device.certificateId, 'a newer unfinished set replaced it');
        finished = { device, matches };
        continue;
      }
      device = {
        ...optional('thingName', recorded.thingName),
        deviceConfiguration: recorded.deviceConfiguration,
        certificateId: recorded.certificateId,
        certificatePem: set.certificatePem,
        ...optional('privateKey', set.privateKeyPem),
        files: await commitSet(call, staged, recorded.certificateId, recorded.thingName, undefined),
        abandonedCertificateIds: [],
      };
    } else {
      if (!matches || progress.certificateOwnershipToken === undefined || !tokenValid(progress.issuedAt)) {
        await call.abandoned.abandon(
          progress.certificateId,
          staged,
          matches
            ? 'an earlier run left it unregistered and its token has expired'
            : 'an earlier run left it unregistered, for another endpoint, template or parameters',
        );
        continue;
      }
      plan.onProgress({ step: 'resuming', certificateId: progress.certificateId, state: 'issued' });
      const registration = await call.register(certificate, staged);
      if (registration.kind === 'refused') {
        await call.abandoned.abandon(
          progress.certificateId,
          staged,
          "an earlier run's RegisterThing had an unknown outcome and its token was then refused",
        );
        continue;
      }
      device = await call.save(certificate, staged, registration.answer);
    }
    // A later set replaces an earlier one at the final paths: the earlier certificate is not kept.
    if (finished !== undefined)
      call.abandoned.report(finished.device.certificateId, 'a newer unfinished set replaced it');
    finished = { device, matches };
  }
  return finished?.matches === true ? finished.device : undefined;
}
