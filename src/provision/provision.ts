/**
 * provision(): the whole onboarding in one call. Connect with the claim certificate, get the device its
 * own certificate, check it against the key or CSR, put the credentials on disk, RegisterThing, make the
 * files final, and optionally prove the new certificate connects. Here is the flow of one call; beside it
 * are the new certificate (certificate.ts), a registered set made final (commit.ts), what earlier runs
 * left (resume.ts), the certificates given up on (abandoned.ts) and how a failure is read (failures.ts).
 */
import { resolve } from 'node:path';
import { credentialFiles, type DeviceJson } from '../device/credentials.js';
import { ensurePrivateDirectory, persisting, withinDeadline } from '../device/durable-files.js';
import { inspectExistingSet, parametersDigest } from '../device/existing-set.js';
import { type StagedCredentials, stageCredentials } from '../device/staged-set.js';
import { findStagedSets } from '../device/unfinished-sets.js';
import { settleWithin } from '../internal/deadline.js';
import { optional } from '../internal/optional.js';
import {
  AbortedError,
  InvalidArgumentError,
  InvalidResponseError,
  RejectedError,
} from '../protocol/errors.js';
import type { RegisterThingResponse } from '../protocol/schemas.js';
import { AbandonedCertificates } from './abandoned.js';
import {
  type Certificate,
  checkCertificate,
  keyMaterial,
  type Registration,
  requestCertificate,
  tokenValid,
  verifyCertificate,
} from './certificate.js';
import { commitSet, type SetCall, verifyAndSwitch } from './commit.js';
import { endpointUrl } from './endpoint.js';
import { isCode, mayHaveRun, withNote } from './failures.js';
import { type ProvisionPlan, planProvision } from './plan.js';
import { type ResumeCall, resumeStagedSets } from './resume.js';
import { isRetryable } from './retry.js';
import { ProvisionRun, requestOptions } from './session.js';
import type { ProvisionedDevice, ProvisionOptions } from './types.js';

/** Certificates one call may go through when RegisterThing's token keeps being refused after an unknown outcome. */
const MAX_CERTIFICATES = 3;

/**
 * Provision one device.
 *
 * With `outDir`, a call first finishes what an earlier run left unfinished there (a set whose
 * RegisterThing was accepted is committed without traffic; one whose certificate was issued gets
 * RegisterThing again while its token is valid), then, by default, returns a complete matching set
 * without any traffic (`reused: true`). See docs/credentials.md for the states a set goes through.
 *
 * @example
 * const device = await provision({
 *   endpoint: 'abc123-ats.iot.eu-west-1.amazonaws.com',
 *   claimCertificate, claimPrivateKey, caCertificate,
 *   templateName: 'FactoryTemplate',
 *   parameters: { SerialNumber: 'SN-0042' },
 *   keys: 'generate',
 *   outDir: './credentials',
 * });
 * @throws {FleetProvisioningError} `INVALID_ARGUMENT` before any traffic (also for an `outDir` that
 * holds a set made for something else, unless `existing: 'replace'`); `REJECTED`, `TIMEOUT`,
 * `CONNECTION_LOST`, `SUBSCRIBE_FAILED`, `PUBLISH_FAILED`, `INVALID_RESPONSE` (including a certificate
 * that does not match the key or CSR), `ABORTED`, `PERSIST_FAILED`. 429, 5xx, timeouts and lost
 * connections are retried first (see `retry`).
 */
export async function provision(options: ProvisionOptions): Promise<ProvisionedDevice> {
  const plan = planProvision(options);
  if (plan.signal?.aborted === true) throw new AbortedError(plan.signal.reason);
  return new Provisioning(plan).run();
}

/**
 * What makes a rotation differ from a first provisioning: the set it replaces (its `device.json`, whose
 * thing name is the client id), and the order at the end: the new certificate must connect before the
 * switch, so the live set stays the old one until then.
 */
export interface Rotation {
  /** The live set's `device.json`. */
  current: DeviceJson & { thingName: string };
}

