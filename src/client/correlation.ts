/**
 * Where an answer is matched to its call. The service has no correlation token, so the only thing that
 * ties an answer to a request is timing: the calls of one topic pair (one operation, one format, one
 * template) run one at a time, first in first out, and an answer counts only while exactly one request
 * of the pair is out. Around that rule sit the guards that keep a late answer from settling a later call:
 *
 * - an answer that arrives while no request of the pair is out is dropped unread;
 * - after an answered call, the next call waits one turn of the event loop, so duplicates already
 *   received are dropped before its request goes out;
 * - after a call ends with its request out and unanswered (timeout, abort, close), the next call waits
 *   in quarantine until that late answer shows up (and is dropped) or the window passes;
 * - an operation that can recognise its own answer (CreateCertificateFromCsr: the certificate carries
 *   the CSR's public key) drops a foreign one while a late answer is still owed, and takes a rejection
 *   that arrives then for the late answer too (a rejection carries nothing to recognise).
 *
 * docs/correlation.md states the guarantee and its limits.
 */

import type { QoS } from '../mqtt/transport.js';
import {
  ConnectionLostError,
  InvalidResponseError,
  type OperationName,
  PublishFailedError,
  RejectedError,
  reasonMeaning,
} from '../protocol/errors.js';
import { readPayload } from '../protocol/payload.js';
import { ErrorResponseSchema } from '../protocol/schemas.js';
import type { OperationTopics, PayloadFormat } from '../protocol/topics.js';
import type { CallEnd, CallHandle } from './pending-call.js';

/**
 * What reading an accepted answer decided: it settled the call; it carries another request's result
 * (`'foreign'`); or it repeats a certificate this pair already delivered (`'repeat'`: a duplicate, dropped,
 * the call stays pending).
 */
export type AcceptVerdict = 'settled' | 'foreign' | 'repeat';

/** How many delivered certificate ids a pair remembers to recognise a duplicate answer. */
const REMEMBERED_CERTIFICATES = 64;

/** One request waiting for, or holding, its pair. */
export interface PairRequest {
  readonly call: CallHandle;
  readonly payload: Buffer;
  readonly qos: QoS;
  /** How long to hold the next call after this one ends unanswered with its request out. */
  readonly lateAnswerWindowMs: number;
  /**
   * Read an accepted answer: decode, validate, and settle the call, or say the answer belongs to
   * another request (`'foreign'`, the call stays pending). May take a moment (a certificate check).
   */
  accept(bytes: Buffer, topic: string): AcceptVerdict | Promise<AcceptVerdict>;
  /** Why a foreign answer is invalid when no late answer was owed. */
  readonly foreignIssue?: { path: string; problem: string };
}

/** What a pair needs from the engine that owns it. */
export interface PairDriver {
  readonly connected: boolean;
  /** Resolves once the pair's accepted and rejected topics are subscribed. */
  subscribe(pair: TopicPair, qos: QoS): Promise<void>;
  /** Publish a request; `messageId` when the client could tell which one it used. */
  publish(
    topic: string,
    payload: Buffer,
    qos: QoS,
  ): { sent: Promise<unknown>; messageId: number | undefined };
  /** Make sure the client will not resend a request whose call ended (mqtt.js keeps QoS 1 ones). */
  forget(messageId: number): void;
}

interface Active {
  readonly request: PairRequest;
  /** The request has been handed to the client: from here on an answer may be its own. */
  out: boolean;
  /** When the request went out (`performance.now()`), to size the settle window after the answer. */
  sentAt: number;
  /** The broker has acknowledged the request, or refused it; the client holds no copy any more. */
  acked: boolean;
  /** The request never reached the service (the broker refused it, or the client could not send it). */
  refused: boolean;
  messageId: number | undefined;
}

type Hold =
  | { kind: 'gap'; handle: NodeJS.Immediate }
  | { kind: 'settle' | 'quarantine'; handle: NodeJS.Timeout };

/** The longest a pair is held after an answer, waiting for duplicates of it. */
export const SETTLE_MAX_MS = 25;

/** One topic pair: its FIFO queue of calls and the state that matches answers to them. */
export class TopicPair {
  readonly operation: OperationName;
  readonly topics: OperationTopics;
  readonly format: PayloadFormat;
  /** Settles when the pair's topics are subscribed; the engine sets and clears it. */
  ready: Promise<void> | undefined;
  readonly #driver: PairDriver;
  readonly #queue: PairRequest[] = [];
  #active: Active | undefined;
  #hold: Hold | undefined;
  /** Answers still owed by requests that ended unanswered; the quarantine waits for them. */
  #owed = 0;
  /** The same count, kept after the quarantine gives up on them: lets `accept` drop a foreign answer. */
  #unanswered = 0;
  /** Certificate ids already delivered on this pair, oldest first (a Set keeps insertion order). */
  readonly #certificates = new Set<string>();
  /** The shortest round trip (request out → answer in) seen on this pair, in ms. */
  #roundTrip = Number.POSITIVE_INFINITY;
  /** While an accepted answer is being checked, later messages wait here, in order. */
  #held: Array<[string, Buffer]> | undefined;

