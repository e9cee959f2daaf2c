/**
 * iot-fleet-provisioning: AWS IoT Fleet Provisioning over MQTT.
 *
 * Layers, bottom up, one folder of `src/` each: `protocol/` (topics, schemas, errors) → `mqtt/` and
 * `device/` (keys, credential files) → `identity/` (operation streams and {@link IotIdentityClient})
 * and `client/` ({@link FleetProvisioningClient}, one promise per call) → `provision/` ({@link provision},
 * the whole onboarding). The simulator lives at `iot-fleet-provisioning/simulator` and the command line
 * in `cli/`; neither is ever loaded from here.
 * @packageDocumentation
 */

export type {
  FleetProvisioningClientOptions,
  PrepareTarget,
  RequestOptions,
} from './client/fleet-provisioning-client.js';
export {
  DEFAULT_LATE_ANSWER_WINDOW_MS,
  DEFAULT_TIMEOUT_MS,
  FleetProvisioningClient,
} from './client/fleet-provisioning-client.js';
export type { RequestTransport } from './client/request-engine.js';
export type { CredentialFiles, DeviceJson } from './device/credentials.js';
export { CREDENTIAL_FILES, DeviceJsonSchema, readDeviceJson } from './device/credentials.js';
export type { CsrSummary, DeviceKeyPair, KeyType } from './device/keys.js';
export {
  certificateMatchesCsr,
  certificateMatchesPrivateKey,
  checkCsr,
  createCsr,
  generateKeyPair,
  KEY_TYPES,
} from './device/keys.js';
export type { StagedCredentials } from './device/staged-set.js';
export { stageCredentials } from './device/staged-set.js';
export * from './device/system-facts.js';
export type { IotIdentityClientOptions } from './identity/iot-identity-client.js';
export { IotIdentityClient } from './identity/iot-identity-client.js';
export type { StreamCallback, StreamSpec } from './identity/operation-stream.js';
export { OperationStream } from './identity/operation-stream.js';
export type { MessageListener, MqttTransport, QoS, SubscriptionRequest } from './mqtt/transport.js';
export type {
  ErrorCode,
  OperationName,
  OperationPhase,
  ReasonMeaning,
  RejectionDetails,
  ResponseIssue,
} from './protocol/errors.js';
export {
  AbortedError,
  ClientClosedError,
  ConnectionLostError,
  ERROR_CODES,
  FleetProvisioningError,
  InvalidArgumentError,
  InvalidResponseError,
  isFleetProvisioningError,
  PersistFailedError,
  PublishFailedError,
  RejectedError,
  reasonMeaning,
  SubscribeFailedError,
  TimeoutError,
} from './protocol/errors.js';
export type { OperationAccepted, OperationRequest, OperationSpec } from './protocol/operations.js';
export { OPERATION_NAMES, operations } from './protocol/operations.js';
export { MAX_PAYLOAD_BYTES } from './protocol/payload.js';
export { redact } from './protocol/redact.js';
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
} from './protocol/schemas.js';
export {
  CreateCertificateFromCsrRequestSchema,
  CreateCertificateFromCsrResponseSchema,
  CreateKeysAndCertificateRequestSchema,
  CreateKeysAndCertificateResponseSchema,
  ErrorResponseSchema,
  RegisterThingRequestPayloadSchema,
  RegisterThingResponseSchema,
  StringMapSchema,
} from './protocol/schemas.js';
export type { OperationTopics, ParsedTopic, PayloadFormat, TopicKind } from './protocol/topics.js';
export {
  allTopics,
  assertTemplateName,
  operationTopics,
  parseTopic,
  TEMPLATE_NAME_PATTERN,
  topics,
} from './protocol/topics.js';
export type { Endpoint } from './provision/endpoint.js';
export { AWS_MQTT_ALPN, parseEndpoint } from './provision/endpoint.js';
export { DEFAULT_PROVISION_TIMEOUT_MS } from './provision/plan.js';
export { provision } from './provision/provision.js';
export type { RetryOptions } from './provision/retry.js';
export { DEFAULT_RETRY, isRetryable } from './provision/retry.js';
export type { RotatedDevice, RotateOptions } from './provision/rotate.js';
export { rotate } from './provision/rotate.js';
export type {
  KeySource,
  ProgressEvent,
  ProvisionedDevice,
  ProvisionOptions,
} from './provision/types.js';
