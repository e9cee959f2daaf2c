/**
 * What the simulated account holds: the certificates it issued, their ownership tokens, and the things
 * RegisterThing made. Tokens are random, bound to one certificate, single use and valid for one hour on
 * the simulator's clock; a certificate still pending when its token expires is deleted, as on AWS.
 */
import { randomBytes } from 'node:crypto';
import { TOKEN_LIFETIME_MS } from '../protocol/operations.js';
import type { CertificateRecord, CertificateStatus, ThingRecord } from './types.js';

export { TOKEN_LIFETIME_MS };

interface TokenEntry {
  readonly certificateId: string;
  readonly expiresAt: number;
  /** Set while a RegisterThing holds the token, so two concurrent requests cannot both use it. */
  reserved: boolean;
  used: boolean;
}

/** Why a token cannot be used (never the token itself). */
export type TokenProblem = 'unknown' | 'expired' | 'used' | 'in-use';

/** The certificates, tokens and things of one simulator. */
export class Registry {
  readonly #now: () => number;
  readonly #certificates = new Map<string, CertificateRecord>();
  readonly #tokens = new Map<string, TokenEntry>();
  readonly #things = new Map<string, ThingRecord>();

  constructor(now: () => number) {
    this.#now = now;
  }

  /** Record a new PENDING_ACTIVATION certificate and return its ownership token. */
  addCertificate(record: Omit<CertificateRecord, 'status' | 'createdAt'>): string {
    this.#certificates.set(record.certificateId, {
      ...record,
      status: 'PENDING_ACTIVATION',
      createdAt: new Date(this.#now()),
    });
    // Several hundred opaque characters, like AWS's tokens (which are sealed blobs, not ids).
    const token = randomBytes(192).toString('base64url');
    this.#tokens.set(token, {
      certificateId: record.certificateId,
      expiresAt: this.#now() + TOKEN_LIFETIME_MS,
      reserved: false,
      used: false,
    });
    return token;
  }

  /**
   * Hold `token` for one RegisterThing. Call {@link Registry.release} if that RegisterThing fails, or
   * {@link Registry.activate} if it succeeds.
   */
  reserve(
    token: string,
  ): { ok: true; certificate: CertificateRecord } | { ok: false; problem: TokenProblem } {
    this.#sweep();
    const entry = this.#tokens.get(token);
    if (entry === undefined) return { ok: false, problem: 'unknown' };
    if (entry.used) return { ok: false, problem: 'used' };
    if (entry.expiresAt <= this.#now()) return { ok: false, problem: 'expired' };
    if (entry.reserved) return { ok: false, problem: 'in-use' };
    const certificate = this.#certificates.get(entry.certificateId);
    if (certificate === undefined) return { ok: false, problem: 'unknown' };
    entry.reserved = true;
    return { ok: true, certificate };
  }

  /** Give a reserved token back after a RegisterThing that failed: it may be used again. */
  release(token: string): void {
    const entry = this.#tokens.get(token);
    if (entry !== undefined) entry.reserved = false;
  }

  /** Use up `token`, set its certificate's status, and attach it to a thing (made if new). */
  activate(
    token: string,
    status: Exclude<CertificateStatus, 'PENDING_ACTIVATION'>,
    thing?: {
      thingName: string;
      templateName: string;
      parameters: Record<string, string>;
      attributes?: Record<string, string>;
      thingGroups?: string[];
      thingTypeName?: string;
    },
    policyNames?: string[],
  ): void {
    const entry = this.#tokens.get(token);
    if (entry === undefined) return;
    entry.used = true;
    entry.reserved = false;
    const certificate = this.#certificates.get(entry.certificateId);
    if (certificate === undefined) return;
    certificate.status = status;
    if (policyNames !== undefined && policyNames.length > 0) certificate.policyNames = [...policyNames];
    if (thing === undefined) return;
    certificate.thingName = thing.thingName;
    const existing = this.#things.get(thing.thingName);
    // As on AWS, provisioning an existing thing again attaches the new certificate to it.
    const attached = (existing?.certificateIds ?? []).filter((id) => id !== entry.certificateId);
    this.#things.set(thing.thingName, {
      ...thing,
      parameters: { ...thing.parameters },
      certificateId: entry.certificateId,
      certificateIds: [...attached, entry.certificateId],
      createdAt: existing?.createdAt ?? new Date(this.#now()),
    });
  }

  /** True when `certificateId` is attached to the thing named `thingName`. */
  isAttached(thingName: string, certificateId: string): boolean {
    return this.#things.get(thingName)?.certificateIds.includes(certificateId) === true;
  }

  /** Set a certificate INACTIVE; false when there is no such certificate. */
  deactivate(certificateId: string): boolean {
    this.#sweep();
    const certificate = this.#certificates.get(certificateId);
    if (certificate === undefined) return false;
    certificate.status = 'INACTIVE';
    return true;
  }

  /** The status of a certificate the simulator issued, or undefined when it never did (or deleted it). */
  statusOf(certificateId: string): CertificateStatus | undefined {
    this.#sweep();
    return this.#certificates.get(certificateId)?.status;
  }

  /** The thing named `thingName`, if RegisterThing made it (the registry's own record: do not change it). */
  thing(thingName: string): ThingRecord | undefined {
    return this.#things.get(thingName);
  }

  /** The names of the policies a template attached to a certificate. */
  policyNamesOf(certificateId: string): string[] {
    return this.#certificates.get(certificateId)?.policyNames ?? [];
  }

  /** Copies of the certificates, oldest first. */
  certificates(): CertificateRecord[] {
    this.#sweep();
    return [...this.#certificates.values()].map((c) => ({ ...c }));
  }

  /** Copies of the things, oldest first. */
  things(): ThingRecord[] {
    return [...this.#things.values()].map((t) => ({
      ...t,
      parameters: { ...t.parameters },
      certificateIds: [...t.certificateIds],
    }));
  }

  /** Delete the certificates whose token expired before RegisterThing activated them. */
  #sweep(): void {
    const now = this.#now();
    for (const entry of this.#tokens.values()) {
      if (entry.used || entry.expiresAt > now) continue;
      const certificate = this.#certificates.get(entry.certificateId);
      if (certificate?.status === 'PENDING_ACTIVATION') this.#certificates.delete(entry.certificateId);
    }
  }
}
