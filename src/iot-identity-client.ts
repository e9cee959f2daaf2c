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
import { encodePayload } from './codec.js';
import {
  ConnectionLostError,
  InvalidArgumentError,
  type OperationName,
  PublishFailedError,
} from './errors.js';
import { OperationStream, type StreamCallback } from './operation-stream.js';
import { operations } from './operations.js';
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
} from './schemas.js';
import { routerFor, type TopicRouter } from './topic-router.js';
import { assertFormat, operationTopics, type PayloadFormat } from './topics.js';
import type { MqttTransport, QoS } from './transport.js';
import { checkSchema } from './validate.js';

/** Options of {@link IotIdentityClient}. */
export interface IotIdentityClientOptions {
  /** Payload format of every request and answer. Default `'json'`. */
  format?: PayloadFormat;
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
  readonly #transport: MqttTransport;
  readonly #router: TopicRouter;
  /** The payload format this client speaks. */
  readonly format: PayloadFormat;

  /**
   * @param transport a connected mqtt.js `MqttClient` (or anything that fits {@link MqttTransport}).
   * @throws {InvalidArgumentError} on an unknown format.
   */
  constructor(transport: MqttTransport, options: IotIdentityClientOptions = {}) {
    const format = options.format ?? 'json';
    assertFormat(format);
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
    const checked = checkSchema<unknown>(operations[operation].requestSchema, payload);
    if (!checked.ok) {
      const list = checked.issues.map((i) => `${i.path}: ${i.problem}`).join('; ');
      throw new InvalidArgumentError(`Invalid ${operation} request (${list}).`);
    }
    if (!this.#transport.connected) {
      throw new ConnectionLostError(`Cannot publish ${operation}: the MQTT client is not connected.`);
    }
    try {
      await this.#transport.publishAsync(topic, encodePayload(checked.value, this.format), { qos });
    } catch (error) {
      throw new PublishFailedError(`Publishing the ${operation} request failed; the request was not sent.`, {
        cause: error,
      });
    }
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
    );
  }
}

function assertQos(qos: unknown): asserts qos is QoS {
  if (qos !== 0 && qos !== 1) {
    throw new InvalidArgumentError(`Invalid QoS ${String(qos)}: AWS IoT Core supports 0 and 1.`);
  }
}
