/**
 * iot-fleet-provisioning: AWS IoT Fleet Provisioning over MQTT.
 *
 * Layers, bottom up: topics and schemas → operation streams and {@link IotIdentityClient} →
 * {@link FleetProvisioningClient} (one promise per call) → {@link provision} (the whole onboarding).
 * The simulator lives at `iot-fleet-provisioning/simulator` and is never loaded from here.
 * @packageDocumentation
 */

export type { DecodeFailure, DecodeResult } from './codec.js';
export { decodePayload, encodePayload, MAX_PAYLOAD_BYTES } from './codec.js';
export type { CredentialFiles, DeviceJson, StagedCredentials } from './credentials.js';
export { CREDENTIAL_FILES, DeviceJsonSchema, readDeviceJson, stageCredentials } from './credentials.js';
export type { Endpoint } from './endpoint.js';
export { AWS_MQTT_ALPN, parseEndpoint } from './endpoint.js';
export type {
  ErrorCode,
  OperationName,
  OperationPhase,
  ReasonMeaning,
  RejectionDetails,
  ResponseIssue,
} from './errors.js';
export {
  AbortedError,
  ClientClosedError,
  ConnectionLostError,
  ERROR_CODES,
  FleetProvisioningError,
  InvalidArgumentError,
  InvalidResponseError,
  isFleetProvisioningError,
  isRetryableStatus,
  PersistFailedError,
  PublishFailedError,
  RejectedError,
  reasonMeaning,
  SubscribeFailedError,
  TimeoutError,
} from './errors.js';
export type {
  FleetProvisioningClientOptions,
  PrepareTarget,
  RequestOptions,
} from './fleet-provisioning-client.js';
export {
  DEFAULT_LATE_ANSWER_WINDOW_MS,
  DEFAULT_TIMEOUT_MS,
  FleetProvisioningClient,
} from './fleet-provisioning-client.js';
export type { IotIdentityClientOptions } from './iot-identity-client.js';
export { IotIdentityClient } from './iot-identity-client.js';
export type { CsrSummary, DeviceKeyPair, KeyType } from './keys.js';
export {
  certificateMatchesCsr,
  certificateMatchesPrivateKey,
  checkCsr,
  createCsr,
  generateKeyPair,
  KEY_TYPES,
} from './keys.js';
export type { StreamCallback, StreamSpec } from './operation-stream.js';
export { OperationStream, STREAM_BUFFER_LIMIT } from './operation-stream.js';
export type { OperationAccepted, OperationRequest, OperationSpec } from './operations.js';
export { OPERATION_NAMES, operations } from './operations.js';
export { provision } from './provision.js';
export type {
  KeySource,
  ProgressEvent,
  ProvisionedDevice,
  ProvisionOptions,
} from './provision-options.js';
export { DEFAULT_PROVISION_TIMEOUT_MS } from './provision-options.js';
export { redact } from './redact.js';
export type { RequestTransport } from './request-response.js';
export type { RetryOptions } from './retry.js';
export { DEFAULT_RETRY, isRetryable } from './retry.js';
export type { RotatedDevice, RotateOptions } from './rotate.js';
export { rotate } from './rotate.js';
export type {
  CreateCertificateFromCsrRequest,
  CreateCertificateFromCsrResponse,
  CreateCertificateFromCsrSubscriptionRequest,
  CreateKeysAndCertificateRequest,
  CreateKeysAndCertificateResponse,
  CreateKeysAndCertificateSubscriptionRequest,
  ErrorResponse,
  RegisterThingRequest,
  RegisterThingRequestPayload,
  RegisterThingResponse,
  RegisterThingSubscriptionRequest,
} from './schemas.js';
export {
  CreateCertificateFromCsrRequestSchema,
  CreateCertificateFromCsrResponseSchema,
  CreateKeysAndCertificateRequestSchema,
  CreateKeysAndCertificateResponseSchema,
  ErrorResponseSchema,
  RegisterThingRequestPayloadSchema,
  RegisterThingResponseSchema,
  StringMapSchema,
} from './schemas.js';
export * from './system-facts.js';
export type { OperationTopics, ParsedTopic, PayloadFormat, TopicKind } from './topics.js';
export {
  allTopics,
  assertTemplateName,
  operationTopics,
  parseTopic,
  TEMPLATE_NAME_PATTERN,
  topics,
} from './topics.js';
export type { MessageListener, MqttTransport, QoS, SubscriptionRequest } from './transport.js';
export { SUBACK_FAILURE } from './transport.js';