  constructor(operation: OperationName, topics: OperationTopics, format: PayloadFormat, driver: PairDriver) {
    this.operation = operation;
    this.topics = topics;
    this.format = format;
    this.#driver = driver;
  }

  /** Calls waiting or running on this pair. */
  get pending(): number {
    return this.#queue.length + (this.#active === undefined ? 0 : 1);
  }

  /** Queue a request; it runs when every earlier one has ended. */
  enqueue(request: PairRequest): void {
    this.#queue.push(request);
    request.call.onEnd((end) => this.#ended(request, end));
    this.#pump();
  }

  /**
   * Fail every call of the pair and forget owed answers: after a lost connection none can arrive (the
   * service answers only the connection that asked, and a clean session drops what was in flight).
   */
  failAll(error: () => unknown): void {
    // Empty the queue first, so that ending the running call starts nothing.
    const queued = this.#queue.splice(0);
    this.#active?.request.call.reject(error());
    for (const request of queued) request.call.reject(error());
    this.#owed = 0;
    this.#unanswered = 0;
    this.#release();
    this.#pump();
  }

  /**
   * True when `certificateId` was already delivered to a call of this pair. AWS never issues one id twice,
   * so an accepted answer that repeats it is a duplicate, whenever it arrives: it settles no later call.
   */
  delivered(certificateId: string): boolean {
    return this.#certificates.has(certificateId);
  }

  /** Remember a certificate id delivered to a call (the last {@link REMEMBERED_CERTIFICATES}). */
  remember(certificateId: string): void {
    this.#certificates.add(certificateId);
    if (this.#certificates.size > REMEMBERED_CERTIFICATES) {
      const oldest = this.#certificates.values().next();
      if (oldest.done !== true) this.#certificates.delete(oldest.value);
    }
  }

  /** A message on the accepted or rejected topic. Never throws. */
  receive(topic: string, bytes: Buffer): void {
    if (this.#held !== undefined) {
      this.#held.push([topic, bytes]);
      return;
    }
    const active = this.#active;
    if (active === undefined || !active.out || active.request.call.done) {
      this.#stray();
      return;
    }
    const { request } = active;
    if (topic === this.topics.rejected) {
      // A pair that recognises its own accepted answer cannot recognise a rejection: while an earlier
      // call's answer is still owed, a rejection may be that one, and must not settle this call.
      if (request.foreignIssue !== undefined && this.#unanswered > 0) {
        this.#unanswered--;
        this.#owed = Math.max(0, this.#owed - 1);
        return;
      }
      this.#rejected(request, topic, bytes);
      return;
    }
    const verdict = request.accept(bytes, topic);
    if (verdict === 'settled' || verdict === 'repeat') return;
    if (verdict === 'foreign') {
      this.#foreign(request, topic);
      return;
    }
    const held: Array<[string, Buffer]> = [];
    this.#held = held;
    void verdict
      .then(
        (v) => {
          if (v === 'foreign') this.#foreign(request, topic);
        },
        (error: unknown) => request.call.reject(error, 'answered'),
      )
      .finally(() => {
        this.#held = undefined;
        for (const [t, b] of held) this.receive(t, b);
      });
  }

  #rejected(request: PairRequest, topic: string, bytes: Buffer): void {
    const read = readPayload(ErrorResponseSchema, bytes, this.format);
    const operation = this.operation;
    const error = read.ok
      ? new RejectedError({ operation, ...read.value, errorMessage: read.value.errorMessage ?? '' })
      : new InvalidResponseError({ operation, topic, issues: read.issues });
    request.call.reject(error, 'answered');
  }

