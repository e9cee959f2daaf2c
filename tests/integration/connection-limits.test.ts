/**
 * The limits of the connections provision() opens, and the checks made before any of them: a stalled
 * CONNECT is a TIMEOUT in phase `connect`; bad options and bad CSRs are refused without connecting; an
 * oversized message is never buffered whole.
 */
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { MqttClient, Packet } from 'mqtt';
import { FleetProvisioningClient } from '../../src/client/fleet-provisioning-client.js';
import { IotIdentityClient } from '../../src/identity/iot-identity-client.js';
import { closeConnection, MAX_PACKET_BYTES, openConnection } from '../../src/provision/connection.js';
import { parseEndpoint } from '../../src/provision/endpoint.js';
import { provision } from '../../src/provision/provision.js';
import { startAedes } from '../helpers/aedes-broker.js';
import { runCli } from '../helpers/cli-run.js';
import { failure } from '../helpers/failure.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { closeClients, connectClient } from '../helpers/mqtt.js';
import { makeCsr, tamperSignature } from '../helpers/sim-csr.js';
import { issueCertificate, makeCa } from '../helpers/x509.js';

/** A TCP server that accepts connections and never says a word: a broker that stalls CONNECT. */
interface SilentServer {
  url: string;
  /** Connections accepted so far. */
  accepted: number;
  close(): Promise<void>;
}