/**
 * One provision() or rotate() call: its connection, the certificates it gave up on, and its steps.
 * Both flows share everything: staging, the unknown-outcome rules, retries, resuming, reporting.
 */
export class Provisioning {
  readonly #plan: ProvisionPlan;
  readonly #rotation: Rotation | undefined;
  /** The plan, what to tell the user to run again, and the certificates given up on. */
  readonly #call: SetCall;
  readonly #run: ProvisionRun;
  readonly #endpoint: string;
  #parametersDigest: string | undefined;
  /** The unfinished sets of earlier runs that this call found. */
  readonly #found: StagedCredentials[] = [];

  constructor(plan: ProvisionPlan, rotation?: Rotation) {
    this.#plan = plan;
    this.#rotation = rotation;
    this.#call = {
      plan,
      again: rotation === undefined ? 'provision()' : 'rotate()',
      abandoned: new AbandonedCertificates(plan),
    };
    this.#run = new ProvisionRun(plan);
    this.#endpoint = plan.endpoint === undefined ? '' : endpointUrl(plan.endpoint);
  }

  async run(): Promise<ProvisionedDevice> {
    const plan = this.#plan;
    try {
      const outDir = plan.outDir;
      if (outDir !== undefined) {
        const directory = resolve(outDir);
        // Before any traffic: a directory another user owns is refused, an open one tightened to 0700.
        await this.#file(() =>
          persisting('prepare the credentials directory', directory, () => ensurePrivateDirectory(directory)),
        );
        const sets = await this.#file(() => findStagedSets(directory));
        this.#found.push(...sets.map((set) => set.staged));
        const resumed = await resumeStagedSets(sets, this.#resumeCall());
        if (resumed !== undefined) return await this.#call.abandoned.finish(resumed);
        const existing = await this.#file(() =>
          inspectExistingSet(directory, {
            endpoint: this.#endpoint,
            templateName: plan.templateName,
            parameters: plan.parameters,
            ...(plan.keys.kind === 'csr' ? { csr: plan.keys.csr } : {}),
          }),
        );
        if (plan.existing === 'reuse' && existing.kind === 'match') {
          return await this.#call.abandoned.finish({
            ...optional('thingName', existing.thingName),
            deviceConfiguration: existing.deviceConfiguration,
            certificateId: existing.certificateId,
            certificatePem: existing.certificatePem,
            ...optional('privateKey', existing.privateKeyPem),
            files: credentialFiles(directory, existing.privateKeyPem !== undefined),
            abandonedCertificateIds: [],
            reused: true,
          });
        }
        if (plan.existing === 'reuse' && existing.kind === 'differs') {
          throw new InvalidArgumentError(
            `${directory} already holds credentials that do not fit this request: ${existing.differences.join('; ')}. ` +
              "Nothing was sent. To provision anew there, pass existing: 'replace' (CLI: --force); or choose another directory.",
          );
        }
      }
      return await this.#call.abandoned.finish(await this.#provisionNew());
    } finally {
      // Whatever this call did not finish stays on disk for the next call, in this process or another.
      for (const staged of this.#found) staged.leave();
      this.#call.abandoned.leave();
      await this.#run.close();
    }
  }

  /** Get a certificate, stage it, register it, save it; start over when its token is refused after an unknown outcome. */
  async #provisionNew(): Promise<ProvisionedDevice> {
    const plan = this.#plan;
    let material = await keyMaterial(plan);
    for (let round = 1; ; round++) {
      const certificate = await this.#run.withRetries('certificate', (fpc) =>
        requestCertificate(fpc, plan, material),
      );
      checkCertificate(certificate, material);
      plan.onProgress({ step: 'certificate', certificateId: certificate.certificateId });
      let staged: StagedCredentials | undefined;
      if (plan.outDir !== undefined) {
        const outDir = plan.outDir;
        staged = await this.#file(() =>
          stageCredentials(
            outDir,
            {
              certificatePem: certificate.certificatePem,
              ...optional('privateKeyPem', certificate.privateKey),
            },
            {
              state: 'issued',
              certificateId: certificate.certificateId,
              issuedAt: certificate.issuedAt,
              certificateOwnershipToken: certificate.certificateOwnershipToken,
              endpoint: this.#endpoint,
              templateName: plan.templateName,
              parametersSha256: this.#parametersSha256(),
              ...(this.#rotation === undefined ? {} : { purpose: 'rotate' as const }),
            },
          ),
        );
        plan.onProgress({ step: 'staged', directory: staged.directory });
      }
      const registration = await this.#register(certificate, staged, false);
      if (registration.kind === 'registered') return this.#save(certificate, staged, registration.answer);
      await this.#call.abandoned.abandon(
        certificate.certificateId,
        staged,
        "RegisterThing's outcome was unknown and its token was then refused",
      );
      if (round >= MAX_CERTIFICATES) throw registration.error;
      // A new certificate needs a new key, unless the caller's CSR is the only key there is.
      if (plan.keys.kind === 'generate') material = await keyMaterial(plan);
    }
  }

  /**
   * RegisterThing with the certificate's token, retried on a fresh connection while the token is valid
   * when its outcome is unknown (no answer, a lost connection, a 5xx, an unreadable answer). Throws what
   * is not worth retrying; a certificate that may be active is then kept on disk (with `outDir`) for the
   * next run, or reported (without).
   */
  async #register(
    certificate: Certificate,
    staged: StagedCredentials | undefined,
    unknownBefore: boolean,
  ): Promise<Registration> {
    const plan = this.#plan;
    let unknown = unknownBefore;
    try {
      const answer = await this.#run.withRetries(
        'RegisterThing',
        async (fpc) => {
          try {
            return await fpc.registerThing(
              {
                templateName: plan.templateName,
                certificateOwnershipToken: certificate.certificateOwnershipToken,
                ...optional('parameters', plan.parameters),
              },
              requestOptions(plan),
            );
          } catch (error) {
            if (mayHaveRun(error)) unknown = true;
            throw error;
          }
        },
        () => tokenValid(certificate.issuedAt),
        (error) => isRetryable(error) || (unknown && isCode(error, 'INVALID_RESPONSE')),
      );
      return { kind: 'registered', answer };
    } catch (error) {
      if (unknown && error instanceof RejectedError && !error.retryable) return { kind: 'refused', error };
      if (!unknown) {
        await settleWithin(staged?.discard() ?? Promise.resolve(), plan.timeoutMs);
        throw error;
      }
      if (staged !== undefined) {
        staged.leave();
        throw withNote(
          error,
          `RegisterThing's outcome is unknown: certificate ${certificate.certificateId} may be ACTIVE. Its key and ` +
            `token are kept in ${staged.directory}; run ${this.#call.again} again with the same outDir to finish it.`,
        );
      }
      this.#call.abandoned.report(
        certificate.certificateId,
        "RegisterThing's outcome is unknown and there is no outDir to keep its key",
      );
      throw withNote(
        error,
        `RegisterThing's outcome is unknown: certificate ${certificate.certificateId} may be ACTIVE without a kept ` +
          'key. Deactivate it (aws iot update-certificate --new-status INACTIVE); pass outDir to keep such a key.',
      );
    }
  }

  /** RegisterThing accepted: make the set final (retried), then let the claim connection go and verify. */
  async #save(
    certificate: Certificate,
    staged: StagedCredentials | undefined,
    answer: RegisterThingResponse,
  ): Promise<ProvisionedDevice> {
    const plan = this.#plan;
    const rotation = this.#rotation;
    // device.json is written only with a staged set; without one, the answer is all there is to show.
    const record = staged === undefined ? undefined : this.#deviceJson(certificate.certificateId, answer);
    const shown = record ?? answer;
    const device: ProvisionedDevice = {
      deviceConfiguration: shown.deviceConfiguration,
      certificateId: certificate.certificateId,
      certificatePem: certificate.certificatePem,
      abandonedCertificateIds: [],
    };
    if (shown.thingName !== undefined) device.thingName = shown.thingName;
    if (certificate.privateKey !== undefined) device.privateKey = certificate.privateKey;
    if (staged === undefined || record === undefined) {
      plan.onProgress({ step: 'registered', thingName: answer.thingName });
    } else if (rotation !== undefined) {
      const expected = rotation.current.thingName;
      if (answer.thingName !== undefined && answer.thingName !== expected) {
        // Not a rotation: the template attached the certificate to another thing. Never switch to it.
        await this.#call.abandoned.abandon(
          certificate.certificateId,
          staged,
          `RegisterThing attached it to thing ${answer.thingName}`,
        );
        throw new InvalidResponseError({
          operation: 'RegisterThing',
          issues: [{ path: 'thingName', problem: 'is not the thing being rotated' }],
          message:
            `RegisterThing attached the new certificate ${certificate.certificateId} to thing ${answer.thingName}, ` +
            `not to ${expected}: the rotation template must name the device's own thing (check its parameters). ` +
            `The previous certificate stays in use; deactivate ${certificate.certificateId}.`,
        });
      }
      // A rotation records the answer, proves the new certificate, and only then switches.
      await commitSet(this.#call, staged, certificate.certificateId, record.thingName, record, false);
      await this.#run.close();
      return verifyAndSwitch(this.#call, device, certificate, staged);
    } else {
      device.files = await commitSet(this.#call, staged, certificate.certificateId, answer.thingName, record);
    }
    // The credentials are safe: only now is the claim connection let go.
    await this.#run.close();
    if (plan.verify && certificate.privateKey !== undefined) {
      try {
        device.verified = await verifyCertificate(
          plan,
          certificate.certificatePem,
          certificate.privateKey,
          shown.thingName,
        );
        plan.onProgress({ step: 'verified', accepted: device.verified });
      } catch (error) {
        // Provisioned and saved: an abort now ends the check, not the result.
        if (!isCode(error, 'ABORTED')) throw error;
      }
    }
    return device;
  }

  /** The digest of the template parameters that `device.json` records: made when a file needs it. */
  #parametersSha256(): string {
    this.#parametersDigest ??= parametersDigest(this.#plan.parameters);
    return this.#parametersDigest;
  }

  /** What `device.json` says once RegisterThing accepted `certificateId`. */
  #deviceJson(certificateId: string, answer: RegisterThingResponse): DeviceJson {
    const current = this.#rotation?.current;
    if (current === undefined) {
      return {
        ...optional('thingName', answer.thingName),
        certificateId,
        deviceConfiguration: answer.deviceConfiguration,
        templateName: this.#plan.templateName,
        endpoint: this.#endpoint,
        provisionedAt: new Date().toISOString(),
        parametersSha256: this.#parametersSha256(),
      };
    }
    // A rotated set is still the set provision() made: it keeps what provision() compares (endpoint,
    // template, parameters), so provision() on the next boot reuses it.
    const { rotatedAt: _at, previousCertificateId: _previous, ...kept } = current;
    return {
      ...kept,
      thingName: answer.thingName ?? current.thingName,
      certificateId,
      deviceConfiguration: { ...current.deviceConfiguration, ...answer.deviceConfiguration },
      rotatedAt: new Date().toISOString(),
      previousCertificateId: current.certificateId,
    };
  }

  /** What resumeStagedSets() needs of this call. */
  #resumeCall(): ResumeCall {
    return {
      ...this.#call,
      rotating: this.#rotation !== undefined,
      endpoint: this.#endpoint,
      parametersSha256: () => this.#parametersSha256(),
      register: (certificate, staged) => this.#register(certificate, staged, true),
      save: (certificate, staged, answer) => this.#save(certificate, staged, answer),
    };
  }

  /** A file step, bounded by the call's deadline (`TIMEOUT`, phase `persist`). */
  #file<T>(work: () => Promise<T>): Promise<T> {
    return withinDeadline(this.#plan.timeoutMs, work);
  }
}
