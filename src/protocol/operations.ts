/**
 * The service model: the three operations of the Fleet Provisioning MQTT API described once, as data.
 * The topic builders, the low-level client, the request-response layer and the simulator all read this
 * table; none of them repeats it.
 */
import type { z } from 'zod/mini';
import type { OperationName } from './errors.js';
import {
  CreateCertificateFromCsrRequestSchema,
  CreateCertificateFromCsrResponseSchema,
  CreateKeysAndCertificateRequestSchema,
  CreateKeysAndCertificateResponseSchema,
  RegisterThingRequestPayloadSchema,
  RegisterThingResponseSchema,
} from './schemas.js';

/**
 * How long a certificate ownership token is valid: one hour, after which RegisterThing refuses it.
 * @see https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html#create-keys-cert
 */
export const TOKEN_LIFETIME_MS = 60 * 60 * 1000;

/** One operation of the service: where its request goes and what its payloads look like. */
export interface OperationSpec<Request = unknown, Accepted = unknown> {
  /** The operation's name as AWS gives it. */
  readonly name: OperationName;
  /** True when the topic carries a template name (RegisterThing). */
  readonly templated: boolean;
  /** The topic before the `/<format>` level. */
  topicRoot(templateName: string): string;
  /** Schema of the request payload on the wire. */
  readonly requestSchema: z.ZodMiniType<Request>;
  /** Schema of the accepted answer. */
  readonly acceptedSchema: z.ZodMiniType<Accepted>;
  /** The AWS documentation of the operation. */
  readonly docs: string;
}

const DOCS = 'https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html';

function spec<Request, Accepted>(s: OperationSpec<Request, Accepted>): OperationSpec<Request, Accepted> {
  return s;
}

/** The three operations, keyed by name. */
export const operations = {
  /** The service makes the key pair and returns it with a new certificate. */
  CreateKeysAndCertificate: spec({
    name: 'CreateKeysAndCertificate',
    templated: false,
    topicRoot: () => '$aws/certificates/create',
    requestSchema: CreateKeysAndCertificateRequestSchema,
    acceptedSchema: CreateKeysAndCertificateResponseSchema,
    docs: `${DOCS}#create-keys-cert`,
  }),
  /** The service signs the device's CSR: the key never leaves the device. */
  CreateCertificateFromCsr: spec({
    name: 'CreateCertificateFromCsr',
    templated: false,
    topicRoot: () => '$aws/certificates/create-from-csr',
    requestSchema: CreateCertificateFromCsrRequestSchema,
    acceptedSchema: CreateCertificateFromCsrResponseSchema,
    docs: `${DOCS}#create-cert-csr`,
  }),
  /** The service runs the template, makes the thing and activates the certificate. */
  RegisterThing: spec({
    name: 'RegisterThing',
    templated: true,
    topicRoot: (templateName: string) => `$aws/provisioning-templates/${templateName}/provision`,
    requestSchema: RegisterThingRequestPayloadSchema,
    acceptedSchema: RegisterThingResponseSchema,
    docs: `${DOCS}#register-thing`,
  }),
} as const satisfies Record<OperationName, { readonly name: OperationName }>;

/** The request payload type of each operation, keyed by name. */
export type OperationRequest<N extends OperationName> = z.infer<(typeof operations)[N]['requestSchema']>;
/** The accepted answer type of each operation, keyed by name. */
export type OperationAccepted<N extends OperationName> = z.infer<(typeof operations)[N]['acceptedSchema']>;

/** The names of the three operations, in the order a provisioning uses them. */
export const OPERATION_NAMES: readonly OperationName[] = [
  'CreateKeysAndCertificate',
  'CreateCertificateFromCsr',
  'RegisterThing',
];
