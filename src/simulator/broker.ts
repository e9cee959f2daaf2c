/**
 * The simulator's MQTT broker: aedes behind a `node:tls` server (mutual TLS, ALPN `x-amzn-mqtt-ca` as AWS
 * offers it on port 443) or a plain `node:net` one. It reads each client's certificate at CONNECT, asks the
 * simulator what the connection may do, and delivers an answer only to the connection it is meant for.
 *
 * aedes speaks MQTT 3.1.1 only (and 3.1); an MQTT 5 client is refused at CONNECT.
 */
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, TLSSocket } from 'node:tls';
import { Aedes, type AedesPublishPacket, type Client } from 'aedes';
import { muteWireDebug } from '../mqtt/log.js';
import { InvalidArgumentError } from '../protocol/errors.js';
import { parseTopic } from '../protocol/topics.js';
import { certificateIdOf } from './ca.js';
import { limitPacketSize } from './packet-size.js';
import { isSys, type Role } from './policy.js';

/** One accepted connection and what it may do. */
export interface BrokerConnection {
  readonly client: Client;
  readonly clientId: string;
  readonly role: Role;
  readonly certificateId?: string;
}

/** What the client offered at CONNECT. */
export interface ConnectAttempt {
  clientId: string;
  /** The certificate presented over TLS (none on plain MQTT). */
  certificateId?: string;
  alpnProtocol?: string;
}

/** The simulator's decisions, called by the broker as packets arrive. */
export interface BrokerHooks {
  /** CONNECT: the role of the connection, or undefined to refuse it (CONNACK 5, not authorized). */
  connect(attempt: ConnectAttempt): Role | undefined;
  /** A TLS handshake failed (no client certificate, an unknown CA, no common ALPN protocol). */
  handshakeFailed(reason: string): void;
  /**
   * One topic filter of a SUBSCRIBE; false refuses it (SUBACK 0x80). `packet` is shared by the filters
   * of one SUBSCRIBE packet, so a decision can be made once per packet.
   */
  subscribe(connection: BrokerConnection, filter: string, packet: Map<string, boolean>): boolean;
  unsubscribe(connection: BrokerConnection, filter: string): void;
  /** A PUBLISH; false closes the connection, as AWS does on an unauthorised publish. */
  publish(connection: BrokerConnection, topic: string, payload: Buffer): boolean;
}

/** TLS material for the server. */
export interface BrokerTls {
  key: string;
  cert: string;
  ca: string;
}

/** A listening broker. */
export interface RunningBroker {
  readonly host: string;
  readonly port: number;
  /** Publish `payload` on `topic` to `connection` only, and only if it is subscribed to the topic now. */
  sendAnswer(connection: BrokerConnection, topic: string, payload: Buffer): Promise<void>;
  /** Drop a connection at once, without a DISCONNECT (as a network failure would). */
  drop(connection: BrokerConnection): void;
  /** Drop every open connection made with this certificate; returns how many there were. */
  dropCertificate(certificateId: string): number;
  close(): Promise<void>;
}

/** ALPN protocols the server accepts: AWS's for MQTT over 443, and the IANA one. */
export const ALPN_PROTOCOLS = ['x-amzn-mqtt-ca', 'mqtt'];

