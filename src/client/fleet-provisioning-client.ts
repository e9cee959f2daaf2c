/**
 * `FleetProvisioningClient`: the three operations of the Fleet Provisioning MQTT API, one promise each,
 * with a deadline, an `AbortSignal`, subscriptions made once and kept warm, and answers that can never be
 * mistaken for another call's (see docs/correlation.md).
 *
 * @see https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html
 */
import type { z } from 'zod/mini';
import { assertCsr } from '../device/csr-input.js';
import { certificateHoldsPublicKey } from '../device/keys.js';
import type { Timers } from '../internal/deadline.js';
import type { QoS } from '../mqtt/transport.js';
import { assertQos, assertSignal, assertTimeout } from '../protocol/call-options.js';
import { ClientClosedError, InvalidArgumentError, type OperationName } from '../protocol/errors.js';
import { operations } from '../protocol/operations.js';
import { rememberSecret } from '../protocol/redact.js';
import { loadCodec } from '../protocol/payload.js';
import { encodeRequest } from '../protocol/requests.js';
import type {
  CreateCertificateFromCsrRequest,
  CreateCertificateFromCsrResponse,
  CreateKeysAndCertificateResponse,
  RegisterThingRequest,
  RegisterThingResponse,
} from '../protocol/schemas.js';
import { assertFormat, operationTopics, type PayloadFormat } from '../protocol/topics.js';
import type { CallHandle, CallOptions } from './pending-call.js';
import { engineFor, type PairKey, type RequestEngine, type RequestTransport } from './request-engine.js';

/** Options of {@link FleetProvisioningClient}. */
export interface FleetProvisioningClientOptions {
  /** Payload format of every request and answer. Default `'json'`. */
  format?: PayloadFormat;
  /** Default deadline of each call, counted from the call, queue time included. Default 60 000 ms. */
  timeoutMs?: number;
  /** QoS of the subscriptions and requests. Default 1, as AWS's SDKs use. */
  qos?: QoS;
  /**
   * After a call ends with its request sent and unanswered, how long the next call of the same kind
   * waits for the late answer to arrive (and be dropped). Default 2 000 ms. See docs/correlation.md.
   */
  lateAnswerWindowMs?: number;
  /**
   * The clock of the call deadlines: Node's timers by default; unit tests pass their own to drive time.
   * @internal
   */
  timers?: Timers;
}

/** Options of one call: `{ timeoutMs?, signal? }`. */
export type RequestOptions = CallOptions;

/** An operation to subscribe ahead with {@link FleetProvisioningClient.prepare}. */
export type PrepareTarget =
  | {
      /** Subscribe to CreateKeysAndCertificate's answer topics. */
      operation: 'CreateKeysAndCertificate';
    }
  | {
      /** Subscribe to CreateCertificateFromCsr's answer topics. */
      operation: 'CreateCertificateFromCsr';
    }
  | {
      /** Subscribe to RegisterThing's answer topics for one template. */
      operation: 'RegisterThing';
      /** The template whose answer topics to subscribe to. */
      templateName: string;
    };

/** The default deadline of a call, as AWS's SDKs use. */
export const DEFAULT_TIMEOUT_MS = 60_000;
/** The default late-answer window. */
export const DEFAULT_LATE_ANSWER_WINDOW_MS = 2_000;

/**
 * One promise per Fleet Provisioning operation over a connected MQTT client.
 *
 * - Subscribes to an operation's accepted and rejected topics in one SUBSCRIBE, waits for the SUBACK,
 *   then publishes; the subscriptions stay until {@link FleetProvisioningClient.close}.
 * - Calls of one kind (one template, for RegisterThing) run one at a time, first in first out.
 * - Each call has one deadline from the moment it is made; `TIMEOUT` names the phase it was in.
 * - A call made offline fails at once with `CONNECTION_LOST`; a drop fails pending calls at once, and
 *   their requests are taken back from mqtt.js so that a reconnect does not send them again.
 *
 * @example
 * const client = new FleetProvisioningClient(mqttClient, { timeoutMs: 30_000 });
 * await client.prepare([{ operation: 'CreateKeysAndCertificate' }, { operation: 'RegisterThing', templateName: 'Factory' }]);
 * const keys = await client.createKeysAndCertificate();
 * const thing = await client.registerThing({
 *   templateName: 'Factory',
 *   certificateOwnershipToken: keys.certificateOwnershipToken,
 *   parameters: { SerialNumber: 'SN-0042' },
 * });
 * await client.close();
 */
export class FleetProvisioningClient {
  /** The payload format this client speaks. */
  readonly format: PayloadFormat;
  readonly #engine: RequestEngine;
  readonly #timeoutMs: number;
  readonly #qos: QoS;
  readonly #lateAnswerWindowMs: number;
  readonly #timers: Timers | undefined;
  readonly #calls = new Set<CallHandle>();
  #closed: Promise<void> | undefined;

