/**
 * provision(): the whole onboarding in one call. Connect with the claim certificate, get the device its
 * own certificate, check it against the key or CSR, put the credentials on disk, RegisterThing, make the
 * files final, and optionally prove the new certificate connects.
 */
import { closeConnection, openConnection } from './connection.js';
import { type StagedCredentials, stageCredentials } from './credentials.js';
import { endpointUrl } from './endpoint.js';
import { AbortedError, FleetProvisioningError, InvalidResponseError } from './errors.js';
import type { FleetProvisioningClient } from './fleet-provisioning-client.js';
import { certificateMatchesPrivateKey, createCsr, generateKeyPair } from './keys.js';
import { assertCsr } from './option-checks.js';
import {
  type ProvisionedDevice,
  type ProvisionOptions,
  type ProvisionPlan,
  planProvision,
} from './provision-options.js';
import { optional, ProvisionRun, requestOptions } from './provision-run.js';

/** An ownership token is valid for one hour; retrying RegisterThing stops well before that. */
const TOKEN_LIFETIME_MS = 60 * 60 * 1000;
const TOKEN_MARGIN_MS = 60 * 1000;

interface Certificate {
  certificateId: string;
  certificatePem: string;
  certificateOwnershipToken: string;
  privateKey: string | undefined;
  issuedAt: number;
}

/**
 * Provision one device.
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
 * @throws {FleetProvisioningError} `INVALID_ARGUMENT` before any traffic; `REJECTED`, `TIMEOUT`,
 * `CONNECTION_LOST`, `SUBSCRIBE_FAILED`, `PUBLISH_FAILED`, `INVALID_RESPONSE` (including a certificate
 * that does not match the key or CSR), `ABORTED`, `PERSIST_FAILED`. 429, 5xx, timeouts and lost
 * connections are retried first (see `retry`).
 */
export async function provision(options: ProvisionOptions): Promise<ProvisionedDevice> {
  const plan = planProvision(options);
  if (plan.signal?.aborted === true) throw new AbortedError(plan.signal.reason);
  const material = await keyMaterial(plan);
  const run = new ProvisionRun(plan);
  let staged: StagedCredentials | undefined;
  try {
    const certificate = await run.withRetries('certificate', (fpc) =>
      requestCertificate(fpc, plan, material),
    );
    checkCertificate(certificate, material);
    plan.onProgress({ step: 'certificate', certificateId: certificate.certificateId });

    if (plan.outDir !== undefined) {
      staged = await stageCredentials(plan.outDir, {
        certificatePem: certificate.certificatePem,
        ...(certificate.privateKey === undefined ? {} : { privateKeyPem: certificate.privateKey }),
      });
      plan.onProgress({ step: 'staged', directory: staged.directory });
    }

    const registered = await run.withRetries(
      'RegisterThing',
      (fpc) =>
        fpc.registerThing(
          {
            templateName: plan.templateName,
            certificateOwnershipToken: certificate.certificateOwnershipToken,
            ...(plan.parameters === undefined ? {} : { parameters: plan.parameters }),
          },
          requestOptions(plan),
        ),
      () => Date.now() - certificate.issuedAt < TOKEN_LIFETIME_MS - TOKEN_MARGIN_MS,
    );
    plan.onProgress({ step: 'registered', thingName: registered.thingName });
    await run.close();

    const device: ProvisionedDevice = {
      ...(registered.thingName === undefined ? {} : { thingName: registered.thingName }),
      deviceConfiguration: registered.deviceConfiguration,
      certificateId: certificate.certificateId,
      certificatePem: certificate.certificatePem,
      ...(certificate.privateKey === undefined ? {} : { privateKey: certificate.privateKey }),
    };
    if (staged !== undefined) {
      const { files } = await staged.commit({
        ...(registered.thingName === undefined ? {} : { thingName: registered.thingName }),
        certificateId: certificate.certificateId,
        deviceConfiguration: registered.deviceConfiguration,
        templateName: plan.templateName,
        endpoint: plan.endpoint === undefined ? '' : endpointUrl(plan.endpoint),
        provisionedAt: new Date().toISOString(),
      });
      staged = undefined;
      device.files = files;
      plan.onProgress({ step: 'saved', files });
    }
    if (plan.verify && certificate.privateKey !== undefined) {
      device.verified = await verifyCertificate(
        plan,
        certificate.certificatePem,
        certificate.privateKey,
        registered.thingName,
      );
      plan.onProgress({ step: 'verified', accepted: device.verified });
    }
    return device;
  } finally {
    await staged?.discard();
    await run.close();
  }
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
        ...(plan.csrSubject === undefined ? {} : { subject: plan.csrSubject }),
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
    if (error instanceof FleetProvisioningError && error.code === 'CONNECTION_LOST') return false;
    throw error;
  }
}
