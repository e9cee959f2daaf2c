/**
 * provision(): the whole onboarding in one call. Connect with the claim certificate, get the device its
 * own certificate, check it against the key or CSR, put the credentials on disk, RegisterThing, make the
 * files final, and optionally prove the new certificate connects.
 */
import { resolve } from 'node:path';
import type { FleetProvisioningClient } from '../client/fleet-provisioning-client.js';
import { type CredentialFiles, credentialFiles, type DeviceJson } from '../device/credentials.js';
import { assertCsr } from '../device/csr-input.js';
import { ensurePrivateDirectory, persisting, withinDeadline } from '../device/durable-files.js';
import { inspectExistingSet, parametersDigest } from '../device/existing-set.js';
import { certificateMatchesPrivateKey, createCsr, generateKeyPair } from '../device/keys.js';
import { type StagedCredentials, stageCredentials } from '../device/staged-set.js';
import { findStagedSets } from '../device/unfinished-sets.js';
import { settleWithin } from '../internal/deadline.js';
import { delay } from '../internal/delay.js';
import { optional } from '../internal/optional.js';
import {
  AbortedError,
  ConnectionLostError,
  FleetProvisioningError,
  InvalidArgumentError,
  InvalidResponseError,
  PersistFailedError,
  RejectedError,
  TimeoutError,
} from '../protocol/errors.js';
import { TOKEN_LIFETIME_MS } from '../protocol/operations.js';
import type { RegisterThingResponse } from '../protocol/schemas.js';
import { closeConnection, openConnection } from './connection.js';
import { endpointUrl } from './endpoint.js';
import { type ProvisionPlan, planProvision } from './plan.js';
import { backoffDelay, isRetryable } from './retry.js';
import { ProvisionRun, requestOptions } from './session.js';
import type { ProvisionedDevice, ProvisionOptions } from './types.js';

/** Retrying RegisterThing stops this long before the ownership token expires. */
const TOKEN_MARGIN_MS = 60 * 1000;
/** Certificates one call may go through when RegisterThing's token keeps being refused after an unknown outcome. */
const MAX_CERTIFICATES = 3;
/** Tries at saving the credentials once RegisterThing accepted. */
const SAVE_ATTEMPTS = 3;

interface Certificate {
  certificateId: string;
  certificatePem: string;
  certificateOwnershipToken: string;
  privateKey: string | undefined;
  issuedAt: number;
}

