/**
 * The public shapes of the simulator: its options, its templates, what it records, and the faults a test
 * can script. Kept apart from the code so that users' tests can import the types alone.
 */
import type { EventEmitter } from 'node:events';
import type { OperationName } from '../protocol/errors.js';
import type { PayloadFormat } from '../protocol/topics.js';

/** What AWS hands a pre-provisioning hook (a Lambda on AWS, a function here). */
export interface PreProvisioningHookInput {
  /** The certificate id of the connection that sent RegisterThing (the claim certificate). */
  claimCertificateId: string;
  /** The certificate being provisioned. */
  certificateId: string;
  /** The certificate being provisioned, PEM. */
  certificatePem: string;
  /** `arn:aws:iot:<region>:<account>:provisioningtemplate/<name>`. */
  templateArn: string;
  /** The MQTT client id of the connection that sent RegisterThing. */
  clientId: string;
  /** The parameters of the RegisterThing request. */
  parameters: Record<string, string>;
}

/** What a pre-provisioning hook answers. */
export interface PreProvisioningHookResult {
  /** False denies: RegisterThing is answered 403 `AccessDenied`. */
  allowProvisioning: boolean;
  /** Replace or add template parameters before the template runs. */
  parameterOverrides?: Record<string, string>;
}

/** A pre-provisioning hook: must answer within the simulator's hook limit (5 s, as on AWS). */
export type PreProvisioningHook = (
  input: PreProvisioningHookInput,
) => PreProvisioningHookResult | Promise<PreProvisioningHookResult>;

/**
 * A provisioning template body as `aws iot create-provisioning-template --template-body` takes it (see
 * docs/simulator.md for what is faithful). Values may use the intrinsic functions.
 */
export interface AwsProvisioningTemplate {
  /** Declared parameters: `{ "SerialNumber": { "Type": "String", "Default"?: "…" } }`. */
  Parameters?: Record<
    string,
    {
      /** `String` (AWS's only type). */
      Type: string;
      /** Used when the device does not send the parameter. */
      Default?: string;
    }
  >;
  /** `Fn::FindInMap` tables: map → top-level key → second-level key → value. */
  Mappings?: Record<string, Record<string, Record<string, unknown>>>;
  /** Named conditions (`Fn::Equals`, `Fn::And`, `Fn::Or`, `Fn::Not`, `Condition`). */
  Conditions?: Record<string, unknown>;
  /** `AWS::IoT::Thing`, `AWS::IoT::Certificate` and `AWS::IoT::Policy` resources by logical name. */
  Resources: Record<string, unknown>;
  /** Returned in RegisterThing's answer (string values, intrinsic functions allowed). */
  DeviceConfiguration?: Record<string, unknown>;
}

/** A pre-provisioning hook run as a command: AWS's Lambda event on its stdin, the response JSON on stdout. */
export interface CommandHook {
  /** The program and its arguments (no shell). */
  command: string[];
}

/** A provisioning template, reduced to what RegisterThing's answer and the registry depend on. */
export interface TemplateDefinition {
  /**
   * An AWS template body (object, or its JSON text). When given, it decides the thing, the certificate's
   * status, the policies and the device configuration, and the simple fields below are ignored.
   */
  templateBody?: AwsProvisioningTemplate | string;
  /** Thing name, with `{{Parameter}}` placeholders (e.g. `sensor-{{SerialNumber}}`). Absent: no thing is made. */
  thingName?: string;
  /** Returned in RegisterThing's answer; values may hold `{{Parameter}}` placeholders too. */
  deviceConfiguration?: Record<string, string>;
  /** Parameters RegisterThing must carry; a missing one is answered 400 `InvalidParameters`. */
  requiredParameters?: string[];
  /**
   * Runs before the template; a denial, an error or a late answer is answered 403 `AccessDenied`. A
   * function, or `{ command: [...] }` to run a program that reads the event JSON and writes the response.
   */
  preProvisioningHook?: PreProvisioningHook | CommandHook;
  /** The status RegisterThing gives the certificate. Default `'ACTIVE'`; `'INACTIVE'` still cannot connect. */
  certificateStatus?: 'ACTIVE' | 'INACTIVE';
}

