/**
 * The broker's hooks: what the simulator does with each CONNECT, SUBSCRIBE, UNSUBSCRIBE and PUBLISH.
 * Every request goes policy → fault script → service → answer, and every step is logged. Made before
 * the broker (it is the broker's hooks); it answers through the broker once {@link Dispatch.answerThrough}
 * hands it over.
 */
import type { EventEmitter } from 'node:events';
import { delay } from '../internal/delay.js';
import { optional } from '../internal/optional.js';
import { encodePayload } from '../protocol/payload.js';
import { operationTopics, type ParsedTopic, parseTopic } from '../protocol/topics.js';
import {
  type Answer,
  malformedPayload,
  oversizedPayload,
  rejection,
  scriptedRejection,
  wrongShapePayload,
} from './answers.js';
import type { BrokerConnection, BrokerHooks, ConnectAttempt, RunningBroker } from './broker.js';
import type { AccountPolicies } from './connection-policy.js';
import type { Faults } from './faults.js';
import { iotResource } from './iam-policy.js';
import { isSys, mayPublish, maySubscribe, type Role } from './policy.js';
import { RateLimiter } from './rate-limit.js';
import type { Registry } from './registry.js';
import type { RequestLog } from './request-log.js';
import type { ProvisioningService } from './service.js';
import type { Fault, RequestLogEntry } from './types.js';

/** A request the service is to answer, with the topic it came on. */
type Request = ParsedTopic & { kind: 'request'; requestId?: number };

/** The simulator's answer to every packet the broker lets through to it. */
export class Dispatch implements BrokerHooks {
  readonly #registry: Registry;
  readonly #faults: Faults;
  readonly #log: RequestLog;
  readonly #service: ProvisioningService;
  readonly #signal: AbortSignal;
  readonly #policies: AccountPolicies | undefined;
  readonly #tls: boolean;
  readonly #claimCertificateId: string;
  readonly #events: EventEmitter;
  readonly #inFlight = new Set<Promise<void>>();
  /** One token bucket per connection, gone with the connection. */
  readonly #clientRates = new WeakMap<BrokerConnection, RateLimiter>();
  readonly #perClient: { perSecond: number; now: () => number };
  #broker: RunningBroker | undefined;
  #requests = 0;

  constructor(parts: {
    registry: Registry;
    faults: Faults;
    service: ProvisioningService;
    log: RequestLog;
    /** Fires when the simulator closes: a delayed answer is then not sent. */
    signal: AbortSignal;
    tls: boolean;
    claimCertificateId: string;
    /** Where `answer` events go. */
    events: EventEmitter;
    policies?: AccountPolicies | undefined;
    /** Requests a second each connection may make, on the simulator's clock. */
    perClient: { perSecond: number; now: () => number };
  }) {
    this.#registry = parts.registry;
    this.#faults = parts.faults;
    this.#service = parts.service;
    this.#log = parts.log;
    this.#signal = parts.signal;
    this.#tls = parts.tls;
    this.#claimCertificateId = parts.claimCertificateId;
    this.#events = parts.events;
    this.#policies = parts.policies;
    this.#perClient = parts.perClient;
  }

  /** Send answers through `broker` from now on; until then (and after close) none is sent. */
  answerThrough(broker: RunningBroker | undefined): void {
    this.#broker = broker;
  }

