/**
 * `IotIdentityClient`: the nine methods of AWS's `iotidentity.IotIdentityClient` (three `publish…`,
 * six `subscribeTo…Accepted|Rejected`), over any client that fits {@link MqttTransport}, with every
 * payload validated both ways and CBOR as well as JSON.
 *
 * This is the low level: correlating a request with its answer is the caller's job here. For one
 * promise per call, use `FleetProvisioningClient`.
 *
 * @see https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html
 */

import { publishFailure } from '../client/correlation.js';
import { PendingCall } from '../client/pending-call.js';
import { forgetRequest, publishTracked, type RequestTransport } from '../client/request-engine.js';
import { routerFor, type TopicRouter } from '../mqtt/topic-router.js';
import type { MqttTransport, QoS } from '../mqtt/transport.js';
import { assertQos, assertTimeout } from '../protocol/call-options.js';
import { ConnectionLostError, InvalidArgumentError, type OperationName } from '../protocol/errors.js';
import { operations } from '../protocol/operations.js';
import { loadCodec } from '../protocol/payload.js';
import { encodeRequest } from '../protocol/requests.js';
import {
  type CreateCertificateFromCsrRequest,
  type CreateCertificateFromCsrResponse,
  type CreateCertificateFromCsrSubscriptionRequest,
  type CreateKeysAndCertificateRequest,
  type CreateKeysAndCertificateResponse,
  type CreateKeysAndCertificateSubscriptionRequest,
  type ErrorResponse,
  ErrorResponseSchema,
  type RegisterThingRequest,
  type RegisterThingResponse,
  type RegisterThingSubscriptionRequest,
} from '../protocol/schemas.js';
import { assertFormat, operationTopics, type PayloadFormat } from '../protocol/topics.js';
import { OperationStream, type StreamCallback } from './operation-stream.js';

/** The default deadline of a PUBACK or SUBACK. */
const DEFAULT_TIMEOUT_MS = 60_000;

/** Options of {@link IotIdentityClient}. */
export interface IotIdentityClientOptions {
  /** Payload format of every request and answer. Default `'json'`. */
  format?: PayloadFormat;
  /**
   * The longest a `publish…` waits for its PUBACK (QoS 1) and a `subscribeTo…` for its SUBACK, in ms;
   * then it rejects with `TIMEOUT`. Default 60 000.
   */
  timeoutMs?: number;
}

/**
 * The low-level Fleet Provisioning client, method for method like AWS's `IotIdentityClient`.
 * @example
 * const identity = new IotIdentityClient(mqttClient);
 * const accepted = await identity.subscribeToCreateKeysAndCertificateAccepted({}, 1, (err, res) => { … });
 * await identity.subscribeToCreateKeysAndCertificateRejected({}, 1, (err, res) => { … });
 * await identity.publishCreateKeysAndCertificate({}, 1);
 */
export class IotIdentityClient {
  readonly #transport: RequestTransport;
  readonly #router: TopicRouter;
  readonly #timeoutMs: number;
  /** The payload format this client speaks. */
  readonly format: PayloadFormat;

  /**
   * @param transport a connected mqtt.js `MqttClient` (or anything that fits {@link MqttTransport}).
   * @throws {InvalidArgumentError} on an unknown format or a bad `timeoutMs`.
   */
  constructor(transport: RequestTransport, options: IotIdentityClientOptions = {}) {
    const format = options.format ?? 'json';
    assertFormat(format);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    assertTimeout(timeoutMs);
    this.#timeoutMs = timeoutMs;
    this.#transport = transport;
    this.#router = routerFor(transport);
    this.format = format;
  }

  /**
   * Publish a CreateKeysAndCertificate request (payload `{}`).
   * @throws {InvalidArgumentError} for a malformed request; {@link ConnectionLostError} when offline;
   * {@link PublishFailedError} when the client could not publish.
   */
  publishCreateKeysAndCertificate(request: CreateKeysAndCertificateRequest, qos: QoS): Promise<void> {
    return this.#publish('CreateKeysAndCertificate', '', request, qos);
  }

  /** Publish a CreateCertificateFromCsr request. Throws as {@link IotIdentityClient.publishCreateKeysAndCertificate}. */
  publishCreateCertificateFromCsr(request: CreateCertificateFromCsrRequest, qos: QoS): Promise<void> {
    return this.#publish('CreateCertificateFromCsr', '', request, qos);
  }

  /**
   * Publish a RegisterThing request to the template's topic; `templateName` goes in the topic, the
   * token and parameters in the payload. Throws as {@link IotIdentityClient.publishCreateKeysAndCertificate}.
   */
  publishRegisterThing(request: RegisterThingRequest, qos: QoS): Promise<void> {
    if (typeof request !== 'object' || request === null) {
      return Promise.reject(new InvalidArgumentError('RegisterThing needs a request object.'));
    }
    const { templateName, ...payload } = request;
    return this.#publish('RegisterThing', templateName, payload, qos);
  }

