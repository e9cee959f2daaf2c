/**
 * The connection and subscriptions behind one provision() call, and its retry loop: a step that fails
 * with something worth retrying runs again after a jittered backoff, on a fresh connection when the
 * failure left an answer unaccounted for.
 */
import type { MqttClient } from 'mqtt';
import { FleetProvisioningClient } from '../client/fleet-provisioning-client.js';
import { settleWithin } from '../internal/deadline.js';
import { delay } from '../internal/delay.js';
import { optional } from '../internal/optional.js';
import type { MqttTransport } from '../mqtt/transport.js';
import { ConnectionLostError, FleetProvisioningError } from '../protocol/errors.js';
import { closeConnection, openConnection } from './connection.js';
import { endpointUrl } from './endpoint.js';
import type { ProvisionPlan } from './plan.js';
import { backoffDelay, isRetryable } from './retry.js';

interface Session {
  client: MqttTransport;
  fpc: FleetProvisioningClient;
  /** The connection provision() opened (undefined when the caller handed one in). */
  owned: MqttClient | undefined;
}

/** The per-operation deadline and the caller's signal, as FleetProvisioningClient takes them. */
export function requestOptions(plan: ProvisionPlan): { timeoutMs: number; signal?: AbortSignal } {
  return { timeoutMs: plan.timeoutMs, ...optional('signal', plan.signal) };
}

/** The connection and client of one provision() call, replaced when a retry needs a fresh connection. */
export class ProvisionRun {
  readonly #plan: ProvisionPlan;
  #session: Session | undefined;
  #attempt = 0;

  constructor(plan: ProvisionPlan) {
    this.#plan = plan;
  }

  /**
   * Run `step` until it succeeds, fails with something not worth retrying, or the tries run out.
   * `mayRetry` can veto a further try (an ownership token about to expire).
   */
  async withRetries<T>(
    operation: string,
    step: (fpc: FleetProvisioningClient) => Promise<T>,
    mayRetry: () => boolean = () => true,
    retryable: (error: unknown) => boolean = isRetryable,
  ): Promise<T> {
    const { retry, signal, onProgress } = this.#plan;
    for (let attempt = 1; ; attempt++) {
      try {
        const session = await this.#open();
        return await step(session.fpc);
      } catch (error) {
        if (attempt >= retry.attempts || !retryable(error) || !mayRetry()) throw error;
        const code = error instanceof FleetProvisioningError ? error.code : 'UNKNOWN';
        // AWS answers only the connection that asked: a fresh connection cannot receive a stray answer
        // to the call that went unanswered. A throttled (429/5xx) call keeps its connection.
        if (code !== 'REJECTED') await this.#drop();
        const delayMs = backoffDelay(attempt, retry);
        onProgress({ step: 'retrying', operation, attempt: attempt + 1, delayMs, code });
        await delay(delayMs, signal);
      }
    }
  }

  async #open(): Promise<Session> {
    if (this.#session !== undefined) {
      if (this.#session.client.connected) return this.#session;
      await this.#drop();
    }
    const plan = this.#plan;
    this.#attempt++;
    let client = plan.client;
    let owned: MqttClient | undefined;
    if (client === undefined) {
      const endpoint = plan.endpoint;
      if (endpoint === undefined) throw new ConnectionLostError('No endpoint to connect to.');
      plan.onProgress({ step: 'connecting', endpoint: endpointUrl(endpoint), attempt: this.#attempt });
      owned = await openConnection({
        endpoint,
        timeoutMs: plan.timeoutMs,
        protocolVersion: plan.protocolVersion,
        ...optional('certificate', plan.claimCertificate),
        ...optional('privateKey', plan.claimPrivateKey),
        ...optional('caCertificate', plan.caCertificate),
        ...optional('clientId', plan.clientId),
        ...optional('signal', plan.signal),
      });
      client = owned;
    }
    let fpc: FleetProvisioningClient;
    try {
      fpc = new FleetProvisioningClient(client, { format: plan.format, timeoutMs: plan.timeoutMs });
    } catch (error) {
      // Never leave a connection of ours open behind an error.
      if (owned !== undefined) await closeConnection(owned);
      throw error;
    }
    this.#session = { client, fpc, owned };
    // Both pairs in one SUBSCRIBE: the certificate operation's and RegisterThing's.
    await fpc.prepare(
      [
        { operation: plan.keys.kind === 'server' ? 'CreateKeysAndCertificate' : 'CreateCertificateFromCsr' },
        { operation: 'RegisterThing', templateName: plan.templateName },
      ],
      requestOptions(plan),
    );
    plan.onProgress({ step: 'subscribed', attempt: this.#attempt });
    return this.#session;
  }

  /**
   * End the session, bounded: a broker that never acknowledges the UNSUBSCRIBE, or a half-open
   * connection, must not hold provision() up. A connection provision() owns is closed first (its
   * subscriptions end with it), waiting at most {@link CLOSE_BOUND_MS} (or the call's deadline, when
   * shorter); on a handed-in client the UNSUBSCRIBE is sent and not waited for.
   */
  async #drop(): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    if (session === undefined) return;
    const boundMs = Math.min(this.#plan.timeoutMs, CLOSE_BOUND_MS);
    if (session.owned !== undefined) {
      await closeConnection(session.owned, boundMs);
      await settleWithin(session.fpc.close(), boundMs);
      return;
    }
    // A handed-in client: the listeners go at once and the UNSUBSCRIBE is sent, but its UNSUBACK is not
    // waited for (the hand-written flow does not pay that round trip either). The release stays bounded
    // (it gives up on the UNSUBACK after a few seconds, or when the client closes) and a refusal in the
    // UNSUBACK is reported as a process warning.
    void session.fpc.close();
  }

  /** Release the subscriptions and close the connection provision() opened. Safe to call twice. */
  close(): Promise<void> {
    return this.#drop();
  }
}

/** The longest provision() waits for a connection it opened to close: 2 s. */
export const CLOSE_BOUND_MS = 2_000;