  /**
   * @param transport a connected mqtt.js `MqttClient` (or anything that fits {@link RequestTransport}).
   * @throws {InvalidArgumentError} on a bad option.
   */
  constructor(transport: RequestTransport, options: FleetProvisioningClientOptions = {}) {
    const format = options.format ?? 'json';
    assertFormat(format);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    assertTimeout(timeoutMs);
    const qos = options.qos ?? 1;
    assertQos(qos, 'qos');
    const lateAnswerWindowMs = options.lateAnswerWindowMs ?? DEFAULT_LATE_ANSWER_WINDOW_MS;
    assertTimeout(lateAnswerWindowMs, 'lateAnswerWindowMs');
    this.format = format;
    this.#timeoutMs = timeoutMs;
    this.#qos = qos;
    this.#lateAnswerWindowMs = lateAnswerWindowMs;
    this.#timers = options.timers;
    this.#engine = engineFor(transport);
    this.#engine.attach();
  }

  /** True once {@link FleetProvisioningClient.close} was called. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /**
   * CreateKeysAndCertificate: the service makes a key pair and returns it with a new certificate
   * (`PENDING_ACTIVATION`) and its ownership token.
   * @throws {RejectedError} `REJECTED`; {@link TimeoutError} `TIMEOUT`; `INVALID_RESPONSE`;
   * `SUBSCRIBE_FAILED`; `PUBLISH_FAILED`; `CONNECTION_LOST`; `CLIENT_CLOSED`; `ABORTED`; `INVALID_ARGUMENT`.
   * @see https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html#create-keys-cert
   */
  async createKeysAndCertificate(options?: RequestOptions): Promise<CreateKeysAndCertificateResponse> {
    const answer = await this.#request(
      { operation: 'CreateKeysAndCertificate', templateName: '', payload: {} },
      operations.CreateKeysAndCertificate.acceptedSchema,
      options,
    );
    remember(answer.privateKey);
    remember(answer.certificateOwnershipToken);
    return answer;
  }

  /**
   * CreateCertificateFromCsr: the service signs the CSR; the private key never leaves the device. The
   * answer must certify the CSR's public key, or it is `INVALID_RESPONSE` (or, while an earlier call's
   * answer is still owed, taken for that late answer and dropped).
   * @throws as {@link FleetProvisioningClient.createKeysAndCertificate}; `INVALID_ARGUMENT`, before
   * anything is sent, when the CSR does not parse, its signature does not verify, or its key is one AWS
   * IoT does not sign.
   * @see https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html#create-cert-csr
   */
  async createCertificateFromCsr(
    request: CreateCertificateFromCsrRequest,
    options?: RequestOptions,
  ): Promise<CreateCertificateFromCsrResponse> {
    // Checked in full before anything is sent: parses, signature verifies, a key AWS IoT signs.
    const summary = await assertCsr(request?.certificateSigningRequest);
    const answer = await this.#request(
      { operation: 'CreateCertificateFromCsr', templateName: '', payload: request },
      operations.CreateCertificateFromCsr.acceptedSchema,
      options,
      {
        check: (a) => certificateHoldsPublicKey(a.certificatePem, summary.publicKeyDer),
        issue: { path: 'certificatePem', problem: "does not certify the CSR's public key" },
      },
    );
    remember(answer.certificateOwnershipToken);
    return answer;
  }

  /**
   * RegisterThing: run the provisioning template with the certificate's ownership token; the service
   * creates the thing and activates the certificate.
   * @throws as {@link FleetProvisioningClient.createKeysAndCertificate}; `INVALID_ARGUMENT` for a bad
   * template name, token or parameters.
   * @see https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html#register-thing
   */
  async registerThing(
    request: RegisterThingRequest,
    options?: RequestOptions,
  ): Promise<RegisterThingResponse> {
    if (typeof request !== 'object' || request === null) {
      throw new InvalidArgumentError('registerThing needs { templateName, certificateOwnershipToken }.');
    }
    const { templateName, ...payload } = request;
    if (typeof payload.certificateOwnershipToken === 'string') remember(payload.certificateOwnershipToken);
    return this.#request(
      { operation: 'RegisterThing', templateName, payload },
      operations.RegisterThing.acceptedSchema,
      options,
    );
  }

  /**
   * Subscribe ahead of time to the accepted and rejected topics of several operations, in ONE
   * SUBSCRIBE packet, so that each later call is a single round trip. Pairs already subscribed are
   * skipped. The subscriptions stay until {@link FleetProvisioningClient.close}.
   * @throws `SUBSCRIBE_FAILED`, `CONNECTION_LOST`, `TIMEOUT` (phase `subscribe`), `ABORTED`,
   * `CLIENT_CLOSED`, `INVALID_ARGUMENT`.
   * @example
   * await client.prepare([{ operation: 'CreateKeysAndCertificate' }, { operation: 'RegisterThing', templateName: 'Factory' }]);
   */
  async prepare(targets: readonly PrepareTarget[], options?: RequestOptions): Promise<void> {
    if (!Array.isArray(targets)) throw new InvalidArgumentError('prepare needs an array of operations.');
    const keys: PairKey[] = targets.map((target: PrepareTarget) => {
      const operation: unknown = target?.operation;
      if (typeof operation !== 'string' || !Object.hasOwn(operations, operation)) {
        throw new InvalidArgumentError(`Unknown operation ${JSON.stringify(operation)} in prepare().`);
      }
      const templateName = target.operation === 'RegisterThing' ? target.templateName : '';
      return {
        operation: target.operation,
        topics: operationTopics(target.operation, this.format, templateName),
        format: this.format,
      };
    });
    const { timeoutMs, signal } = this.#options(options);
    this.#assertOpen();
    const loading = loadCodec(this.format);
    if (loading !== undefined) {
      await loading;
      this.#assertOpen();
    }
    return this.#track(
      this.#engine.prepare(keys, { qos: this.#qos, timeoutMs, signal, timers: this.#timers }),
    );
  }

  /**
   * Reject every pending call with `CLIENT_CLOSED`, stop listening to the MQTT client, and UNSUBSCRIBE
   * (when no other `FleetProvisioningClient` on the same connection still uses the topics). Does not
   * close the MQTT client. Safe to call twice.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    // Newest first, so that ending a running call does not start a queued one of ours.
    for (const call of [...this.#calls].reverse()) call.reject(new ClientClosedError());
    await this.#engine.detach();
  }

  /**
   * The one path of every call: check and encode the request, queue it on its topic pair, and read the
   * answer with `schema` (the response schema travels with the call, as the MCP SDK's
   * `request(req, resultSchema, options)` does). The three public methods are thin wrappers.
   */
  #request<T>(
    request: { operation: OperationName; templateName: string; payload: unknown },
    schema: z.ZodMiniType<T>,
    options: RequestOptions | undefined,
    identify?: { check(answer: T): boolean; issue: { path: string; problem: string } },
  ): Promise<T> {
    // Not async, and the call's own promise handed back as it is: each layer of promises is a turn of the
    // microtask queue between the answer and the caller. The public methods are async, so a bad argument
    // thrown here still reaches the caller as a rejection.
    const send = (): Promise<T> => {
      const { operation, templateName, payload } = request;
      const topics = operationTopics(operation, this.format, templateName);
      const encoded = encodeRequest(operation, payload, this.format);
      const { timeoutMs, signal } = this.#options(options);
      this.#assertOpen();
      const call = this.#engine.request({
        operation,
        topics,
        format: this.format,
        payload: encoded,
        schema,
        qos: this.#qos,
        timeoutMs,
        lateAnswerWindowMs: this.#lateAnswerWindowMs,
        signal,
        identify,
        timers: this.#timers,
      });
      return this.#track(call);
    };
    const loading = loadCodec(this.format);
    return loading === undefined ? send() : loading.then(send);
  }

  #track<T>(call: { promise: Promise<T> } & CallHandle): Promise<T> {
    this.#calls.add(call);
    const forget = () => this.#calls.delete(call);
    call.promise.then(forget, forget);
    return call.promise;
  }

  #options(options: RequestOptions | undefined): { timeoutMs: number; signal: AbortSignal | undefined } {
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new InvalidArgumentError('Call options must be an object: { timeoutMs?, signal? }.');
    }
    const timeoutMs = options?.timeoutMs ?? this.#timeoutMs;
    assertTimeout(timeoutMs);
    const signal = options?.signal;
    assertSignal(signal);
    return { timeoutMs, signal };
  }

  #assertOpen(): void {
    if (this.#closed !== undefined) throw new ClientClosedError('The client is closed: make a new one.');
  }
}

