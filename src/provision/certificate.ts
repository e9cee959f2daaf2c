/**
 * The new certificate of one provision() or rotate() call: the key material it is asked for with, the
 * request (CreateKeysAndCertificate or CreateCertificateFromCsr), the check that it carries its key, how
 * long its ownership token is worth a RegisterThing, and the connection that proves it works.
 */
import type { FleetProvisioningClient } from '../client/fleet-provisioning-client.js';
import { assertCsr } from '../device/csr-input.js';
import { certificateMatchesPrivateKey, createCsr, generateKeyPair } from '../device/keys.js';
import { optional } from '../internal/optional.js';
import { FleetProvisioningError, InvalidResponseError } from '../protocol/errors.js';
import { TOKEN_LIFETIME_MS } from '../protocol/operations.js';
import type { RegisterThingResponse } from '../protocol/schemas.js';
import { closeConnection, openConnection } from './connection.js';
import type { ProvisionPlan } from './plan.js';
import { requestOptions } from './session.js';

/** Retrying RegisterThing stops this long before the ownership token expires. */
const TOKEN_MARGIN_MS = 60 * 1000;

/** A certificate the service issued: what it answered, the key it goes with, and when it was asked for. */
export interface Certificate {
  certificateId: string;
  certificatePem: string;
  certificateOwnershipToken: string;
  privateKey: string | undefined;
  issuedAt: number;
}

/** What RegisterThing made of a certificate. */
export type Registration =
  | { kind: 'registered'; answer: RegisterThingResponse }
  /** RegisterThing's outcome was unknown, and the retry with the same token was refused. */
  | { kind: 'refused'; error: unknown };

/** True while the ownership token of a certificate issued at `issuedAt` is still worth a RegisterThing. */
export function tokenValid(issuedAt: number): boolean {
  return Date.now() - issuedAt < TOKEN_LIFETIME_MS - TOKEN_MARGIN_MS;
}

/** What a certificate is asked for with: a key made here and its CSR, the caller's CSR, or nothing (server keys). */
export interface KeyMaterial {
  privateKeyPem: string | undefined;
  csrPem: string | undefined;
}

/** Make or check the key material `plan.keys` asks for (a generated key pair is reported as step `key`). */
export async function keyMaterial(plan: ProvisionPlan): Promise<KeyMaterial> {
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

/** Ask for a certificate with the key material: from the CSR when there is one, with a server-made key otherwise. */
export async function requestCertificate(
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
export function checkCertificate(certificate: Certificate, material: KeyMaterial): void {
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
export async function verifyCertificate(
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
