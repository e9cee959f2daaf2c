/**
 * The Fleet Provisioning service itself: one request in, one answer out, as AWS IoT Core gives it.
 * Transport-free: the broker hands it the bytes of a request and publishes whatever it answers.
 */
import { formatIssues, type OperationName } from '../protocol/errors.js';
import { operations } from '../protocol/operations.js';
import { checkSchema, decodePayload } from '../protocol/payload.js';
import type { PayloadFormat } from '../protocol/topics.js';
import { type Answer, rejection } from './answers.js';
import { generateDeviceKey, issueCertificate, type ServerKeyType } from './ca.js';
import type { AccountPolicies } from './connection-policy.js';
import { checkCsr } from './csr.js';
import type { SimulatorIdentity } from './identity.js';
import type { RateLimiter } from './rate-limit.js';
import type { Registry } from './registry.js';
import { runTemplate, templateArn } from './templates.js';
import type { TemplateDefinition } from './types.js';

/** The subject AWS gives the certificates it issues. */
const DEVICE_SUBJECT = 'CN=AWS IoT Certificate';

/** One request as the broker saw it. */
export interface ServiceRequest {
  operation: OperationName;
  format: PayloadFormat;
  templateName?: string;
  payload: Buffer;
  clientId: string;
  /** The certificate the requesting connection presented (none on plain MQTT). */
  certificateId?: string;
}

/** What the service needs. */
export interface ServiceOptions {
  identity: SimulatorIdentity;
  registry: Registry;
  templates: Record<string, TemplateDefinition>;
  serverKeyType: ServerKeyType;
  /** Validity of issued device certificates in days, from now on the real clock; default: until 2049. */
  certificateValidityDays?: number;
  hookTimeoutMs: number;
  rateLimiter?: RateLimiter;
  /** The account's IoT policies: templates attach them, or create them from a `PolicyDocument`. */
  policies?: AccountPolicies;
  /** Aborted when the simulator closes. */
  signal: AbortSignal;
}

/** Answers requests. Never throws: anything unexpected becomes a 500 `InternalFailure`. */
export class ProvisioningService {
  readonly #options: ServiceOptions;

  constructor(options: ServiceOptions) {
    this.#options = options;
  }

  /** The answer to `request`. */
  async handle(request: ServiceRequest): Promise<Answer> {
    if (this.#options.rateLimiter?.take() === false) {
      return rejection('ThrottlingException', 'Rate exceeded: retry with backoff.');
    }
    try {
      return await this.#dispatch(request);
    } catch {
      return rejection('InternalFailure', 'The simulator failed to process the request.');
    }
  }

