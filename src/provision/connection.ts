/**
 * Opening the MQTT connections provision() owns: mutual TLS with verification always on, ALPN on 443,
 * TCP_NODELAY, a clean session, no automatic reconnect. mqtt.js is loaded here on first use, so that
 * importing the package stays cheap.
 */
import { createHash, randomUUID } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { createSecureContext, type SecureContext, connect as tlsConnect } from 'node:tls';
import type { MqttClient } from 'mqtt';
import { settleWithin, withDeadline } from '../internal/deadline.js';
import { optional } from '../internal/optional.js';
import { mqttLogger, muteWireDebug } from '../mqtt/log.js';
import { PacketSizeScanner } from '../mqtt/packet-size.js';
import { MAX_TIMEOUT_MS } from '../protocol/call-options.js';
import { AbortedError, ConnectionLostError, InvalidArgumentError, TimeoutError } from '../protocol/errors.js';
import { MAX_PAYLOAD_BYTES } from '../protocol/payload.js';
import { type Endpoint, endpointUrl, isLoopbackHost } from './endpoint.js';

/** What {@link openConnection} needs. */
export interface ConnectionOptions {
  endpoint: Endpoint;
  /** Client certificate, PEM. Required for `mqtts`. */
  certificate?: string;
  /** Client private key, PEM. Required for `mqtts`. */
  privateKey?: string;
  /** CA certificate(s) that sign the server's certificate, PEM. Default: Node's bundled roots. */
  caCertificate?: string;
  /** Default: `fleet-provision-<uuid>`, unique so that two devices never kick each other off. */
  clientId?: string;
  /** MQTT 3.1.1 (4, default) or 5. */
  protocolVersion?: 4 | 5;
  /** Deadline for TCP, TLS and CONNACK together. */
  timeoutMs: number;
  signal?: AbortSignal;
}

const warnedPlaintext = new Set<string>();

/**
 * Plain `mqtt://` sends the claim credentials' answers (the device's private key, its ownership token)
 * in clear text. It is allowed to a loopback address (a broker on this machine), or anywhere with
 * `insecure: true`, which warns once per endpoint and process (`process.emitWarning`, code
 * `FLEET_PROVISION_PLAINTEXT`).
 * @throws {InvalidArgumentError} for plaintext to another host without `insecure: true`.
 * @internal
 */
export function checkPlaintext(endpoint: Endpoint, insecure: boolean): void {
  if (endpoint.protocol !== 'mqtt' || isLoopbackHost(endpoint.host)) return;
  const url = endpointUrl(endpoint);
  if (!insecure) {
    throw new InvalidArgumentError(
      `${url} is plain MQTT to another machine: the device's new private key and ownership token would ` +
        'cross the network unencrypted, and no client certificate can be presented. Use mqtts:// ' +
        '(AWS IoT accepts nothing else), or pass insecure: true (CLI: --insecure) for a test broker on a ' +
        'network you control.',
    );
  }
  if (warnedPlaintext.has(url)) return;
  warnedPlaintext.add(url);
  process.emitWarning(
    `provisioning over plain MQTT to ${url} (insecure: true): anyone on the network path can read the ` +
      "device's private key and ownership token.",
    { code: 'FLEET_PROVISION_PLAINTEXT' },
  );
}

/** How much longer than our own deadline mqtt.js's CONNACK timer is given. */
const CONNACK_GRACE_MS = 1_000;

/**
 * The largest MQTT packet a connection provision() owns accepts: AWS IoT's 128 KiB message limit, plus
 * room for the topic and headers. A larger answer is not a real one.
 */
export const MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 4 * 1024;

/**
 * Close `socket` as soon as the broker announces a packet over `limit` bytes (the MQTT fixed header
 * carries its length), so that no more than one chunk of it is ever buffered. On MQTT 5 the broker is
 * told the limit in CONNECT and never sends such a packet; on MQTT 3.1.1, which has no way to say it,
 * this is the bound. Reads the same bytes mqtt.js reads, without taking them from it.
 */
export function limitPacketSize(socket: Socket, limit: number): void {
  const scanner = new PacketSizeScanner(limit);
  const watch = (chunk: Buffer) => {
    if (!scanner.feed(chunk)) return;
    socket.removeListener('data', watch);
    socket.destroy(new Error(`The broker sent an MQTT packet over the ${limit}-byte limit.`));
  };
  socket.on('data', watch);
}

/** A unique client id, as AWS IoT disconnects the older of two connections that share one. */
export function defaultClientId(): string {
  return `fleet-provision-${randomUUID()}`;
}

/** A TLS identity (CA, certificate, key) made ready once, and the last session to resume per server. */
interface TlsIdentity {
  readonly context: SecureContext;
  readonly sessions: Map<string, Buffer>;
}

/** The few identities a process connects with (a claim certificate, a device's own), newest last. */
const identities = new Map<string, TlsIdentity>();
const MAX_IDENTITIES = 8;

