/**
 * Opening the MQTT connections provision() owns: mutual TLS with verification always on, ALPN on 443,
 * TCP_NODELAY, a clean session, no automatic reconnect. mqtt.js is loaded here on first use, so that
 * importing the package stays cheap.
 */
import { randomUUID } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { MqttClient } from 'mqtt';
import { type Endpoint, endpointUrl } from './endpoint.js';
import { AbortedError, ConnectionLostError, InvalidArgumentError, TimeoutError } from './errors.js';

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

/** A unique client id, as AWS IoT disconnects the older of two connections that share one. */
export function defaultClientId(): string {
  return `fleet-provision-${randomUUID()}`;
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
  const url = endpointUrl(endpoint);
  const client = new MqttClient(
    () => {
      // noDelay: mqtt.js leaves Nagle's algorithm on, which stalls every small request-response
      // exchange by a delayed ACK (tens of ms each); provisioning is nothing but such exchanges.
      const socket = tls
        ? tlsConnect({
            host: endpoint.host,
            port: endpoint.port,
            ...(isIpAddress(endpoint.host) ? {} : { servername: endpoint.host }),
            ...(caCertificate === undefined ? {} : { ca: caCertificate }),
            ...(certificate === undefined ? {} : { cert: certificate }),
            ...(privateKey === undefined ? {} : { key: privateKey }),
            ...(endpoint.alpnProtocols.length > 0 ? { ALPNProtocols: endpoint.alpnProtocols } : {}),
            rejectUnauthorized: true,
          })
        : netConnect({ host: endpoint.host, port: endpoint.port, noDelay: true });
      socket.setNoDelay(true);
      return socket;
    },
    {
      clientId: options.clientId ?? defaultClientId(),
      protocolVersion: options.protocolVersion ?? 4,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: timeoutMs,
      resubscribe: false,
      queueQoSZero: false,
    },
  );

  try {
    await new Promise<void>((resolve, reject) => {
      const settle = (error?: Error) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        client.removeListener('error', onError);
        client.removeListener('close', onClose);
        client.removeListener('connect', onConnect);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onConnect = () => settle();
      const onError = (error: Error) => settle(connectFailure(url, error));
      const onClose = () =>
        settle(
          new ConnectionLostError(
            `The connection to ${url} closed before the broker accepted it. If this repeats, the broker ` +
              'refuses the client certificate: check that it is registered, ACTIVE and signed by a CA it trusts.',
          ),
        );
      const onAbort = () => settle(new AbortedError(signal?.reason));
      const timer = setTimeout(() => settle(new TimeoutError({ phase: 'connect', timeoutMs })), timeoutMs);
      client.on('connect', onConnect);
      client.on('error', onError);
      client.on('close', onClose);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  } catch (error) {
    client.end(true);
    throw error;
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
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([
    client.endAsync(true).then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), boundMs);
    }),
  ]);
  clearTimeout(timer);
  if (!ended) client.stream?.destroy();
}

function isIpAddress(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

function connectFailure(url: string, error: Error): ConnectionLostError {
  const code = 'code' in error ? String(error.code) : '';
  let hint = 'Check the endpoint, the network and the credentials.';
  let retryable = true;
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME/.test(code)) {
    hint = "The server's certificate is not trusted: pass the CA that signs it (for AWS, Amazon Root CA 1).";
    retryable = false;
  } else if (code === 'ECONNREFUSED') {
    hint = 'Nothing listens there: check the host and port.';
  } else if (/Not authorized|Bad username|refused/i.test(error.message)) {
    hint = 'The broker refused the client certificate: check that it is registered and ACTIVE.';
  } else if (/alert|handshake|ECONNRESET/i.test(`${code} ${error.message}`)) {
    hint = 'The TLS handshake failed: the broker may have refused the client certificate.';
  }
  return new ConnectionLostError(`Could not connect to ${url}: ${error.message}. ${hint}`, {
    cause: error,
    retryable,
  });
}
