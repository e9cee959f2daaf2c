/**
 * provision() against a broker where a test client plays a misbehaving service: a certificate that does
 * not belong to the key sent with it must stop everything before anything is written or registered.
 * And, against the simulator, no secret in anything provision() reports (property test).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { MqttClient } from 'mqtt';
import { generateKeyPair } from '../../src/device/keys.js';
import { decodePayload, encodePayload } from '../../src/protocol/payload.js';
import { topics } from '../../src/protocol/topics.js';
import { provision } from '../../src/provision/provision.js';
import { type Simulator, startSimulator } from '../../src/simulator/index.js';
import { startAedes, type TestBroker } from '../helpers/aedes-broker.js';
import { closeClients, connectClient } from '../helpers/mqtt.js';
import { tempDir } from '../helpers/provision-fixtures.js';
import { connectTo } from '../helpers/sim-mqtt.js';
import { issueCertificate, makeCa } from '../helpers/x509.js';

describe('a certificate that does not match its key', () => {
  let broker: TestBroker;
  let service: MqttClient;
  let device: MqttClient;
  const received: string[] = [];

  beforeAll(async () => {
    broker = await startAedes();
    service = await connectClient(broker.url);
    device = await connectClient(broker.url);
    const ca = await makeCa();
    const issued = await generateKeyPair('ec-p256');
    const other = await generateKeyPair('ec-p256');
    const certificatePem = await issueCertificate(ca, issued.publicKeyPem);
    const create = topics.createKeysAndCertificate();
    await service.subscribeAsync([create.request, topics.registerThing('DemoTemplate').request], { qos: 1 });
    service.on('message', (topic) => {
      received.push(topic);
      if (topic !== create.request) return;
      const answer = {
        certificateId: 'ab'.repeat(32),
        certificatePem,
        privateKey: other.privateKeyPem,
        certificateOwnershipToken: 'token-of-the-mismatch',
      };
      void service.publishAsync(create.accepted, encodePayload(answer, 'json'), { qos: 1 });
    });
  });

  afterAll(async () => {
    await closeClients(device, service);
    await broker.close();
  });

  it('rejects INVALID_RESPONSE, writes nothing and sends no RegisterThing', async () => {
    const dir = await tempDir('mismatch-');
    try {
      const out = join(dir.path, 'credentials');
      const error: unknown = await provision({
        client: device,
        templateName: 'DemoTemplate',
        parameters: { SerialNumber: 'SN-x' },
        outDir: out,
      }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'INVALID_RESPONSE', operation: 'CreateKeysAndCertificate' });
      expect(String(error)).not.toContain('PRIVATE KEY');
      expect(String(error)).not.toContain('token-of-the-mismatch');
      // The directory is made (0700) before any traffic; no credential file is in it.
      expect(readdirSync(out)).toEqual([]);
      expect(received).toEqual([topics.createKeysAndCertificate().request]);
    } finally {
      await dir.remove();
    }
  });
});

describe('secrets', () => {
  let sim: Simulator;

  beforeAll(async () => {
    sim = await startSimulator({ serverKeyType: 'ec-p256' });
  });

  afterAll(async () => {
    await sim.close();
  });

  it('never reports a private key, PEM body or ownership token (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.stringMatching(/^[A-Za-z0-9-]{1,24}$/),
        fc.constantFrom('server', 'generate'),
        fc.boolean(),
        async (serial, keys, failRegister) => {
          // A raw listener on the same connection sees the real answers, so the test knows the secrets.
          const client = await connectTo(sim);
          const secrets: string[] = [];
          client.on('message', (_topic, payload) => {
            const decoded = decodePayload(payload, 'json');
            if (!decoded.ok || typeof decoded.value !== 'object' || decoded.value === null) return;
            for (const [k, v] of Object.entries(decoded.value)) {
              if ((k === 'privateKey' || k === 'certificateOwnershipToken') && typeof v === 'string')
                secrets.push(v);
            }
          });
          const captured: string[] = [];
          if (failRegister) {
            // The error path too: RegisterThing refused after the secrets were handed out.
            sim.faults.script('RegisterThing', {
              type: 'reject',
              statusCode: 400,
              errorCode: 'InvalidCertificateOwnershipToken',
              errorMessage: 'ECHO',
            });
          }
          try {
            const device = await provision({
              client,
              templateName: 'DemoTemplate',
              parameters: { SerialNumber: serial },
              keys: keys === 'server' ? 'server' : 'generate',
              onProgress: (e) => captured.push(JSON.stringify(e)),
            });
            if (device.privateKey !== undefined) secrets.push(device.privateKey);
          } catch (error) {
            captured.push(
              String(error),
              JSON.stringify(error),
              error instanceof Error ? (error.stack ?? '') : '',
            );
          } finally {
            sim.faults.clear();
            await client.endAsync();
          }
          const text = captured.join('\n');
          expect(text).not.toMatch(/-----BEGIN/);
          for (const secret of secrets) expect(text.includes(secret)).toBe(false);
        },
      ),
      { seed: 2026, numRuns: 12 },
    );
  });
});
