/**
 * Opening the MQTT connections provision() owns: mutual TLS with verification always on, ALPN on 443,
 * TCP_NODELAY, a clean session, no automatic reconnect. mqtt.js is loaded here on first use, so that
 * importing the package stays cheap.
 */
import { randomUUID } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { MqttClient } from 'mqtt';
import { MAX_PAYLOAD_BYTES } from './codec.js';
import { type Endpoint, endpointUrl } from './endpoint.js';
import {
  AbortedError,
  ConnectionLostError,
  InvalidArgumentError,
  reasonMeaning,
  TimeoutError,
} from './errors.js';
import { MAX_TIMEOUT_MS } from './option-checks.js';

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
  let need = 0; // bytes of the current packet's body still to skip
  let header: number[] = []; // the fixed header read so far (type byte + length bytes)
  socket.on('data', (chunk: Buffer) => {
    let offset = 0;
    while (offset < chunk.length) {
      if (need > 0) {
        const skip = Math.min(need, chunk.length - offset);
        need -= skip;
        offset += skip;
        continue;
      }
      const byte = chunk[offset++] ?? 0;
      header.push(byte);
      if (header.length === 1) continue;
      if ((byte & 0x80) !== 0 && header.length < 5) continue;
      let length = 0;
      for (let i = header.length - 1; i >= 1; i--) length = length * 128 + ((header[i] ?? 0) & 0x7f);
      const total = header.length + length;
      header = [];
      if (total > limit) {
        socket.destroy(
          new Error(`The broker sent an MQTT packet of ${total} bytes, over the ${limit}-byte limit.`),
        );
        return;
      }
      need = length;
    }
  });
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
  const protocolVersion = options.protocolVersion ?? 4;
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
      const onError = (error: Error) =>
        settle(
          error.message === 'connack timeout'
            ? new TimeoutError({ phase: 'connect', timeoutMs })
            : connectFailure(url, error),
        );
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

/** The longest {@link closeConnection} waits for mqtt.js to finish closing. */
const CLOSE_TIMEOUT_MS = 5_000;

/** Close a connection provision() opened, waiting for it to finish (at most 5 s); never throws. */
export async function closeConnection(client: MqttClient): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
    timer.unref();
    client.endAsync(true).then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}

function isIpAddress(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

function connectFailure(url: string, error: Error): ConnectionLostError {
  const reasonCode: unknown = 'code' in error ? error.code : undefined;
  const code = reasonCode === undefined ? '' : String(reasonCode);
  let hint = 'Check the endpoint, the network and the credentials.';
  let retryable = true;
  if (typeof reasonCode === 'number' && reasonMeaning(reasonCode).throttled) {
    // MQTT 5 CONNACK 0x96/0x97/0x9F (rate, quota, connection rate): a throttle, like a 429.
    hint = 'The broker throttles connections: retry with backoff.';
  } else if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME/.test(code)) {
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