  /** Subscribe to accepted CreateKeysAndCertificate answers. Resolves once the SUBACK is in. */
  subscribeToCreateKeysAndCertificateAccepted(
    _request: CreateKeysAndCertificateSubscriptionRequest,
    qos: QoS,
    callback?: StreamCallback<CreateKeysAndCertificateResponse>,
  ): Promise<OperationStream<CreateKeysAndCertificateResponse>> {
    return this.#stream('CreateKeysAndCertificate', '', 'accepted', qos, callback);
  }

  /** Subscribe to rejected CreateKeysAndCertificate answers. Resolves once the SUBACK is in. */
  subscribeToCreateKeysAndCertificateRejected(
    _request: CreateKeysAndCertificateSubscriptionRequest,
    qos: QoS,
    callback?: StreamCallback<ErrorResponse>,
  ): Promise<OperationStream<ErrorResponse>> {
    return this.#stream('CreateKeysAndCertificate', '', 'rejected', qos, callback);
  }

  /** Subscribe to accepted CreateCertificateFromCsr answers. Resolves once the SUBACK is in. */
  subscribeToCreateCertificateFromCsrAccepted(
    _request: CreateCertificateFromCsrSubscriptionRequest,
    qos: QoS,
    callback?: StreamCallback<CreateCertificateFromCsrResponse>,
  ): Promise<OperationStream<CreateCertificateFromCsrResponse>> {
    return this.#stream('CreateCertificateFromCsr', '', 'accepted', qos, callback);
  }

  /** Subscribe to rejected CreateCertificateFromCsr answers. Resolves once the SUBACK is in. */
  subscribeToCreateCertificateFromCsrRejected(
    _request: CreateCertificateFromCsrSubscriptionRequest,
    qos: QoS,
    callback?: StreamCallback<ErrorResponse>,
  ): Promise<OperationStream<ErrorResponse>> {
    return this.#stream('CreateCertificateFromCsr', '', 'rejected', qos, callback);
  }

  /** Subscribe to accepted RegisterThing answers of one template. Resolves once the SUBACK is in. */
  subscribeToRegisterThingAccepted(
    request: RegisterThingSubscriptionRequest,
    qos: QoS,
    callback?: StreamCallback<RegisterThingResponse>,
  ): Promise<OperationStream<RegisterThingResponse>> {
    return this.#stream('RegisterThing', request?.templateName, 'accepted', qos, callback);
  }

  /** Subscribe to rejected RegisterThing answers of one template. Resolves once the SUBACK is in. */
  subscribeToRegisterThingRejected(
    request: RegisterThingSubscriptionRequest,
    qos: QoS,
    callback?: StreamCallback<ErrorResponse>,
  ): Promise<OperationStream<ErrorResponse>> {
    return this.#stream('RegisterThing', request?.templateName, 'rejected', qos, callback);
  }

  async #publish(operation: OperationName, templateName: string, payload: unknown, qos: QoS): Promise<void> {
    assertQos(qos);
    const topic = operationTopics(operation, this.format, templateName).request;
    await loadCodec(this.format);
    const encoded = encodeRequest(operation, payload, this.format);
    const transport = this.#transport;
    if (!transport.connected) {
      throw new ConnectionLostError(`Cannot publish ${operation}: the MQTT client is not connected.`);
    }
    // Bounded, and ended by a drop: mqtt.js keeps an unacknowledged QoS 1 PUBLISH across a reconnect
    // and would never call back before it; the request is then taken back, not sent again.
    const call = new PendingCall<void>(operation, this.#timeoutMs, undefined);
    call.phase = 'publish';
    const onDrop = () =>
      call.reject(
        new ConnectionLostError(
          `The connection dropped before the ${operation} request was acknowledged; it will not be sent ` +
            'again. Reconnect and publish again.',
        ),
      );
    transport.on('close', onDrop);
    transport.on('offline', onDrop);
    let acknowledged = false;
    const { sent, messageId } = publishTracked(transport, topic, encoded, qos);
    call.onEnd(() => {
      transport.removeListener('close', onDrop);
      transport.removeListener('offline', onDrop);
      if (messageId !== undefined && !acknowledged) forgetRequest(transport, messageId);
    });
    sent.then(
      () => {
        acknowledged = true;
        call.resolve(undefined);
      },
      (error: unknown) => {
        acknowledged = true;
        call.reject(publishFailure(operation, error, transport.connected));
      },
    );
    return call.promise;
  }

  async #stream<T>(
    operation: OperationName,
    templateName: string | undefined,
    kind: 'accepted' | 'rejected',
    qos: QoS,
    callback: StreamCallback<T> | undefined,
  ): Promise<OperationStream<T>>;
  async #stream(
    operation: OperationName,
    templateName: string | undefined,
    kind: 'accepted' | 'rejected',
    qos: QoS,
    callback: StreamCallback<unknown> | undefined,
  ): Promise<OperationStream<unknown>> {
    assertQos(qos);
    const topic = operationTopics(operation, this.format, templateName ?? '')[kind];
    const schema = kind === 'accepted' ? operations[operation].acceptedSchema : ErrorResponseSchema;
    return OperationStream.open(
      this.#router,
      { operation, topic, format: this.format, schema },
      qos,
      callback,
      this.#timeoutMs,
    );
  }
}
