/**
 * The certificates one provision() or rotate() call gave up on: each is reported (progress step
 * `abandoned`, then `abandonedCertificateIds` in the result), and its staged set, if any, is marked
 * abandoned at once but deleted only once the result names it.
 */
import type { StagedCredentials } from '../device/staged-set.js';
import { settleWithin } from '../internal/deadline.js';
import type { ProvisionPlan } from './plan.js';
import type { ProvisionedDevice } from './types.js';

/** The certificates a call gave up on, and their staged sets. */
export class AbandonedCertificates {
  readonly #plan: ProvisionPlan;
  readonly #abandoned: Array<{ certificateId: string; staged: StagedCredentials | undefined }> = [];

  constructor(plan: ProvisionPlan) {
    this.#plan = plan;
  }

  /** Give up on a certificate: report it, and mark its staged set (if any) abandoned on disk. */
  async abandon(certificateId: string, staged: StagedCredentials | undefined, reason: string): Promise<void> {
    this.#abandoned.push({ certificateId, staged });
    this.#plan.onProgress({ step: 'abandoned', certificateId, reason });
    if (staged !== undefined) await settleWithin(staged.markAbandoned(), this.#plan.timeoutMs);
  }

  /** Report a certificate given up on that has no staged set to mark. */
  report(certificateId: string, reason: string): void {
    this.#abandoned.push({ certificateId, staged: undefined });
    this.#plan.onProgress({ step: 'abandoned', certificateId, reason });
  }

  /** The result names every certificate given up on; only now may their staged keys go. */
  async finish(device: ProvisionedDevice): Promise<ProvisionedDevice> {
    for (const { staged } of this.#abandoned) {
      if (staged !== undefined) await settleWithin(staged.discard(), this.#plan.timeoutMs);
    }
    const ids = [...new Set(this.#abandoned.map((a) => a.certificateId))];
    return { ...device, abandonedCertificateIds: ids };
  }

  /** The call ends: the staged sets not deleted stay on disk for the next call, in this process or another. */
  leave(): void {
    for (const { staged } of this.#abandoned) staged?.leave();
  }
}
