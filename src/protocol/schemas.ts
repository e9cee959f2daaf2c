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
  /** The CSR, PEM (`-----BEGIN CERTIFICATE REQUEST-----`). RSA >= 2048 bits or EC P-256/P-384/P-521. */
  certificateSigningRequest: nonEmpty,
});

/** RegisterThing request payload. */
export const RegisterThingRequestPayloadSchema = z.object({
  /** The token that came with the certificate; valid for one hour, usable once. */
  certificateOwnershipToken: nonEmpty,
  /** The template's parameters, a flat map of strings. */
  parameters: z.optional(StringMapSchema),
});

// Accepted answers.

/** CreateKeysAndCertificate accepted answer. */
export const CreateKeysAndCertificateResponseSchema = z.object({
  /** The new certificate's id (64 hex digits on AWS). */
  certificateId: nonEmpty,
  /** The new certificate, PEM; `PENDING_ACTIVATION` until RegisterThing. */
  certificatePem: nonEmpty,
  /** The private key the service made for it, PEM. A secret: never log it. */
  privateKey: nonEmpty,
  /** Pass it to RegisterThing within the hour. A secret: never log it. */
  certificateOwnershipToken: nonEmpty,
});

/** CreateCertificateFromCsr accepted answer. */
export const CreateCertificateFromCsrResponseSchema = z.object({
  /** The new certificate's id (64 hex digits on AWS). */
  certificateId: nonEmpty,
  /** The new certificate for the CSR's key, PEM; `PENDING_ACTIVATION` until RegisterThing. */
  certificatePem: nonEmpty,
  /** Pass it to RegisterThing within the hour. A secret: never log it. */
  certificateOwnershipToken: nonEmpty,
});

/** RegisterThing accepted answer, as read: `thingName` is absent when the template creates no thing. */
export interface RegisterThingResponse {
  /** The template's `DeviceConfiguration` section, a flat map of strings (`{}` when the answer has none). */
  deviceConfiguration: Record<string, string>;
  /** The thing the template made; absent when it makes none. */
  thingName?: string;
}

/**
 * RegisterThing accepted answer, as lenient as AWS's own model (where every field is optional): by the
 * time it arrives the certificate is active and the thing made, so a missing `deviceConfiguration` reads
 * as `{}` and a missing or `null` `thingName` as "no thing" rather than failing a provisioning that has
 * succeeded. What a field holds, when present, is still checked.
 */
export const RegisterThingResponseSchema = z.pipe(
  z.object({
    /** The template's `DeviceConfiguration` section, a flat map of strings; `{}` when absent. */
    deviceConfiguration: z.optional(StringMapSchema),
    /** The thing the template made; absent (or `null`) when it makes none. */
    thingName: z.optional(z.nullable(z.string())),
  }),
  z.transform(
    ({ deviceConfiguration, thingName }): RegisterThingResponse => ({
      deviceConfiguration: deviceConfiguration ?? {},
      ...(typeof thingName === 'string' ? { thingName } : {}),
    }),
  ),
);

/** Every rejected answer. AWS documents no list of `errorCode` values: treat it as an open string. */
export const ErrorResponseSchema = z.object({
  /** An HTTP-style status: 429 and 5xx are worth retrying, other 4xx are not. */
  statusCode: z.int(),
  /** The service's error code, e.g. `InvalidCertificateOwnershipToken`. */
  errorCode: z.string(),
  /** A human-readable explanation. */
  errorMessage: z.optional(z.string()),
});

/** CreateKeysAndCertificate request (no fields). */
export type CreateKeysAndCertificateRequest = z.infer<typeof CreateKeysAndCertificateRequestSchema>;
/** CreateCertificateFromCsr request. */
export type CreateCertificateFromCsrRequest = z.infer<typeof CreateCertificateFromCsrRequestSchema>;
/** RegisterThing request: the template name (which goes in the topic) and the payload fields. */
export interface RegisterThingRequest extends z.infer<typeof RegisterThingRequestPayloadSchema> {
  /** The provisioning template: 1 to 36 characters from `[0-9A-Za-z_-]`. */
  templateName: string;
}
/** RegisterThing request payload as it travels on the wire. */
export type RegisterThingRequestPayload = z.infer<typeof RegisterThingRequestPayloadSchema>;

/** CreateKeysAndCertificate accepted answer. */
export type CreateKeysAndCertificateResponse = z.infer<typeof CreateKeysAndCertificateResponseSchema>;
/** CreateCertificateFromCsr accepted answer. */
export type CreateCertificateFromCsrResponse = z.infer<typeof CreateCertificateFromCsrResponseSchema>;
/** A rejected answer. */
export type ErrorResponse = z.infer<typeof ErrorResponseSchema>;

/** What to subscribe to for CreateKeysAndCertificate answers (nothing to name). */
export type CreateKeysAndCertificateSubscriptionRequest = Record<string, never>;
/** What to subscribe to for CreateCertificateFromCsr answers (nothing to name). */
export type CreateCertificateFromCsrSubscriptionRequest = Record<string, never>;
/** What to subscribe to for RegisterThing answers: the template. */
export interface RegisterThingSubscriptionRequest {
  /** The provisioning template: 1 to 36 characters from `[0-9A-Za-z_-]`. */
  templateName: string;
}