/**
 * The secure context for this CA, certificate and key, built once: parsing the certificate and key into
 * a context costs about a millisecond of CPU per connection otherwise, which a fleet of devices
 * connecting with one claim certificate (`fleet-provision load`) pays for each. Keyed by a digest, so no
 * key material is kept beyond the context itself; a handful are kept, the oldest dropped first.
 */
function tlsIdentity(
  caCertificate: string | undefined,
  certificate: string,
  privateKey: string,
): TlsIdentity {
  const id = createHash('sha256')
    .update(caCertificate ?? '')
    .update('\0')
    .update(certificate)
    .update('\0')
    .update(privateKey)
    .digest('base64');
  let identity = identities.get(id);
  if (identity === undefined) {
    identity = {
      context: createSecureContext({
        ...optional('ca', caCertificate),
        cert: certificate,
        key: privateKey,
      }),
      sessions: new Map(),
    };
    if (identities.size >= MAX_IDENTITIES) {
      const oldest = identities.keys().next().value;
      if (oldest !== undefined) identities.delete(oldest);
    }
  } else identities.delete(id);
  identities.set(id, identity);
  return identity;
}

/**
 * Connect an mqtt.js client and resolve once the broker accepted it (CONNACK).
 * @throws {ConnectionLostError} when the TCP, TLS or MQTT connection is refused (an untrusted server
 * certificate, a client certificate the broker refuses, a closed port).
 * @throws {TimeoutError} phase `connect`; {@link AbortedError}; {@link InvalidArgumentError}.
 */