/** Options of `startSimulator`. */
export interface SimulatorOptions {
  /** Interface to listen on. Default `'127.0.0.1'`. */
  host?: string;
  /** Port to listen on. Default `0` (a free port). */
  port?: number;
  /** Mutual TLS (client certificate required, checked against the simulator's CA). Default `true`. */
  tls?: boolean;
  /**
   * Provisioning templates by name: the simple form, or an AWS template body (anything with `Resources`).
   * Default: `DemoTemplate`, naming the thing after `SerialNumber`.
   */
  templates?: Record<string, TemplateDefinition | AwsProvisioningTemplate>;
  /**
   * The claim certificate's IoT policy document (object or JSON text), enforced on every claim connection:
   * CONNECT, SUBSCRIBE (SUBACK 0x80 when refused), PUBLISH and the delivery of answers. Default: the
   * provisioning topics only.
   */
  claimPolicy?: unknown;
  /** Policies of the simulated account by name, for templates whose `AWS::IoT::Policy` gives a `PolicyName`. */
  policies?: Record<string, unknown>;
  /** Key type CreateKeysAndCertificate makes. Default `'rsa-2048'` as AWS; `'ec-p256'` is far faster. */
  serverKeyType?: 'rsa-2048' | 'ec-p256';
  /**
   * How long the device certificates the simulator issues are valid, in days (fractions allowed), counted
   * from issue on the real clock (TLS checks it). Default: until 2049-12-31, as AWS's are. Short-lived
   * certificates let tests exercise expiry-driven rotation.
   */
  certificateValidityDays?: number;
  /** Load the CA, server and claim credentials from here, or make them and save them here. */
  identityDir?: string;
  /** Clock in ms for token expiry, the rate limit and the log. Default `Date.now`. */
  now?: () => number;
  /** Requests per second over all clients; beyond it requests are answered 429 `ThrottlingException`. */
  requestsPerSecond?: number;
  /** How long a pre-provisioning hook may take, in ms. Default 5,000 as on AWS. */
  hookTimeoutMs?: number;
  /** How many request-log entries to keep (oldest dropped first). Default 100,000. */
  requestLogLimit?: number;
  /**
   * How many bytes of request log to keep, each entry counted as its JSON (oldest dropped first), so a client
   * sending long topics cannot grow it without bound. Default 64 MiB.
   */
  requestLogMaxBytes?: number;
  /**
   * Requests per second each connection may make; beyond it that connection's requests are answered 429
   * `ThrottlingException` (other connections are not affected). Default 100, AWS's per-connection limit.
   */
  requestsPerSecondPerClient?: number;
  /**
   * The largest MQTT packet a client may send, fixed header included; a larger one closes its connection
   * before the packet is read whole. Default 133,120: AWS's 128 KiB message limit plus 2 KiB for the topic.
   */
  maxPacketBytes?: number;
}

/** A thing that RegisterThing made. */
export interface ThingRecord {
  /** The thing's name, rendered from the template. */
  thingName: string;
  /** The certificate attached to it by the latest RegisterThing. */
  certificateId: string;
  /**
   * Every certificate attached to it, oldest first: a rotation template attaches a new certificate to an
   * existing thing, and the previous one stays attached (as on AWS) until someone detaches it.
   */
  certificateIds: string[];
  /** The template that made it. */
  templateName: string;
  /** The parameters the template ran with (overrides applied). */
  parameters: Record<string, string>;
  /** When RegisterThing made it (the simulator's clock). */
  createdAt: Date;
  /** Attributes (AWS templates' `AttributePayload`, after `OverrideSettings`). */
  attributes?: Record<string, string>;
  /** Thing groups (AWS templates' `ThingGroups`). */
  thingGroups?: string[];
  /** Thing type (AWS templates' `ThingTypeName`). */
  thingTypeName?: string;
}

/** The lifecycle of a certificate the simulator issued. */
export type CertificateStatus = 'PENDING_ACTIVATION' | 'ACTIVE' | 'INACTIVE';

/** A certificate the simulator issued. */
export interface CertificateRecord {
  /** SHA-256 of the DER certificate, 64 lowercase hex digits (as AWS's ids are). */
  certificateId: string;
  /** `PENDING_ACTIVATION` until RegisterThing, then the template's status. */
  status: CertificateStatus;
  /** The thing it is attached to, once RegisterThing made one. */
  thingName?: string;
  /** Names of the policies an AWS template attached to it. */
  policyNames?: string[];
  /** Which operation issued it. */
  issuedBy: 'CreateKeysAndCertificate' | 'CreateCertificateFromCsr';
  /** The certificate, PEM. */
  certificatePem: string;
  /** When it was issued (the simulator's clock). */
  createdAt: Date;
}

/** What a log entry records. */
export type RequestLogType = 'connect' | 'subscribe' | 'unsubscribe' | 'publish' | 'answer';

/** One thing a client did (or was sent), in the order the simulator saw it. */
export interface RequestLogEntry {
  /** The MQTT client id of the connection. */
  clientId: string;
  /** What happened. */
  type: RequestLogType;
  /** The topic (filter, for subscribe and unsubscribe). */
  topic?: string;
  /** Set when the topic is one of the service's. */
  operation?: OperationName;
  /** `request`, `accepted` or `rejected` when the topic is one of the service's. */
  kind?: 'request' | 'accepted' | 'rejected';
  /** The payload format of the topic, when the topic is one of the service's. */
  format?: PayloadFormat;
  /** False when the simulator refused it (CONNACK 5, SUBACK 0x80, a publish that closed the connection). */
  allowed?: boolean;
  /** connect: who the client is. `anonymous` on plain MQTT, which has no certificate. */
  role?: 'claim' | 'device' | 'anonymous' | 'unknown';
  /** connect: the certificate the client presented. */
  certificateId?: string;
  /** connect: the ALPN protocol agreed on, when the client offered one. */
  alpnProtocol?: string;
  /** answer: the status code of a rejected answer. */
  statusCode?: number;
  /** answer: the error code of a rejected answer. */
  errorCode?: string;
  /** publish of a request, and its answers: a number the request and its answers share (1, 2, 3, …). */
  requestId?: number;
  /** publish of a request, and its answers: the fault applied, when one was scripted. */
  fault?: Fault['type'];
  /** The simulator's clock (`options.now`) in ms. */
  at: number;
}