type Registration =
  | { kind: 'registered'; answer: RegisterThingResponse }
  /** RegisterThing's outcome was unknown, and the retry with the same token was refused. */
  | { kind: 'refused'; error: unknown };

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
  /** What to tell the user to run again. */
  readonly #again: string;
  readonly #run: ProvisionRun;
  readonly #endpoint: string;
  #parametersDigest: string | undefined;
  readonly #abandoned: Array<{ certificateId: string; staged: StagedCredentials | undefined }> = [];
  /** The unfinished sets of earlier runs that this call found. */
  readonly #found: StagedCredentials[] = [];

  constructor(plan: ProvisionPlan, rotation?: Rotation) {
    this.#plan = plan;
    this.#rotation = rotation;
    this.#again = rotation === undefined ? 'provision()' : 'rotate()';
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
        const resumed = await this.#resume(directory);
        if (resumed !== undefined) return await this.#finish(resumed);
        const existing = await this.#file(() =>
          inspectExistingSet(directory, {
            endpoint: this.#endpoint,
            templateName: plan.templateName,
            parameters: plan.parameters,
            ...(plan.keys.kind === 'csr' ? { csr: plan.keys.csr } : {}),
          }),
        );
        if (plan.existing === 'reuse' && existing.kind === 'match') {
          return await this.#finish({
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
      return await this.#finish(await this.#provisionNew());
    } finally {
      // Whatever this call did not finish stays on disk for the next call, in this process or another.
      for (const staged of this.#found) staged.leave();
      for (const { staged } of this.#abandoned) staged?.leave();
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
      await this.#abandon(
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
            `token are kept in ${staged.directory}; run ${this.#again} again with the same outDir to finish it.`,
        );
      }
      this.#report(
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
        await this.#abandon(
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
      await this.#commit(staged, certificate.certificateId, record.thingName, record, false);
      await this.#run.close();
      return this.#verifyAndSwitch(device, certificate, staged);
    } else {
      device.files = await this.#commit(staged, certificate.certificateId, answer.thingName, record);
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

  /**
   * Rotation's end: connect with the new certificate (with `verify`), then switch the final paths to it.
   * A certificate the broker refuses is abandoned and the old set stays live; one whose check could not
   * finish (deadline, abort, a broker out of reach) stays staged as registered, and the next rotate()
   * checks it again.
   */
  async #verifyAndSwitch(
    device: ProvisionedDevice,
    certificate: Certificate,
    staged: StagedCredentials,
  ): Promise<ProvisionedDevice> {
    const plan = this.#plan;
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
            `certificate stays in use. Run ${this.#again} again with the same outDir to check it and switch.`,
        );
      }
      plan.onProgress({ step: 'verified', accepted });
      if (!accepted) {
        await this.#abandon(certificateId, staged, 'the broker refused it');
        throw new ConnectionLostError(
          `The broker refused a connection with the new certificate ${certificateId} (client id ` +
            `${device.thingName ?? '(none)'}); the previous certificate stays in use. Check the policy the ` +
            `rotation template attaches, then deactivate ${certificateId}: it is ACTIVE but will not be used.`,
          { retryable: false },
        );
      }
      device.verified = true;
    }
    device.files = await this.#commit(staged, certificateId, device.thingName, undefined);
    return device;
  }

  /**
   * Record RegisterThing's answer in the staged set, then (with `switchNow`) switch the final paths to
   * it; a failure is retried. A set that cannot be saved stays on disk for the next run, and
   * `PERSIST_FAILED` says which certificate and thing it holds.
   */
  async #commit(
    staged: StagedCredentials,
    certificateId: string,
    thingName: string | undefined,
    device: DeviceJson | undefined,
    switchNow = true,
  ): Promise<CredentialFiles> {
    const plan = this.#plan;
    let recorded = device === undefined;
    let lastError: unknown;
    for (let attempt = 1; attempt <= SAVE_ATTEMPTS; attempt++) {
      try {
        if (!recorded && device !== undefined) {
          await this.#file(() => staged.markRegistered(device));
          recorded = true;
          plan.onProgress({ step: 'registered', thingName });
        }
        if (!switchNow) return credentialFiles(staged.directory, false);
        const { files } = await this.#file(() => staged.commit());
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
        `its key is kept in a staged set there: fix the problem, then run ${this.#again} again with the same outDir ` +
        'to finish without network traffic.',
      { cause: lastError },
    );
  }

  /**
   * Finish what earlier runs left in `directory`: commit a registered set, retry RegisterThing for an
   * issued one whose token is valid and that was made for this request, abandon (and report) the rest.
   * Returns the device when a set made for this request was finished.
   */
  async #resume(directory: string): Promise<ProvisionedDevice | undefined> {
    const plan = this.#plan;
    const sets = await this.#file(() => findStagedSets(directory));
    this.#found.push(...sets.map((set) => set.staged));
    let finished: { device: ProvisionedDevice; matches: boolean } | undefined;
    for (const set of sets) {
      const { progress, staged } = set;
      // A rotation's set replaces a live set only after its certificate connected: rotate() finishes it.
      if (this.#rotation === undefined && progress.purpose === 'rotate') continue;
      const matches =
        progress.endpoint === this.#endpoint &&
        progress.templateName === plan.templateName &&
        progress.parametersSha256 === this.#parametersSha256();
      if (progress.state === 'abandoned') {
        await this.#abandon(progress.certificateId, staged, 'an earlier run gave it up');
        continue;
      }
      if (
        set.privateKeyPem !== undefined &&
        !certificateMatchesPrivateKey(set.certificatePem, set.privateKeyPem)
      ) {
        await this.#abandon(progress.certificateId, staged, 'its staged key does not match its certificate');
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
        if (this.#rotation !== undefined) {
          device = await this.#verifyAndSwitch(
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
            this.#report(finished.device.certificateId, 'a newer unfinished set replaced it');
          finished = { device, matches };
          continue;
        }
        device = {
          ...optional('thingName', recorded.thingName),
          deviceConfiguration: recorded.deviceConfiguration,
          certificateId: recorded.certificateId,
          certificatePem: set.certificatePem,
          ...optional('privateKey', set.privateKeyPem),
          files: await this.#commit(staged, recorded.certificateId, recorded.thingName, undefined),
          abandonedCertificateIds: [],
        };
      } else {
        if (!matches || progress.certificateOwnershipToken === undefined || !tokenValid(progress.issuedAt)) {
          await this.#abandon(
            progress.certificateId,
            staged,
            matches
              ? 'an earlier run left it unregistered and its token has expired'
              : 'an earlier run left it unregistered, for another endpoint, template or parameters',
          );
          continue;
        }
        plan.onProgress({ step: 'resuming', certificateId: progress.certificateId, state: 'issued' });
        const registration = await this.#register(certificate, staged, true);
        if (registration.kind === 'refused') {
          await this.#abandon(
            progress.certificateId,
            staged,
            "an earlier run's RegisterThing had an unknown outcome and its token was then refused",
          );
          continue;
        }
        device = await this.#save(certificate, staged, registration.answer);
      }
      // A later set replaces an earlier one at the final paths: the earlier certificate is not kept.
      if (finished !== undefined)
        this.#report(finished.device.certificateId, 'a newer unfinished set replaced it');
      finished = { device, matches };
    }
    return finished?.matches === true ? finished.device : undefined;
  }

  async #abandon(
    certificateId: string,
    staged: StagedCredentials | undefined,
    reason: string,
  ): Promise<void> {
    this.#abandoned.push({ certificateId, staged });
    this.#plan.onProgress({ step: 'abandoned', certificateId, reason });
    if (staged !== undefined) await settleWithin(staged.markAbandoned(), this.#plan.timeoutMs);
  }

  #report(certificateId: string, reason: string): void {
    this.#abandoned.push({ certificateId, staged: undefined });
    this.#plan.onProgress({ step: 'abandoned', certificateId, reason });
  }

  /** The result names every certificate given up on; only now may their staged keys go. */
  async #finish(device: ProvisionedDevice): Promise<ProvisionedDevice> {
    for (const { staged } of this.#abandoned) {
      if (staged !== undefined) await settleWithin(staged.discard(), this.#plan.timeoutMs);
    }
    const ids = [...new Set(this.#abandoned.map((a) => a.certificateId))];
    return { ...device, abandonedCertificateIds: ids };
  }

  /** A file step, bounded by the call's deadline (`TIMEOUT`, phase `persist`). */
  #file<T>(work: () => Promise<T>): Promise<T> {
    return withinDeadline(this.#plan.timeoutMs, work);
  }
}

function tokenValid(issuedAt: number): boolean {
  return Date.now() - issuedAt < TOKEN_LIFETIME_MS - TOKEN_MARGIN_MS;
}

function isCode(error: unknown, code: string): boolean {
  return error instanceof FleetProvisioningError && error.code === code;
}

/**
 * True when a RegisterThing that failed this way may still have run in the service: the request may have
 * gone out and its answer was lost, cut off, unreadable or a server error.
 */
function mayHaveRun(error: unknown): boolean {
  if (!(error instanceof FleetProvisioningError)) return true;
  if (error instanceof TimeoutError) return error.phase === 'publish' || error.phase === 'response';
  if (error instanceof RejectedError) return error.statusCode >= 500;
  return ['CONNECTION_LOST', 'ABORTED', 'INVALID_RESPONSE', 'PUBLISH_FAILED', 'CLIENT_CLOSED'].includes(
    error.code,
  );
}

/** Add a sentence to an error's message (never a secret: ids and paths only). */
function withNote(error: unknown, note: string): unknown {
  if (error instanceof Error) error.message = `${error.message} ${note}`;
  return error;
}

interface KeyMaterial {
  privateKeyPem: string | undefined;
  csrPem: string | undefined;
}

async function keyMaterial(plan: ProvisionPlan): Promise<KeyMaterial> {
  switch (plan.keys.kind) {
    case 'server':
      return { privateKeyPem: undefined, csrPem: undefined };
    case 'csr':
      // The caller's CSR is checked in full (signature, key) before any connection is opened.
      await assertCsr(plan.keys.csr);
      return { privateKeyPem: undefined, csrPem: plan.keys.csr };
    case 'generate': {
      const pair = await generateKeyPair(plan.keys.type);
      const csrPem = await createCsr({
        keys: pair.keys,
        ...optional('subject', plan.csrSubject),
      });
      plan.onProgress({ step: 'key', keyType: plan.keys.type });
      return { privateKeyPem: pair.privateKeyPem, csrPem };
    }
  }
}

async function requestCertificate(
  fpc: FleetProvisioningClient,
  plan: ProvisionPlan,
  material: KeyMaterial,
): Promise<Certificate> {
  const issuedAt = Date.now();
  if (material.csrPem === undefined) {
    const answer = await fpc.createKeysAndCertificate(requestOptions(plan));
    return { ...answer, privateKey: answer.privateKey, issuedAt };
  }
  const answer = await fpc.createCertificateFromCsr(
    { certificateSigningRequest: material.csrPem },
    requestOptions(plan),
  );
  return { ...answer, privateKey: material.privateKeyPem, issuedAt };
}

/**
 * The certificate must carry the key it came with: otherwise the answer is corrupt or someone else's.
 * A CSR answer needs no check here: FleetProvisioningClient already refuses a certificate that does not
 * certify the CSR's public key.
 */
function checkCertificate(certificate: Certificate, material: KeyMaterial): void {
  if (material.csrPem !== undefined) return;
  if (
    certificate.privateKey !== undefined &&
    certificateMatchesPrivateKey(certificate.certificatePem, certificate.privateKey)
  ) {
    return;
  }
  throw new InvalidResponseError({
    operation: 'CreateKeysAndCertificate',
    issues: [{ path: 'certificatePem', problem: 'does not match the private key' }],
    message:
      `CreateKeysAndCertificate returned certificate ${certificate.certificateId}, whose public key does not ` +
      'match the private key sent with it. Nothing was written and RegisterThing was not sent.',
  });
}

/**
 * Connect with the new certificate: true when the broker accepts it (CONNACK), false when it refuses.
 * The client id is the thing name when there is one, as AWS's recommended device policy requires
 * (`iot:Connect` on `client/${iot:Connection.Thing.ThingName}`).
 */
async function verifyCertificate(
  plan: ProvisionPlan,
  certificatePem: string,
  privateKeyPem: string,
  thingName: string | undefined,
  /** Throw, rather than answer false, when the broker could not be reached at all. */
  onlyRefusals = false,
): Promise<boolean> {
  const endpoint = plan.endpoint;
  if (endpoint === undefined) return false;
  try {
    const client = await openConnection({
      endpoint,
      certificate: certificatePem,
      privateKey: privateKeyPem,
      ...optional('clientId', thingName),
      timeoutMs: plan.timeoutMs,
      protocolVersion: plan.protocolVersion,
      ...optional('caCertificate', plan.caCertificate),
      ...optional('signal', plan.signal),
    });
    await closeConnection(client);
    return true;
  } catch (error) {
    if (error instanceof FleetProvisioningError && error.code === 'CONNECTION_LOST') {
      if (onlyRefusals && unreachable(error)) throw error;
      return false;
    }
    throw error;
  }
}

/** True when a connection failed before any broker could judge the certificate (DNS, routing, no listener). */
function unreachable(error: Error): boolean {
  const cause: unknown = error.cause;
  // Structural: a socket error may come from another realm (a test VM), where instanceof Error fails.
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : '';
  return /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT)$/.test(code);
}
