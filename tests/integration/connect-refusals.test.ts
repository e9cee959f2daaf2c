/**
 * Connection refusals point the right way: an MQTT 5 CONNACK refusal names its reason and is not
 * retried when trying again cannot help; plain mqtt:// to a TLS port says to use mqtts://. Neither
 * says to check the client certificate.
 */
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FleetProvisioningError } from '../../src/protocol/errors.js';
import { provision } from '../../src/provision/provision.js';
import type { ProgressEvent } from '../../src/provision/types.js';
import { type Simulator, startSimulator } from '../../src/simulator/index.js';

/** A server that answers every CONNECT with an MQTT 5 CONNACK carrying `reasonCode`, and counts connections. */
async function refusingBroker(
  reasonCode: number,
): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', () => {
      // CONNACK: type 2, remaining length 3, no session present, the reason code, no properties.
      socket.end(Buffer.from([0x20, 0x03, 0x00, reasonCode, 0x00]));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return {
    port: address.port,
    connections: () => count,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function failure(
  options: Parameters<typeof provision>[0],
): Promise<{ error: FleetProvisioningError; events: ProgressEvent[] }> {
  const events: ProgressEvent[] = [];
  const error: unknown = await provision({ ...options, onProgress: (event) => events.push(event) }).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof FleetProvisioningError))
    throw new Error(`expected a FleetProvisioningError, got ${String(error)}`);
  return { error, events };
}

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ serverKeyType: 'ec-p256' });
});
afterAll(async () => {
  await sim.close();
});

describe('MQTT 5 refusals', () => {
  it('not authorized (0x87): names the policy, is not retried', async () => {
    const broker = await refusingBroker(0x87);
    try {
      const { error, events } = await failure({
        endpoint: `mqtt://127.0.0.1:${broker.port}`,
        protocolVersion: 5,
        templateName: 'T',
        retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 1 },
        timeoutMs: 5_000,
      });
      expect(error.code).toBe('CONNECTION_LOST');
      expect(error.message).toMatch(
        /refused the connection: Connection refused: Not authorized\..*iot:Connect/,
      );
      expect(error).toHaveProperty('retryable', false);
      expect(events.filter((e) => e.step === 'connecting')).toHaveLength(1);
      expect(broker.connections()).toBe(1);
    } finally {
      await broker.close();
    }
  });

  it('server busy (0x89) is worth another try', async () => {
    const broker = await refusingBroker(0x89);
    try {
      const { error } = await failure({
        endpoint: `mqtt://127.0.0.1:${broker.port}`,
        protocolVersion: 5,
        templateName: 'T',
        retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
        timeoutMs: 5_000,
      });
      expect(error.message).toMatch(/busy: try again later/);
      expect(broker.connections()).toBe(2);
    } finally {
      await broker.close();
    }
  });

  it('a broker that does not speak MQTT 5 (the simulator): says to use MQTT 3.1.1, once', async () => {
    const { error, events } = await failure({
      endpoint: sim.url,
      caCertificate: sim.caCertificate,
      claimCertificate: sim.claimCertificate,
      claimPrivateKey: sim.claimPrivateKey,
      protocolVersion: 5,
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'SN-v5' },
      retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 1 },
      timeoutMs: 5_000,
    });
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.message).toMatch(/protocolVersion 4 \(MQTT 3\.1\.1\)/);
    expect(error.message).not.toMatch(/client certificate/);
    expect(events.filter((e) => e.step === 'connecting')).toHaveLength(1);
  });
});

describe('plain mqtt:// to a TLS port', () => {
  it('says to use mqtts://, not to check the client certificate', async () => {
    const { error } = await failure({
      endpoint: `mqtt://127.0.0.1:${sim.port}`,
      templateName: 'DemoTemplate',
      retry: false,
      timeoutMs: 5_000,
    });
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.message).toMatch(/use mqtts:\/\//);
    expect(error.message).not.toMatch(/client certificate/);
  });
});
