/**
 * iot-fleet-provisioning: AWS IoT Fleet Provisioning over MQTT.
 *
 * Layers, bottom up: topics and schemas → operation streams and {@link IotIdentityClient}.
 * The simulator lives at `iot-fleet-provisioning/simulator` and is never loaded from here.
 * @packageDocumentation
 */

export type { DecodeFailure, DecodeResult } from './codec.js';
export { decodePayload, encodePayload, MAX_PAYLOAD_BYTES } from './codec.js';
export type {
  ErrorCode,
  OperationName,
  OperationPhase,
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
  SubscribeFailedError,
  TimeoutError,
} from './errors.js';
export type { IotIdentityClientOptions } from './iot-identity-client.js';
export { IotIdentityClient } from './iot-identity-client.js';
export type { StreamCallback, StreamSpec } from './operation-stream.js';
export { OperationStream, STREAM_BUFFER_LIMIT } from './operation-stream.js';
export type { OperationAccepted, OperationRequest, OperationSpec } from './operations.js';
export { OPERATION_NAMES, operations } from './operations.js';
export { redact } from './redact.js';
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
export type { OperationTopics, ParsedTopic, PayloadFormat, TopicKind } from './topics.js';
export {
  allTopics,
  assertTemplateName,
  operationTopics,
  parseTopic,
  TEMPLATE_NAME_PATTERN,
  topics,
} from './topics.js';
export type { MessageListener, MqttTransport, QoS } from './transport.js';
export { SUBACK_FAILURE } from './transport.js';