/** An answer the simulator sent, as the `answer` event gives it. */
export interface AnswerEvent {
  /** The client the answer went to. */
  clientId: string;
  /** The answer topic. */
  topic: string;
  /** The operation answered. */
  operation: OperationName;
  /** Which of the two answer topics. */
  kind: 'accepted' | 'rejected';
}

/** One misbehaviour a test can script. */
export type Fault =
  | {
      /** Answer normally (a queued step that lets one request through). */
      type: 'normal';
    }
  | {
      /** Answer on the rejected topic. */
      type: 'reject';
      /** The rejection's status code (429 and 5xx are the retryable ones). */
      statusCode: number;
      /** Default: the simulator's code for the status (`ThrottlingException` for 429, …). */
      errorCode?: string;
      /** Default: a message naming the fault script. */
      errorMessage?: string;
    }
  | {
      /** Never answer. */
      type: 'silent';
    }
  | {
      /** Answer normally after `ms`. */
      type: 'delay';
      /** How long to hold the answer back, in ms. */
      ms: number;
    }
  | {
      /** The same answer twice. */
      type: 'duplicate';
    }
  | {
      /** The normal answer, then a 500 on the rejected topic. */
      type: 'acceptThenReject';
    }
  | {
      /** Bytes that do not decode in the request's format, on the accepted topic. */
      type: 'malformed';
    }
  | {
      /** A payload that decodes but violates the accepted schema. */
      type: 'wrongShape';
    }
  | {
      /** A payload over 128 KiB on the accepted topic. */
      type: 'oversized';
    }
  | {
      /** SUBACK 0x80 for the operation's answer topics (counts SUBSCRIBE packets, not requests). */
      type: 'refuseSubscribe';
    }
  | {
      /** Drop the connection on receiving the request, before any PUBACK. */
      type: 'disconnect';
    }
  | {
      /** Carry the request out (a RegisterThing activates its certificate), then drop the connection instead of answering. */
      type: 'runThenDisconnect';
    };

/** The fault script of a simulator: what to do instead of answering normally. */
export interface FaultScript {
  /**
   * For the next `times` requests of `operation` (default 1; `Infinity` for all of them), do `fault`
   * instead of answering normally. Scripts queue up: a second call takes effect when the first is used up.
   */
  script(operation: OperationName, fault: Fault, options?: { times?: number }): void;
  /** Forget every scripted fault. */
  clear(): void;
}

/** A running simulator. */
export interface Simulator extends EventEmitter {
  /** `mqtts://127.0.0.1:PORT` (or `mqtt://…` with `tls: false`). */
  readonly url: string;
  /** The interface it listens on. */
  readonly host: string;
  /** The port it listens on (the free one it got, with the default port 0). */
  readonly port: number;
  /** PEM of the CA that signed the server, the claim and every issued certificate. */
  readonly caCertificate: string;
  /** PEM of the claim certificate. */
  readonly claimCertificate: string;
  /** PEM of the claim certificate's private key. */
  readonly claimPrivateKey: string;
  /** The claim certificate's id. */
  readonly claimCertificateId: string;
  /** Script misbehaviour: `sim.faults.script('RegisterThing', { type: 'reject', statusCode: 429 })`. */
  readonly faults: FaultScript;
  /** The things made so far, oldest first. */
  things(): ThingRecord[];
  /** The certificates issued so far (and not deleted for expiry), oldest first. */
  certificates(): CertificateRecord[];
  /**
   * Set a certificate INACTIVE, as `aws iot update-certificate --new-status INACTIVE` does: it can no
   * longer connect, and the connections open with it are closed at once.
   * @throws {InvalidArgumentError} when the simulator never issued that certificate.
   */
  deactivateCertificate(certificateId: string): void;
  /** The log, in order; only one client's entries when `clientId` is given. */
  requests(clientId?: string): RequestLogEntry[];
  /** End every connection and timer; resolves when everything is released. */
  close(): Promise<void>;
  on(event: 'request', listener: (entry: RequestLogEntry) => void): this;
  on(event: 'answer', listener: (answer: AnswerEvent & RequestLogEntry) => void): this;
  on(event: string | symbol, listener: (...args: unknown[]) => void): this;
}