  /** Resolves when every request being answered has been. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
  }

  /** PUBLISH from a client: policy, then (for a request) the fault script and the service. */
  publish(connection: BrokerConnection, topic: string, payload: Buffer): boolean {
    const parsed = parseTopic(topic);
    const described = describe(parsed);
    const byPolicy = this.#policies?.check(connection, 'iot:Publish', iotResource('topic', topic));
    // `$SYS` is no one's, whatever a policy says (AWS IoT has none).
    const builtIn = () => mayPublish(connection.role, topic) || this.#ownThingMayProvision(connection, topic);
    if (isSys(topic) || !(byPolicy ?? builtIn())) {
      this.#log.add({ clientId: connection.clientId, type: 'publish', topic, ...described, allowed: false });
      return false;
    }
    if (parsed?.kind !== 'request') {
      this.#log.add({ clientId: connection.clientId, type: 'publish', topic, ...described, allowed: true });
      return true;
    }
    const request: Request = { ...parsed, kind: 'request' };
    const fault = this.#faults.takeForRequest(request.operation);
    this.#requests += 1;
    const requestId = this.#requests;
    this.#log.add({
      requestId,
      clientId: connection.clientId,
      type: 'publish',
      topic,
      ...described,
      allowed: true,
      ...optional('fault', fault?.type),
    });
    if (fault?.type === 'disconnect') return false;
    const work = this.#respond(connection, { ...request, requestId }, payload, fault).finally(() =>
      this.#inFlight.delete(work),
    );
    this.#inFlight.add(work);
    return true;
  }

  /** SUBSCRIBE: policy, then a scripted refusal of the operation's answer topics. */
  subscribe(connection: BrokerConnection, filter: string, packet: Map<string, boolean>): boolean {
    const parsed = parseTopic(filter);
    const byPolicy = this.#policies?.check(connection, 'iot:Subscribe', iotResource('topicfilter', filter));
    let granted =
      !isSys(filter) &&
      (byPolicy ?? (maySubscribe(connection.role, filter) || this.#ownThingMayProvision(connection, filter)));
    let refused = false;
    if (granted && parsed !== undefined && parsed.kind !== 'request') {
      refused = packet.get(parsed.operation) ?? this.#faults.takeForSubscribe(parsed.operation);
      packet.set(parsed.operation, refused);
      granted = !refused;
    }
    this.#log.add({
      clientId: connection.clientId,
      type: 'subscribe',
      topic: filter,
      ...describe(parsed),
      allowed: granted,
      ...(refused ? { fault: 'refuseSubscribe' as const } : {}),
    });
    return granted;
  }

  unsubscribe(connection: BrokerConnection, filter: string): void {
    this.#log.add({
      clientId: connection.clientId,
      type: 'unsubscribe',
      topic: filter,
      ...describe(parseTopic(filter)),
    });
  }

  /** CONNECT: the claim certificate, an ACTIVE device certificate, or (plain MQTT) anyone. */
  connect(attempt: ConnectAttempt): Role | undefined {
    let role: Role | undefined;
    let shown: RequestLogEntry['role'] = 'unknown';
    if (!this.#tls) {
      role = shown = 'anonymous';
    } else if (attempt.certificateId === this.#claimCertificateId) {
      role = shown = 'claim';
    } else if (attempt.certificateId !== undefined) {
      const status = this.#registry.statusOf(attempt.certificateId);
      if (status !== undefined) shown = 'device';
      // PENDING_ACTIVATION and INACTIVE certificates are refused, as AWS refuses them.
      if (status === 'ACTIVE') role = 'device';
    }
    if (role !== undefined) {
      const connection = {
        role,
        clientId: attempt.clientId,
        ...optional('certificateId', attempt.certificateId),
      };
      // IoT Core checks iot:Connect on client/<client id> against the certificate's policies.
      const allowed = this.#policies?.check(
        connection,
        'iot:Connect',
        iotResource('client', attempt.clientId),
      );
      if (allowed === false) role = undefined;
    }
    this.#log.add({
      clientId: attempt.clientId,
      type: 'connect',
      role: shown,
      allowed: role !== undefined,
      ...optional('certificateId', attempt.certificateId),
      ...optional('alpnProtocol', attempt.alpnProtocol),
    });
    return role;
  }

  /**
   * The built-in rule for a device certificate without an attached policy: it may use the provisioning
   * topics (no wildcards) to replace itself when it connects as its own thing, that is with the name of a
   * thing it is attached to as client id. This is what the device policy of a rotation setup allows on
   * AWS (and what `iot:Connection.Thing.IsAttached` expresses there).
   */
  #ownThingMayProvision(connection: BrokerConnection, topic: string): boolean {
    if (connection.role !== 'device' || connection.certificateId === undefined) return false;
    if (parseTopic(topic) === undefined) return false;
    return this.#registry.isAttached(connection.clientId, connection.certificateId);
  }

  /** A TLS handshake that failed never reaches CONNECT: it is logged with an empty client id. */
  handshakeFailed(): void {
    this.#log.add({ clientId: '', type: 'connect', role: 'unknown', allowed: false });
  }

  async #respond(
    connection: BrokerConnection,
    request: Request,
    payload: Buffer,
    fault: Fault | undefined,
  ): Promise<void> {
    const send = (kind: 'accepted' | 'rejected', bytes: Buffer, extra: Partial<RequestLogEntry> = {}) =>
      this.#send(connection, request, kind, bytes, {
        ...extra,
        ...optional('fault', fault?.type),
      });
    const answer = (a: Answer) => send(a.kind, encodePayload(a.value, request.format), rejectedFields(a));
    const normal = async (): Promise<Answer> => {
      if (!this.#takeClientToken(connection)) {
        return rejection('ThrottlingException', 'Rate exceeded for this connection: retry with backoff.');
      }
      return this.#service.handle({
        operation: request.operation,
        format: request.format,
        ...optional('templateName', request.templateName),
        payload,
        clientId: connection.clientId,
        ...optional('certificateId', connection.certificateId),
      });
    };
    switch (fault?.type) {
      case undefined:
      case 'normal':
      case 'disconnect':
      case 'refuseSubscribe':
        return answer(await normal());
      case 'reject':
        return answer(scriptedRejection(fault.statusCode, fault.errorCode, fault.errorMessage));
      case 'silent':
        return;
      case 'runThenDisconnect':
        await normal();
        connection.client.close();
        return;
      case 'delay': {
        const result = await normal();
        if (await this.#sleep(fault.ms)) await answer(result);
        return;
      }
      case 'duplicate': {
        const result = await normal();
        await answer(result);
        return answer(result);
      }
      case 'acceptThenReject':
        await answer(await normal());
        return answer(
          scriptedRejection(500, 'InternalFailure', 'Rejected after an accepted answer (fault script).'),
        );
      case 'malformed':
        return send('accepted', malformedPayload(request.format));
      case 'wrongShape':
        return send('accepted', wrongShapePayload(request.operation, request.format));
      case 'oversized':
        return send('accepted', oversizedPayload(request.operation, request.format));
    }
  }

  async #send(
    connection: BrokerConnection,
    request: Request,
    kind: 'accepted' | 'rejected',
    bytes: Buffer,
    extra: Partial<RequestLogEntry>,
  ): Promise<void> {
    const broker = this.#broker;
    if (broker === undefined) return;
    const topic = operationTopics(request.operation, request.format, request.templateName ?? '')[kind];
    // A policy that does not allow iot:Receive on the answer topic means the answer never arrives.
    const receive = this.#policies?.check(connection, 'iot:Receive', iotResource('topic', topic));
    if (receive === false) {
      this.#log.add({ clientId: connection.clientId, type: 'answer', topic, kind, allowed: false, ...extra });
      return;
    }
    // Logged as it goes out, so the log never shows an answer after something the client did on receiving it.
    const entry = this.#log.add({
      clientId: connection.clientId,
      type: 'answer',
      topic,
      operation: request.operation,
      kind,
      format: request.format,
      ...optional('requestId', request.requestId),
      ...extra,
    });
    this.#events.emit('answer', entry);
    await broker.sendAnswer(connection, topic, bytes);
  }

  /** Take one request's worth from `connection`'s bucket; false when it is over its rate. */
  #takeClientToken(connection: BrokerConnection): boolean {
    let limiter = this.#clientRates.get(connection);
    if (limiter === undefined) {
      limiter = new RateLimiter(this.#perClient.perSecond, this.#perClient.now);
      this.#clientRates.set(connection, limiter);
    }
    return limiter.take();
  }

  /** Wait `ms`; false when the simulator closed meanwhile. */
  #sleep(ms: number): Promise<boolean> {
    return delay(ms, this.#signal).then(
      () => true,
      () => false,
    );
  }
}

function describe(parsed: ParsedTopic | undefined): Partial<RequestLogEntry> {
  if (parsed === undefined) return {};
  return { operation: parsed.operation, kind: parsed.kind, format: parsed.format };
}

function rejectedFields(answer: Answer): Partial<RequestLogEntry> {
  if (answer.kind !== 'rejected') return {};
  return { statusCode: answer.value.statusCode, errorCode: answer.value.errorCode };
}
