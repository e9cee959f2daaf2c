import { redact } from './redact.js';

/** Every code a {@link FleetProvisioningError} can carry. Branch on `error.code`, not on the class. */
export const ERROR_CODES = [
  'INVALID_ARGUMENT',
  'REJECTED',
  'TIMEOUT',
  'INVALID_RESPONSE',
  'SUBSCRIBE_FAILED',
  'PUBLISH_FAILED',
  'CONNECTION_LOST',
  'CLIENT_CLOSED',
  'ABORTED',
  'PERSIST_FAILED',
] as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** The three operations of the Fleet Provisioning MQTT API, named as AWS names them. */
export type OperationName = 'CreateKeysAndCertificate' | 'CreateCertificateFromCsr' | 'RegisterThing';

/**
 * The base of every error this library throws or rejects with. `message` is redacted: it never holds
 * a private key, a PEM body or an ownership token.
 */
export class FleetProvisioningError extends Error {
  /** The class name, for stack traces and logs. Branch on {@link FleetProvisioningError.code} instead. */
  override name = 'FleetProvisioningError';
  /** What went wrong, as one of {@link ERROR_CODES}: the field to branch on. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(
      redact(message),
      options?.cause === undefined ? undefined : { cause: redactedCause(options.cause) },
    );
    this.code = code;
  }
}

/**
 * The cause as given, unless its message or stack holds a secret (a parser quoting its input, a
 * library echoing a value): then a copy with those redacted, keeping its name and `code`.
 */
function redactedCause(cause: unknown): unknown {
  if (!(cause instanceof Error)) return typeof cause === 'string' ? redact(cause) : cause;
  if (cause instanceof FleetProvisioningError) return cause;
  const message = redact(cause.message);
  const stack = cause.stack === undefined ? undefined : redact(cause.stack);
  if (message === cause.message && stack === cause.stack) return cause;
  const copy = new Error(message);
  copy.name = cause.name;
  if (stack !== undefined) copy.stack = stack;
  if ('code' in cause) Object.defineProperty(copy, 'code', { value: cause.code, enumerable: true });
  return copy;
}

/**
 * An issue path safe to show: redacted, without control characters, at most 120 characters. Payload
 * keys are data from the network and could be anything, a secret included.
 */
const CONTROL = new RegExp(`[${String.fromCharCode(0)}-${String.fromCharCode(31)}\u007f-\u009f]`, 'g');

function safePath(path: string): string {
  const clean = redact(String(path)).replace(CONTROL, '?');
  return clean.length > 120 ? `${clean.slice(0, 119)}…` : clean;
}

/** Bad options or template name, found before any network traffic. Fix the call; retrying will not help. */
export class InvalidArgumentError extends FleetProvisioningError {
  override name = 'InvalidArgumentError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
  }
}

/** The fields of a rejected answer, as the service sent them. */
export interface RejectionDetails {
  /** The operation that was rejected. */
  operation: OperationName;
  /** The service's status code (HTTP-style). */
  statusCode: number;
  /** The service's error code, an open string (`InvalidCertificateOwnershipToken`, `ThrottlingException`, …). */
  errorCode: string;
  /** The service's explanation. */
  errorMessage: string;
}

/**
 * The service answered on the `/rejected` topic. `retryable` is true for 429 and 5xx, where the same
 * request may succeed later; any other 4xx needs a change (token, template, parameters, CSR).
 */
export class RejectedError extends FleetProvisioningError {
  override name = 'RejectedError';
  /** The operation that was rejected. */
  readonly operation: OperationName;
  /** The service's status code: 400, 403, 404, 429, 500, … */
  readonly statusCode: number;
  /** The service's error code, an open string: decide by `statusCode`, show `errorCode`. */
  readonly errorCode: string;
  /** The service's explanation (redacted). */
  readonly errorMessage: string;
  /** True for 429 and 5xx: the same request may succeed later. */
  readonly retryable: boolean;

  constructor(details: RejectionDetails) {
    const retryable = isRetryableStatus(details.statusCode);
    super(
      'REJECTED',
      `${details.operation} was rejected: ${details.statusCode} ${details.errorCode}: ${details.errorMessage.replace(/\.+$/, '')}. ` +
        (retryable
          ? 'The service may accept it later: retry with backoff.'
          : 'Retrying the same request will not help: check the template, parameters, token or CSR.'),
    );
    this.operation = details.operation;
    this.statusCode = details.statusCode;
    this.errorCode = redact(details.errorCode);
    this.errorMessage = redact(details.errorMessage);
    this.retryable = retryable;
  }
}

