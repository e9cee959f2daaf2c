/**
 * zod schemas for every payload of the Fleet Provisioning MQTT API, with the wire field names exactly as
 * AWS sends them. Wire data stays `unknown` until one of these says otherwise.
 *
 * The type names follow the model of AWS's `iotidentity` module so that AWS users find them:
 * `CreateKeysAndCertificateRequest`, `…Response`, `…SubscriptionRequest`, the same for
 * `CreateCertificateFromCsr` and `RegisterThing`, and `ErrorResponse`.
 *
 * @see https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html
 */
import { z } from 'zod/mini';

/** A flat map of strings, as `parameters` and `deviceConfiguration` are. */
export const StringMapSchema = z.record(z.string(), z.string());

const nonEmpty = z.string().check(z.minLength(1));

// Requests (the payload on the wire: a RegisterThing's template name travels in the topic, not here).

/** CreateKeysAndCertificate request payload: AWS's SDKs send `{}`; AWS documents an empty payload. */
export const CreateKeysAndCertificateRequestSchema = z.object({});

/** CreateCertificateFromCsr request payload. */
export const CreateCertificateFromCsrRequestSchema = z.object({
  certificateSigningRequest: nonEmpty,
});

/** RegisterThing request payload. */
export const RegisterThingRequestPayloadSchema = z.object({
  certificateOwnershipToken: nonEmpty,
  parameters: z.optional(StringMapSchema),
});

// Accepted answers.

/** CreateKeysAndCertificate accepted answer. */
export const CreateKeysAndCertificateResponseSchema = z.object({
  certificateId: nonEmpty,
  certificatePem: nonEmpty,
  privateKey: nonEmpty,
  certificateOwnershipToken: nonEmpty,
});

/** CreateCertificateFromCsr accepted answer. */
export const CreateCertificateFromCsrResponseSchema = z.object({
  certificateId: nonEmpty,
  certificatePem: nonEmpty,
  certificateOwnershipToken: nonEmpty,
});

/** RegisterThing accepted answer: `thingName` is absent when the template creates no thing. */
export const RegisterThingResponseSchema = z.object({
  deviceConfiguration: StringMapSchema,
  thingName: z.optional(z.string()),
});

/** Every rejected answer. AWS documents no list of `errorCode` values: treat it as an open string. */
export const ErrorResponseSchema = z.object({
  statusCode: z.int(),
  errorCode: z.string(),
  errorMessage: z.optional(z.string()),
});

/** CreateKeysAndCertificate request (no fields). */
export type CreateKeysAndCertificateRequest = z.infer<typeof CreateKeysAndCertificateRequestSchema>;
/** CreateCertificateFromCsr request. */
export type CreateCertificateFromCsrRequest = z.infer<typeof CreateCertificateFromCsrRequestSchema>;
/** RegisterThing request: the template name (which goes in the topic) and the payload fields. */
export interface RegisterThingRequest extends z.infer<typeof RegisterThingRequestPayloadSchema> {
  templateName: string;
}
/** RegisterThing request payload as it travels on the wire. */
export type RegisterThingRequestPayload = z.infer<typeof RegisterThingRequestPayloadSchema>;

/** CreateKeysAndCertificate accepted answer. */
export type CreateKeysAndCertificateResponse = z.infer<typeof CreateKeysAndCertificateResponseSchema>;
/** CreateCertificateFromCsr accepted answer. */
export type CreateCertificateFromCsrResponse = z.infer<typeof CreateCertificateFromCsrResponseSchema>;
/** RegisterThing accepted answer. */
export type RegisterThingResponse = z.infer<typeof RegisterThingResponseSchema>;
/** A rejected answer. */
export type ErrorResponse = z.infer<typeof ErrorResponseSchema>;

/** What to subscribe to for CreateKeysAndCertificate answers (nothing to name). */
export type CreateKeysAndCertificateSubscriptionRequest = Record<string, never>;
/** What to subscribe to for CreateCertificateFromCsr answers (nothing to name). */
export type CreateCertificateFromCsrSubscriptionRequest = Record<string, never>;
/** What to subscribe to for RegisterThing answers: the template. */
export interface RegisterThingSubscriptionRequest {
  templateName: string;
}