export async function openConnection(options: ConnectionOptions): Promise<MqttClient> {
  const { endpoint, certificate, privateKey, caCertificate, timeoutMs, signal } = options;
  const tls = endpoint.protocol === 'mqtts';
  if (tls && (certificate === undefined || privateKey === undefined)) {
    throw new InvalidArgumentError('A TLS connection needs a client certificate and its private key (PEM).');
  }
  if (signal?.aborted === true) throw new AbortedError(signal.reason);
  const { MqttClient } = await import('mqtt');
  muteWireDebug();
  const protocolVersion = options.protocolVersion ?? 4;
  const url = endpointUrl(endpoint);
  const identity =
    tls && certificate !== undefined && privateKey !== undefined
      ? tlsIdentity(caCertificate, certificate, privateKey)
      : undefined;
  const server = `${endpoint.host}:${endpoint.port}`;
  const client = new MqttClient(
    () => {
      // noDelay: mqtt.js leaves Nagle's algorithm on, which stalls every small request-response
      // exchange by a delayed ACK (tens of ms each); provisioning is nothing but such exchanges.
      let socket: Socket;
      if (identity !== undefined) {
        // The same identity to the same server resumes the last TLS session (a shorter handshake); the
        // server's certificate is still verified against the CA.
        const session = identity.sessions.get(server);
        const secure = tlsConnect({
          host: endpoint.host,
          port: endpoint.port,
          ...(isIpAddress(endpoint.host) ? {} : { servername: endpoint.host }),
          secureContext: identity.context,
          ...(session === undefined ? {} : { session }),
          ...(endpoint.alpnProtocols.length > 0 ? { ALPNProtocols: endpoint.alpnProtocols } : {}),
          rejectUnauthorized: true,
        });
        secure.on('session', (ticket: Buffer) => identity.sessions.set(server, ticket));
        socket = secure;
      } else socket = netConnect({ host: endpoint.host, port: endpoint.port, noDelay: true });
      socket.setNoDelay(true);
      limitPacketSize(socket, MAX_PACKET_BYTES);
      return socket;
    },
    {
      clientId: options.clientId ?? defaultClientId(),
      protocolVersion,
      clean: true,
      reconnectPeriod: 0,
      // Our own deadline below reports a stalled CONNECT as TIMEOUT (phase connect); mqtt.js's own
      // CONNACK timer only backs it up, later.
      connectTimeout: Math.min(timeoutMs + CONNACK_GRACE_MS, MAX_TIMEOUT_MS),
      // On MQTT 5 the broker must not send a packet larger than this: an oversized message is dropped
      // by the broker instead of being buffered whole by mqtt.js before the size check can run.
      ...(protocolVersion === 5 ? { properties: { maximumPacketSize: MAX_PACKET_BYTES } } : {}),
      resubscribe: false,
      queueQoSZero: false,
      // mqtt.js would log every payload under DEBUG=mqttjs*: this logger prints sizes instead.
      log: mqttLogger,
    },
  );

  let unlisten = () => {};
  const accepted = new Promise<void>((resolve, reject) => {
    const onConnect = () => resolve();
    const onError = (error: Error) =>
      reject(
        error.message === 'connack timeout'
          ? new TimeoutError({ phase: 'connect', timeoutMs })
          : connectFailure(url, error),
      );
    const onClose = () =>
      reject(
        new ConnectionLostError(
          tls
            ? `The connection to ${url} closed before the broker accepted it. If this repeats, the broker ` +
                'refuses the client certificate: check that it is registered, ACTIVE and signed by a CA it trusts.'
            : `The connection to ${url} closed before the broker answered the MQTT CONNECT. If that port ` +
                'expects TLS (AWS IoT: 8883 or 443), use mqtts://; otherwise check that an MQTT broker listens there.',
        ),
      );
    const onAbort = () => reject(new AbortedError(signal?.reason));
    client.on('connect', onConnect);
    client.on('error', onError);
    client.on('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
    unlisten = () => {
      signal?.removeEventListener('abort', onAbort);
      client.removeListener('error', onError);
      client.removeListener('close', onClose);
      client.removeListener('connect', onConnect);
    };
  });
  try {
    await withDeadline(accepted, timeoutMs, () => new TimeoutError({ phase: 'connect', timeoutMs }));
  } catch (error) {
    client.end(true);
    throw error;
  } finally {
    unlisten();
  }
  // After CONNACK an error without a listener would crash the process; the calls report drops.
  client.on('error', () => {});
  return client;
}

/**
 * Close a connection provision() opened, waiting at most `boundMs` (default 2 s) for it to finish, then
 * destroying the socket; never throws.
 */
export async function closeConnection(client: MqttClient, boundMs = 2_000): Promise<void> {
  if (!(await settleWithin(client.endAsync(true), boundMs))) client.stream?.destroy();
}

function isIpAddress(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

const NOT_AUTHORIZED =
  'The broker refused the connection as not authorized: the claim certificate must be registered and ' +
  'ACTIVE, and its policy must allow iot:Connect for this client id.';

/**
 * What a CONNACK refusal means for the user: MQTT 3.1.1 return codes 1 to 5, and MQTT 5 reason codes
 * (0x84 = 132 unsupported version … 0x9F = 159 connection rate exceeded; keys in decimal).
 */
const REFUSALS: Readonly<Record<number, { hint: string; retryable?: true }>> = {
  1: { hint: 'The broker does not speak this MQTT version: use protocolVersion 4 (MQTT 3.1.1).' },
  2: { hint: 'The broker refused the client id: use another (AWS IoT: at most 128 characters).' },
  3: { hint: 'The broker is unavailable for now: try again later.', retryable: true },
  4: { hint: 'The broker wants a user name and password: AWS IoT needs none, so check the endpoint.' },
  5: { hint: NOT_AUTHORIZED },
  132: { hint: 'The broker does not speak this MQTT version: use protocolVersion 4 (MQTT 3.1.1).' },
  133: { hint: 'The broker refused the client id: use another (AWS IoT: at most 128 characters).' },
  134: { hint: 'The broker wants a user name and password: AWS IoT needs none, so check the endpoint.' },
  135: { hint: NOT_AUTHORIZED },
  136: { hint: 'The broker is unavailable for now: try again later.', retryable: true },
  137: { hint: 'The broker is busy: try again later.', retryable: true },
  150: {
    hint: 'The broker throttles this client: retry with backoff (message rate too high).',
    retryable: true,
  },
  138: { hint: 'The broker has banned this client: ask its operator.' },
  140: { hint: 'The broker wants an authentication method this client does not use: check the endpoint.' },
  151: { hint: 'The broker throttles this client: retry with backoff (quota exceeded).', retryable: true },
  156: { hint: 'The broker sends this client to another server: check the endpoint.' },
  157: { hint: 'The broker has moved: check the endpoint.' },
  159: {
    hint: 'The broker throttles connections: retry with backoff (connection rate exceeded).',
    retryable: true,
  },
};

function connectFailure(url: string, error: Error): ConnectionLostError {
  const code = 'code' in error ? error.code : undefined;
  // The broker answered CONNACK with a refusal: mqtt.js sets the return or reason code as a number.
  if (typeof code === 'number' && /^Connection refused/i.test(error.message)) {
    const refusal = REFUSALS[code];
    const hint =
      refusal?.hint ??
      `The broker gave reason code 0x${code.toString(16).padStart(2, '0')}: see its documentation or log.`;
    return new ConnectionLostError(`The broker at ${url} refused the connection: ${error.message}. ${hint}`, {
      cause: error,
      retryable: refusal?.retryable === true,
    });
  }
  const name = code === undefined ? '' : String(code);
  let hint = 'Check the endpoint, the network and the credentials.';
  let retryable = true;
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME/.test(name)) {
    hint = "The server's certificate is not trusted: pass the CA that signs it (for AWS, Amazon Root CA 1).";
    retryable = false;
  } else if (name === 'ECONNREFUSED') {
    hint = 'Nothing listens there: check the host and port.';
  } else if (/^mqtt:/.test(url) && /header flag|Invalid|Unexpected|Malformed|protocol/i.test(error.message)) {
    hint =
      'The server did not answer in MQTT: if that port expects TLS (AWS IoT: 8883 or 443), use mqtts://.';
    retryable = false;
  } else if (/alert|handshake|ECONNRESET/i.test(`${name} ${error.message}`)) {
    hint = 'The TLS handshake failed: the broker may have refused the client certificate.';
  }
  return new ConnectionLostError(`Could not connect to ${url}: ${error.message}. ${hint}`, {
    cause: error,
    retryable,
  });
}