/**
 * True for the status codes worth retrying: 429 (throttled) and every 5xx.
 * @internal
 */
export function isRetryableStatus(statusCode: number): boolean {
  return statusCode === 429 || (statusCode >= 500 && statusCode <= 599);
}

/** Where a call was when its deadline passed. */
export type OperationPhase = 'queued' | 'subscribe' | 'publish' | 'response' | 'connect' | 'persist';

/** The deadline passed. `timeoutMs` counts from the call, time spent queued included. */
export class TimeoutError extends FleetProvisioningError {
  override name = 'TimeoutError';
  /** The operation that timed out; undefined for a connection attempt. */
  readonly operation: OperationName | undefined;
  /** Where it was stuck: `queued`, `subscribe`, `publish`, `response`, `connect` or `persist`. */
  readonly phase: OperationPhase;
  /** The deadline that passed, in ms. */
  readonly timeoutMs: number;

  constructor(details: { operation?: OperationName; phase: OperationPhase; timeoutMs: number }) {
    super(
      'TIMEOUT',
      `${details.operation ?? 'The operation'} timed out after ${details.timeoutMs} ms while waiting in the ` +
        `${details.phase} phase. Check that the endpoint is reachable and the claim policy allows the ` +
        'provisioning topics, or raise timeoutMs.',
    );
    this.operation = details.operation;
    this.phase = details.phase;
    this.timeoutMs = details.timeoutMs;
  }
}

/** One problem found in a payload: where it is and what kind of problem. Never the value itself. */
export interface ResponseIssue {
  /** Dotted path into the payload, `(root)` for the payload itself. */
  path: string;
  /** A short, value-free description: `expected string`, `malformed json`, `too large`. */
  problem: string;
}

/** Issues as one line for a message: `path: problem; path: problem`. */
export function formatIssues(issues: ReadonlyArray<{ path: string; problem: string }>): string {
  return issues.map((i) => `${i.path}: ${i.problem}`).join('; ');
}

/**
 * An answer that cannot be trusted: malformed, the wrong shape, too large, or a certificate that does
 * not belong to the key or CSR it answers.
 */
export class InvalidResponseError extends FleetProvisioningError {
  override name = 'InvalidResponseError';
  /** The operation whose answer was bad, when known. */
  readonly operation: OperationName | undefined;
  /** The topic the bad payload came on, when it came on one. */
  readonly topic: string | undefined;
  /** What is wrong, by path; never the values. */
  readonly issues: readonly ResponseIssue[];

  constructor(
    details: {
      operation?: OperationName;
      topic?: string;
      issues: readonly ResponseIssue[];
      message?: string;
    },
    options?: { cause?: unknown },
  ) {
    const where = details.topic === undefined ? '' : ` on ${details.topic}`;
    const issues = details.issues.map((i) => ({ path: safePath(i.path), problem: redact(i.problem) }));
    const list = formatIssues(issues);
    super(
      'INVALID_RESPONSE',
      details.message ??
        `${details.operation ?? 'The service'} sent an invalid answer${where} (${list}). ` +
          'This is not an answer AWS IoT sends: check what else publishes on this topic.',
      options,
    );
    this.operation = details.operation;
    this.topic = details.topic;
    this.issues = issues;
  }
}

/** What an MQTT 5 reason code (SUBACK, PUBACK, CONNACK) means for the caller. */
export interface ReasonMeaning {
  /** The name the MQTT 5 specification gives it. */
  name: string;
  /** The broker throttles this client (rate or quota): the same request may succeed after a backoff. */
  throttled: boolean;
  /** The broker's authorization refused it: on AWS IoT, the policy of the certificate. */
  unauthorized: boolean;
}

const REASON_NAMES = new Map<number, string>([
  [0x80, 'unspecified error'],
  [0x83, 'implementation specific error'],
  [0x87, 'not authorized'],
  [0x89, 'server busy'],
  [0x8f, 'topic filter invalid'],
  [0x90, 'topic name invalid'],
  [0x91, 'packet identifier in use'],
  [0x95, 'packet too large'],
  [0x96, 'message rate too high'],
  [0x97, 'quota exceeded'],
  [0x99, 'payload format invalid'],
  [0x9e, 'shared subscriptions not supported'],
  [0x9f, 'connection rate exceeded'],
]);