/** One long opaque run (a token): what `redact()` removes without being told, besides PEM blocks. */
const OPAQUE_RUN = /^[A-Za-z0-9+/_-]{100,}={0,2}$/;

/**
 * True when `secret` is one whole PEM block or one long opaque run: shapes `redact()` removes without
 * being told. The PEM test reads the BEGIN and END lines only (a PEM body never holds a `-`), so a 2 KB
 * private key costs no scan of its body.
 */
function redactedByShape(secret: string): boolean {
  if (!secret.startsWith('-----BEGIN ')) return OPAQUE_RUN.test(secret);
  const labelEnd = secret.indexOf('-----', 11);
  if (labelEnd < 12 || !/^[A-Z0-9 ]+$/.test(secret.slice(11, labelEnd))) return false;
  const endLine = `-----END ${secret.slice(11, labelEnd)}-----`;
  const end = secret.indexOf('-----', labelEnd + 5);
  return end > 0 && secret.startsWith(endLine, end) && secret.slice(end + endLine.length).trim() === '';
}

/**
 * Register a secret with `redact()`, unless `redact()` already removes it by its shape. Remembering
 * costs a hash of the whole value on every call (tens of microseconds for a private key), which is a
 * large share of a warm call; a PEM key or a long opaque token is redacted by shape anyway.
 */
function remember(secret: string): void {
  if (!redactedByShape(secret)) rememberSecret(secret);
}