  async #dispatch(request: ServiceRequest): Promise<Answer> {
    // AWS documents an empty CreateKeysAndCertificate payload; its SDKs send `{}`. Both are fine.
    const empty = request.payload.byteLength === 0 && request.operation === 'CreateKeysAndCertificate';
    const decoded = empty ? { ok: true as const, value: {} } : decodePayload(request.payload, request.format);
    if (!decoded.ok) {
      return rejection('InvalidPayload', `The request is not valid ${request.format} (${decoded.reason}).`);
    }
    switch (request.operation) {
      case 'CreateKeysAndCertificate': {
        const checked = checkSchema(operations.CreateKeysAndCertificate.requestSchema, decoded.value);
        if (!checked.ok) return invalidPayload(checked.issues);
        return this.#createKeysAndCertificate();
      }
      case 'CreateCertificateFromCsr': {
        const checked = checkSchema(operations.CreateCertificateFromCsr.requestSchema, decoded.value);
        if (!checked.ok) return invalidPayload(checked.issues);
        return this.#createCertificateFromCsr(checked.value.certificateSigningRequest);
      }
      case 'RegisterThing': {
        const checked = checkSchema(operations.RegisterThing.requestSchema, decoded.value);
        if (!checked.ok) return invalidPayload(checked.issues);
        return this.#registerThing(
          request,
          checked.value.certificateOwnershipToken,
          checked.value.parameters ?? {},
        );
      }
    }
  }

  /** The `notAfter` of a device certificate issued now, when the simulator issues short-lived ones. */
  #validity(): { notAfter?: Date } {
    const days = this.#options.certificateValidityDays;
    return days === undefined ? {} : { notAfter: new Date(Date.now() + days * 24 * 60 * 60 * 1000) };
  }

  async #createKeysAndCertificate(): Promise<Answer> {
    const { identity, registry, serverKeyType } = this.#options;
    const key = await generateDeviceKey(serverKeyType);
    const { certificatePem, certificateId } = await issueCertificate(identity.ca, {
      publicKey: key.publicKeyDer,
      subject: DEVICE_SUBJECT,
      usage: 'client',
      ...this.#validity(),
    });
    const token = registry.addCertificate({
      certificateId,
      certificatePem,
      issuedBy: 'CreateKeysAndCertificate',
    });
    return {
      kind: 'accepted',
      value: {
        certificateId,
        certificatePem,
        privateKey: key.privateKeyPem,
        certificateOwnershipToken: token,
      },
    };
  }

  async #createCertificateFromCsr(pem: string): Promise<Answer> {
    const { identity, registry } = this.#options;
    const checked = await checkCsr(pem);
    if (!checked.ok) return rejection('InvalidCSR', checked.reason);
    const subject = checked.csr.subject.trim() === '' ? DEVICE_SUBJECT : checked.csr.subject;
    // The certificate carries the CSR's own public key: the private key never left the device.
    const { certificatePem, certificateId } = await issueCertificate(identity.ca, {
      publicKey: checked.csr.publicKey,
      subject,
      usage: 'client',
      ...this.#validity(),
    });
    const token = registry.addCertificate({
      certificateId,
      certificatePem,
      issuedBy: 'CreateCertificateFromCsr',
    });
    return { kind: 'accepted', value: { certificateId, certificatePem, certificateOwnershipToken: token } };
  }

  async #registerThing(
    request: ServiceRequest,
    token: string,
    parameters: Record<string, string>,
  ): Promise<Answer> {
    const { registry, templates, identity } = this.#options;
    const templateName = request.templateName ?? '';
    const template = Object.hasOwn(templates, templateName) ? templates[templateName] : undefined;
    if (template === undefined) {
      return rejection('ResourceNotFound', `The provisioning template ${templateName} does not exist.`);
    }
    const held = registry.reserve(token);
    if (!held.ok) {
      return rejection(
        'InvalidCertificateOwnershipToken',
        `The certificate ownership token is ${tokenProblem(held.problem)}.`,
      );
    }
    let activated = false;
    try {
      const outcome = await runTemplate(
        template,
        {
          claimCertificateId: request.certificateId ?? identity.claimCertificateId,
          certificateId: held.certificate.certificateId,
          certificatePem: held.certificate.certificatePem,
          templateArn: templateArn(templateName),
          clientId: request.clientId,
          parameters,
        },
        {
          hookTimeoutMs: this.#options.hookTimeoutMs,
          signal: this.#options.signal,
          existingThing: (name) => registry.thing(name),
        },
      );
      if (!outcome.ok) {
        const { statusCode, errorCode, errorMessage } = outcome;
        return { kind: 'rejected', value: { statusCode, errorCode, errorMessage } };
      }
      const status = outcome.certificateStatus ?? template.certificateStatus ?? 'ACTIVE';
      const thing =
        outcome.thingName === undefined
          ? undefined
          : { ...outcome.thing, thingName: outcome.thingName, templateName, parameters: outcome.parameters };
      const policies = this.#options.policies;
      const policyNames: string[] = [];
      for (const policy of outcome.policies ?? []) {
        if (policy.document !== undefined) policies?.put(policy.name, policy.document);
        else if (policies?.strict === true && !policies.has(policy.name)) {
          return rejection('ResourceNotFound', `The policy ${policy.name} does not exist.`);
        }
        policyNames.push(policy.name);
      }
      registry.activate(token, status, thing, policyNames);
      activated = true;
      const value: Record<string, unknown> = { deviceConfiguration: outcome.deviceConfiguration };
      if (outcome.thingName !== undefined) value.thingName = outcome.thingName;
      return { kind: 'accepted', value };
    } finally {
      // A RegisterThing that failed leaves the token usable, so the device can fix its request and retry.
      if (!activated) registry.release(token);
    }
  }
}

function invalidPayload(issues: ReadonlyArray<{ path: string; problem: string }>): Answer {
  return rejection('InvalidPayload', `The request payload is not valid (${formatIssues(issues)}).`);
}

function tokenProblem(problem: 'unknown' | 'expired' | 'used' | 'in-use'): string {
  switch (problem) {
    case 'unknown':
      return 'not valid';
    case 'expired':
      return 'expired';
    case 'used':
      return 'already used';
    case 'in-use':
      return 'in use by another RegisterThing';
  }
}