async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  const state = { accepted: 0 };
  const server: Server = createServer((socket) => {
    state.accepted++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return {
    url: `mqtt://127.0.0.1:${address.port}`,
    get accepted() {
      return state.accepted;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let silent: SilentServer;
beforeAll(async () => {
  silent = await startSilentServer();
});
afterAll(async () => {
  await silent.close();
});

describe('a stalled CONNECT', () => {
  it('openConnection() rejects TIMEOUT with phase "connect", not CONNECTION_LOST', async () => {
    const error = await failure(openConnection({ endpoint: parseEndpoint(silent.url), timeoutMs: 150 }));
    expect(error).toMatchObject({ code: 'TIMEOUT', phase: 'connect', timeoutMs: 150 });
  });

  it('provision() rejects TIMEOUT with phase "connect"', async () => {
    const error = await failure(
      provision({ endpoint: silent.url, templateName: 'Factory', timeoutMs: 150, retry: false }),
    );
    expect(error).toMatchObject({ code: 'TIMEOUT', phase: 'connect' });
  });

  it('the CLI exits 4', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stalled-'));
    try {
      // Claim credentials the CLI insists on (they go unused over mqtt://).
      const claim = await makeCsr('ec-p256');
      const ca = await makeCa();
      await writeFile(join(dir, 'claim.crt'), await issueCertificate(ca, claim.csrPem));
      await writeFile(join(dir, 'claim.key'), claim.privateKeyPem, { mode: 0o600 });
      const result = await runCli([
        'provision',
        '--endpoint',
        silent.url,
        '--template',
        'Factory',
        '--claim-cert',
        join(dir, 'claim.crt'),
        '--claim-key',
        join(dir, 'claim.key'),
        '--timeout',
        '150',
        '--retries',
        '0',
        '--out',
        join(dir, 'out'),
      ]);
      expect(result.stderr).toMatch(/TIMEOUT|timed out/);
      expect(result.code).toBe(4);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('options and CSRs are checked before any traffic', () => {
  it.each([
    ['a fractional timeoutMs', { timeoutMs: 1500.5 }],
    ['a timeoutMs beyond setTimeout', { timeoutMs: 3e9 }],
    ['a signal that is not an AbortSignal', { signal: 'stop' }],
    ['a fractional retry delay', { retry: { baseDelayMs: 0.5 } }],
    ['a retry delay beyond setTimeout', { retry: { maxDelayMs: 3e9 } }],
  ])('%s → INVALID_ARGUMENT, no connection opened', async (_name, extra) => {
    const before = silent.accepted;
    const options = { endpoint: silent.url, templateName: 'Factory', ...extra };
    // @ts-expect-error wrong types on purpose, as a JavaScript caller could pass them
    const error = await failure(provision(options));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(silent.accepted).toBe(before);
  });

  it('a CSR whose signature does not verify → INVALID_ARGUMENT, no connection opened', async () => {
    const { csrPem } = await makeCsr('ec-p256');
    const before = silent.accepted;
    const error = await failure(
      provision({ endpoint: silent.url, templateName: 'Factory', keys: { csr: tamperSignature(csrPem) } }),
    );
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(error.message).toMatch(/signature/);
    expect(silent.accepted).toBe(before);
  });

  it('a CSR with a key AWS IoT does not sign (RSA 1024) → INVALID_ARGUMENT, no connection opened', async () => {
    const { csrPem } = await makeCsr('rsa-1024');
    const before = silent.accepted;
    const error = await failure(
      provision({ endpoint: silent.url, templateName: 'Factory', keys: { csr: csrPem } }),
    );
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(error.message).toMatch(/2048/);
    expect(silent.accepted).toBe(before);
  });

  it('FleetProvisioningClient refuses a badly signed CSR before publishing anything', async () => {
    const broker = await startAedes();
    const device = await connectClient(broker.url);
    const sent: string[] = [];
    device.on('packetsend', (packet: Packet) => sent.push(packet.cmd));
    const client = new FleetProvisioningClient(device);
    const { csrPem } = await makeCsr('ec-p256');
    const error = await failure(
      client.createCertificateFromCsr({ certificateSigningRequest: tamperSignature(csrPem) }),
    );
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(sent).toEqual([]);
    await client.close();
    await closeClients(device);
    await broker.close();
  });
});

describe('an oversized message is never buffered whole', () => {
  const BIG = Buffer.alloc(200 * 1024, 0x41);

  /** Largest PUBLISH the client parsed. */
  function largestPublish(device: MqttClient): () => number {
    let largest = 0;
    device.on('packetreceive', (packet: Packet) => {
      if (packet.cmd === 'publish') largest = Math.max(largest, packet.payload.length);
    });
    return () => largest;
  }

  it('MQTT 5: CONNECT carries a maximum packet size, and the broker drops the oversized message', async () => {
    const broker = await startMosquitto();
    try {
      const device = await openConnection({
        endpoint: parseEndpoint(broker.url),
        protocolVersion: 5,
        timeoutMs: 5_000,
      });
      expect(device.options.properties?.maximumPacketSize).toBe(MAX_PACKET_BYTES);
      const largest = largestPublish(device);
      await device.subscribeAsync('answers/#', { qos: 1 });
      const small = new Promise<void>((resolve) =>
        device.on('message', (topic) => {
          if (topic === 'answers/small') resolve();
        }),
      );
      const sender = await connectClient(broker.url, { protocolVersion: 5 });
      await sender.publishAsync('answers/big', BIG, { qos: 1 });
      await sender.publishAsync('answers/small', 'ok', { qos: 1 });
      await small;
      expect(largest()).toBe(2);
      expect(device.connected).toBe(true);
      await closeClients(sender);
      await closeConnection(device);
    } finally {
      await broker.close();
    }
  });

  it('MQTT 3.1.1: the connection closes as soon as an oversized packet is announced', async () => {
    const broker = await startAedes();
    const device = await openConnection({ endpoint: parseEndpoint(broker.url), timeoutMs: 5_000 });
    const largest = largestPublish(device);
    await device.subscribeAsync('answers/#', { qos: 1 });
    const closed = new Promise<void>((resolve) => device.once('close', () => resolve()));
    const sender = await connectClient(broker.url);
    await sender.publishAsync('answers/big', BIG, { qos: 0 });
    await closed;
    expect(largest()).toBe(0);
    await closeClients(sender);
    await closeConnection(device);
    await broker.close();
  });
});

describe('reason codes and granted QoS from real brokers', () => {
  it('a CONNACK 0x9F (connection rate exceeded) is a retryable throttle, and says so', async () => {
    // A broker that answers every CONNECT with MQTT 5 CONNACK reason code 0x9F.
    const server = createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => socket.end(Buffer.from([0x20, 0x03, 0x00, 0x9f, 0x00])));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    try {
      const error = await failure(
        openConnection({
          endpoint: parseEndpoint(`mqtt://127.0.0.1:${address.port}`),
          protocolVersion: 5,
          timeoutMs: 5_000,
        }),
      );
      expect(error).toMatchObject({ code: 'CONNECTION_LOST', retryable: true });
      expect(error.message).toMatch(/throttles connections: retry with backoff/);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a stream reports the QoS mosquitto granted (max_qos 0), not the QoS asked for', async () => {
    const broker = await startMosquitto({ extraConfig: ['max_qos 0'] });
    try {
      const device = await connectClient(broker.url, { protocolVersion: 5 });
      const identity = new IotIdentityClient(device);
      const stream = await identity.subscribeToCreateKeysAndCertificateAccepted({}, 1);
      expect(stream.qos).toBe(0);
      await stream.unsubscribe();
      await closeClients(device);
    } finally {
      await broker.close();
    }
  });
});