/** The meaning of an MQTT reason code: 0x96, 0x97, 0x9F (and 0x89) are throttles; 0x87 is the policy. */
export function reasonMeaning(code: number): ReasonMeaning {
  return {
    name: REASON_NAMES.get(code) ?? 'refused',
    throttled: code === 0x96 || code === 0x97 || code === 0x9f || code === 0x89,
    unauthorized: code === 0x87,
  };
}

function hex(code: number): string {
  return `0x${code.toString(16).padStart(2, '0')}`;
}

/**
 * The broker refused a subscription (SUBACK 0x80 on MQTT 3.1.1; 0x80 or above on MQTT 5). `retryable`
 * is true when the reason code says the broker throttles the client (0x96 message rate too high, 0x97
 * quota exceeded): like a 429, the same SUBSCRIBE may succeed after a backoff.
 */
export class SubscribeFailedError extends FleetProvisioningError {
  override name = 'SubscribeFailedError';
  /** The topic filter the broker refused. */
  readonly topic: string;
  /** The SUBACK reason code: 0x80 (MQTT 3.1.1 and 5), or an MQTT 5 code such as 0x87 "not authorized". */
  readonly reasonCode: number;
  /** True when the broker throttles the client (0x96, 0x97): retry with backoff. */
  readonly retryable: boolean;

  constructor(details: { topic: string; reasonCode: number }, options?: { cause?: unknown }) {
    const meaning = reasonMeaning(details.reasonCode);
    const code = `${hex(details.reasonCode)} ${meaning.name}`;
    let advice: string;
    if (meaning.throttled) {
      advice = 'The broker throttles this client: retry with backoff.';
    } else if (meaning.unauthorized) {
      advice = "The claim certificate's policy does not allow iot:Subscribe on this topic filter.";
    } else {
      advice =
        "On AWS IoT this means the claim certificate's policy must allow iot:Subscribe on this topic filter.";
    }
    super(
      'SUBSCRIBE_FAILED',
      `The broker refused the subscription to ${details.topic} (reason code ${code}). ${advice}`,
      options,
    );
    this.topic = details.topic;
    this.reasonCode = details.reasonCode;
    this.retryable = meaning.throttled;
  }
}

/**
 * The request could not be published. With an MQTT 5 PUBACK reason code, `reasonCode` holds it and
 * `retryable` is true for a throttle (0x96 message rate too high, 0x97 quota exceeded).
 */
export class PublishFailedError extends FleetProvisioningError {
  override name = 'PublishFailedError';
  /** The PUBACK reason code, when the broker gave one. */
  readonly reasonCode: number | undefined;
  /** True when the broker throttles the client: retry with backoff. */
  readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown; reasonCode?: number }) {
    super('PUBLISH_FAILED', message, options);
    this.reasonCode = options?.reasonCode;
    this.retryable = options?.reasonCode !== undefined && reasonMeaning(options.reasonCode).throttled;
  }
}

/** The connection dropped, or was not up, while an operation needed it. Retry on a new connection. */
export class ConnectionLostError extends FleetProvisioningError {
  override name = 'ConnectionLostError';
  /**
   * False when trying again cannot help (the server's certificate is not trusted): provision() then
   * does not retry.
   */
  readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super('CONNECTION_LOST', message, options);
    this.retryable = options?.retryable ?? true;
  }
}

/** `close()` was called while the operation was pending. */
export class ClientClosedError extends FleetProvisioningError {
  override name = 'ClientClosedError';
  constructor(message = 'The client was closed while the operation was pending.') {
    super('CLIENT_CLOSED', message);
  }
}

/** The caller's `AbortSignal` fired; `cause` is `signal.reason`. */
export class AbortedError extends FleetProvisioningError {
  override name = 'AbortedError';
  constructor(reason: unknown, operation?: OperationName) {
    super('ABORTED', `${operation ?? 'The operation'} was aborted by the caller.`, { cause: reason });
  }
}

/** The credentials could not be written safely; nothing was registered with them. */
export class PersistFailedError extends FleetProvisioningError {
  override name = 'PersistFailedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('PERSIST_FAILED', message, options);
  }
}

/** True when `value` is a {@link FleetProvisioningError}, optionally with the given code. */
export function isFleetProvisioningError(value: unknown, code?: ErrorCode): value is FleetProvisioningError {
  return value instanceof FleetProvisioningError && (code === undefined || value.code === code);
}