  /** An accepted answer that carries another request's result: the late one we owe, or a bad answer. */
  #foreign(request: PairRequest, topic: string): void {
    if (request.call.done) return;
    if (this.#unanswered > 0) {
      this.#unanswered--;
      this.#owed = Math.max(0, this.#owed - 1);
      return;
    }
    const issue = request.foreignIssue ?? { path: '(root)', problem: 'answers another request' };
    request.call.reject(
      new InvalidResponseError({ operation: this.operation, topic, issues: [issue] }),
      'answered',
    );
  }

  /** An answer no pending request can own: a late or duplicate one. It pays what was owed. */
  #stray(): void {
    this.#unanswered = Math.max(0, this.#unanswered - 1);
    if (this.#owed === 0) return;
    this.#owed--;
    if (this.#owed === 0 && this.#hold?.kind === 'quarantine') this.#gap();
  }

  #pump(): void {
    if (this.#active !== undefined || this.#hold !== undefined) return;
    const request = this.#queue.shift();
    if (request === undefined) return;
    const active: Active = {
      request,
      out: false,
      sentAt: 0,
      acked: false,
      refused: false,
      messageId: undefined,
    };
    this.#active = active;
    void this.#run(active);
  }

  async #run(active: Active): Promise<void> {
    const { call, qos, payload } = active.request;
    call.phase = 'subscribe';
    try {
      await this.#driver.subscribe(this, qos);
    } catch (error) {
      call.reject(error);
      return;
    }
    if (call.done) return;
    if (!this.#driver.connected) {
      call.reject(
        new ConnectionLostError(`Cannot send ${this.operation}: the MQTT client is not connected.`),
      );
      return;
    }
    call.phase = 'publish';
    active.out = true;
    active.sentAt = performance.now();
    const { sent, messageId } = this.#driver.publish(this.topics.request, payload, qos);
    active.messageId = messageId;
    sent.then(
      () => {
        active.acked = true;
        if (call.phase === 'publish') call.phase = 'response';
      },
      (error: unknown) => {
        active.acked = true;
        active.refused = true;
        call.reject(publishFailure(this.operation, error, this.#driver.connected));
      },
    );
  }

  #ended(request: PairRequest, end: CallEnd): void {
    const active = this.#active;
    if (active?.request !== request) {
      const index = this.#queue.indexOf(request);
      if (index >= 0) this.#queue.splice(index, 1);
      return;
    }
    this.#active = undefined;
    if (active.messageId !== undefined && !active.acked) this.#driver.forget(active.messageId);
    if (end === 'answered') this.#gap(active.out ? performance.now() - active.sentAt : undefined);
    else if (active.out && !active.refused && this.#driver.connected) {
      this.#expectLateAnswer(request.lateAnswerWindowMs);
    } else this.#pump();
  }

  #expectLateAnswer(windowMs: number): void {
    this.#owed++;
    this.#unanswered++;
    this.#release();
    const handle = setTimeout(() => {
      // The late answer did not come: stop waiting for it. `#unanswered` remembers it for `accept`.
      this.#hold = undefined;
      this.#owed = 0;
      this.#pump();
    }, windowMs);
    handle.unref();
    this.#hold = { kind: 'quarantine', handle };
  }

  /**
   * Hold the pair after an answer, so that a duplicate the service sent with it or right after it (the
   * same answer twice, accepted then rejected; the simulator sends the second once the first is
   * acknowledged) arrives while no request is out, and is dropped. The hold lasts one round trip, the
   * shortest seen on this pair, at most {@link SETTLE_MAX_MS}; under a millisecond it is one turn of the
   * event loop, which handles everything already received. It delays only a call of the same kind made
   * within that window: a warm provisioning flow (keys, then RegisterThing) never waits on it.
   */
  #gap(roundTripMs?: number): void {
    this.#release();
    if (roundTripMs !== undefined) this.#roundTrip = Math.min(this.#roundTrip, roundTripMs);
    const open = () => {
      this.#hold = undefined;
      this.#pump();
    };
    const window = Math.min(this.#roundTrip, SETTLE_MAX_MS);
    if (roundTripMs !== undefined && window >= 1) {
      const handle = setTimeout(open, window);
      handle.unref();
      this.#hold = { kind: 'settle', handle };
    } else {
      this.#hold = { kind: 'gap', handle: setImmediate(open) };
    }
  }

  #release(): void {
    const hold = this.#hold;
    if (hold === undefined) return;
    if (hold.kind === 'gap') clearImmediate(hold.handle);
    else clearTimeout(hold.handle);
    this.#hold = undefined;
  }
}

/**
 * What a failed publish means. A reason code from the broker (MQTT 5 PUBACK) is a refusal; without a
 * connection, or when mqtt.js gave up on the packet because the connection was closing, it is a lost
 * connection; anything else is a client-side failure to publish.
 */
export function publishFailure(
  operation: OperationName,
  error: unknown,
  connected: boolean,
): ConnectionLostError | PublishFailedError {
  const code: unknown =
    typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  const message = error instanceof Error ? error.message : '';
  if (typeof code !== 'number' && (!connected || CLOSING_MESSAGES.has(message))) {
    return new ConnectionLostError(
      `The connection closed before the ${operation} request was acknowledged. Reconnect and try again.`,
      { cause: error },
    );
  }
  if (typeof code !== 'number') {
    return new PublishFailedError(
      `Publishing the ${operation} request failed: ${message || 'no reason given'}.`,
      {
        cause: error,
      },
    );
  }
  const meaning = reasonMeaning(code);
  const reason = `reason code 0x${code.toString(16).padStart(2, '0')} ${meaning.name}`;
  let advice: string;
  if (meaning.throttled) advice = 'The broker throttles this client: retry with backoff.';
  else if (meaning.unauthorized) {
    advice = "The claim certificate's policy does not allow iot:Publish on the request topic.";
  } else
    advice = "On AWS IoT, check that the claim certificate's policy allows iot:Publish on the request topic.";
  return new PublishFailedError(`The broker refused the ${operation} request (${reason}). ${advice}`, {
    cause: error,
    reasonCode: code,
  });
}

/** The messages mqtt.js uses when it fails a publish because the connection is going away. */
const CLOSING_MESSAGES = new Set(['Connection closed', 'client disconnecting']);