/** Start aedes and its listener on `host:port`. */
export async function startBroker(options: {
  host: string;
  port: number;
  tls?: BrokerTls;
  /** The largest MQTT packet a client may send, fixed header included; a larger one closes its connection. */
  maxPacketBytes: number;
  hooks: BrokerHooks;
}): Promise<RunningBroker> {
  const { hooks } = options;
  const connections = new WeakMap<Client, BrokerConnection>();
  /** Connections made with a certificate, for dropping them when it is deactivated. */
  const open = new Set<BrokerConnection>();
  // Answers are marked by their payload buffer, which aedes passes along by reference on every copy of the
  // packet: the one field that survives from broker.publish to authorizeForward.
  const answerTargets = new WeakMap<Buffer, Client>();
  let subscribeBatch: WeakMap<Client, Map<string, boolean>> = new WeakMap();

  // The broker's packet codec would print every answer (keys, tokens) under DEBUG=mqtt-packet:*.
  muteWireDebug('aedes');
  const aedes = await Aedes.createBroker({
    authenticate(client, _username, _password, done) {
      const conn = client.conn;
      const attempt: ConnectAttempt = { clientId: client.id };
      if (conn instanceof TLSSocket) {
        const certificate = conn.getPeerX509Certificate();
        if (certificate !== undefined) attempt.certificateId = certificateIdOf(certificate.raw);
        if (typeof conn.alpnProtocol === 'string') attempt.alpnProtocol = conn.alpnProtocol;
      }
      const role = hooks.connect(attempt);
      if (role === undefined) {
        done(null, false);
        return;
      }
      const connection: BrokerConnection = { client, clientId: client.id, role };
      if (attempt.certificateId !== undefined) {
        Object.assign(connection, { certificateId: attempt.certificateId });
      }
      connections.set(client, connection);
      if (attempt.certificateId !== undefined) open.add(connection);
      done(null, true);
    },
    authorizeSubscribe(client, subscription, done) {
      const connection = connections.get(client);
      if (connection === undefined) {
        done(new Error('not connected'));
        return;
      }
      // aedes authorises the filters of one SUBSCRIBE in one synchronous loop: a batch per tick is a packet.
      let batch = subscribeBatch.get(client);
      if (batch === undefined) {
        batch = new Map();
        subscribeBatch.set(client, batch);
        queueMicrotask(() => subscribeBatch.delete(client));
      }
      done(null, hooks.subscribe(connection, subscription.topic, batch) ? subscription : null);
    },
    authorizePublish(client, packet, done) {
      const connection = client === null ? undefined : connections.get(client);
      if (connection === undefined) {
        done(new Error('not connected'));
        return;
      }
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
      done(hooks.publish(connection, packet.topic, payload) ? null : new Error('publish not authorised'));
    },
    authorizeForward(client, packet: AedesPublishPacket) {
      // aedes announces clients on $SYS; nobody is allowed to read them (a device would learn other client ids).
      if (isSys(packet.topic)) return null;
      const target = Buffer.isBuffer(packet.payload) ? answerTargets.get(packet.payload) : undefined;
      if (target !== undefined) return target === client ? packet : null;
      // Requests (and anything a client publishes on an answer topic) are for the service, not for peers.
      return parseTopic(packet.topic) === undefined ? packet : null;
    },
  });
  aedes.on('clientDisconnect', (client) => {
    const connection = connections.get(client);
    if (connection !== undefined) open.delete(connection);
  });
  aedes.on('unsubscribe', (filters, client) => {
    // aedes also reports the subscriptions a closing client drops; only a client's UNSUBSCRIBE counts.
    if (client.closed) return;
    const connection = connections.get(client);
    if (connection !== undefined) for (const filter of filters) hooks.unsubscribe(connection, filter);
  });

  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    // Small packets (SUBACK, PUBACK, an answer) must not wait for Nagle and delayed ACKs: 40 ms each here.
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const handle = (socket: Socket): void => {
    aedes.handle(socket);
    limitPacketSize(socket, options.maxPacketBytes);
  };
  let server: Server;
  if (options.tls !== undefined) {
    const tlsServer = createTlsServer({
      key: options.tls.key,
      cert: options.tls.cert,
      ca: [options.tls.ca],
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ALPN_PROTOCOLS,
    });
    tlsServer.on('secureConnection', (socket) => handle(socket));
    tlsServer.on('tlsClientError', (error) => hooks.handshakeFailed(error.message));
    server = tlsServer;
  } else {
    server = createNetServer((socket) => handle(socket));
  }
  server.on('connection', track);
  await new Promise<void>((resolve, reject) => {
    const onError = (error: unknown) => {
      server.off('listening', onListening);
      aedes.close();
      reject(listenFailed(error, options.host, options.port));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(options.port, options.host);
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('The simulator has no TCP address.');

  return {
    host: options.host,
    port: address.port,
    sendAnswer(connection, topic, payload) {
      answerTargets.set(payload, connection.client);
      return new Promise<void>((resolve) => {
        aedes.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, () => resolve());
      });
    },
    drop(connection) {
      connection.client.conn.destroy();
    },
    dropCertificate(certificateId) {
      let dropped = 0;
      for (const connection of open) {
        if (connection.client.closed) open.delete(connection);
        else if (connection.certificateId === certificateId) {
          connection.client.conn.destroy();
          open.delete(connection);
          dropped += 1;
        }
      }
      return dropped;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      subscribeBatch = new WeakMap();
    },
  };
}

/** Why `listen` failed, as an {@link InvalidArgumentError} that says what to do; other errors as they are. */
function listenFailed(error: unknown, host: string, port: number): unknown {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  const where = `port ${port} on ${host}`;
  switch (code) {
    case 'EADDRINUSE':
      return new InvalidArgumentError(
        `The simulator cannot listen: ${where} is already in use (EADDRINUSE). Stop what listens there, or pick another port (0 picks a free one).`,
        { cause: error },
      );
    case 'EACCES':
      return new InvalidArgumentError(
        `The simulator cannot listen: ${where} needs privileges this process lacks (EACCES). Pick a port above 1023 (0 picks a free one).`,
        { cause: error },
      );
    case 'EADDRNOTAVAIL':
      return new InvalidArgumentError(
        `The simulator cannot listen: ${host} is not an address of this machine (EADDRNOTAVAIL). Use 127.0.0.1, 0.0.0.0 or an address of one of its interfaces.`,
        { cause: error },
      );
    default:
      return error;
  }
}
