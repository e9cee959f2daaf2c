// The complete example of docs/simulator.md, run as part of our suite so that it cannot rot.
// In a user's project the two imports below read 'iot-fleet-provisioning' and
// 'iot-fleet-provisioning/simulator'; everything else is the same, line for line.
// --- guide:start
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import mqtt from 'mqtt';
import { provision } from '../../src/index.js';
import { type Simulator, startSimulator } from '../../src/simulator/index.js';

describe('device onboarding', () => {
  let sim: Simulator;

  beforeAll(async () => {
    sim = await startSimulator({
      serverKeyType: 'ec-p256', // much faster than AWS's RSA 2048 in tests
      templates: {
        FactoryTemplate: {
          thingName: 'sensor-{{SerialNumber}}',
          deviceConfiguration: { telemetryTopic: 'telemetry/{{SerialNumber}}' },
          requiredParameters: ['SerialNumber'],
        },
      },
    });
  });

  afterEach(() => sim.faults.clear());

  afterAll(async () => {
    await sim.close(); // ends every connection and timer: jest exits on its own
  });

  /** What your device code would pass to provision(), pointed at the simulator. */
  function claim() {
    return {
      endpoint: sim.url, // mqtts://127.0.0.1:<port>, mutual TLS
      caCertificate: sim.caCertificate,
      claimCertificate: sim.claimCertificate,
      claimPrivateKey: sim.claimPrivateKey,
      templateName: 'FactoryTemplate',
      retry: { baseDelayMs: 10 }, // keep retries quick in tests
    };
  }

  it('provisions a device, which then connects with its own certificate', async () => {
    const device = await provision({ ...claim(), parameters: { SerialNumber: 'SN-0001' }, keys: 'generate' });

    expect(device.thingName).toBe('sensor-SN-0001');
    expect(device.deviceConfiguration).toEqual({ telemetryTopic: 'telemetry/SN-0001' });
    expect(sim.things()).toEqual([expect.objectContaining({ thingName: 'sensor-SN-0001' })]);
    expect(sim.certificates()).toEqual([
      expect.objectContaining({ certificateId: device.certificateId, status: 'ACTIVE' }),
    ]);

    const key = device.privateKey; // present: the key was made on the device ('generate')
    if (key === undefined) throw new Error('no private key');
    const client = await mqtt.connectAsync(sim.url, {
      ca: sim.caCertificate,
      cert: device.certificatePem,
      key,
      reconnectPeriod: 0,
    });
    await client.publishAsync('telemetry/SN-0001', '{"temperature":21}', { qos: 1 });
    await client.endAsync();
  });

  it('retries when the service throttles', async () => {
    sim.faults.script('CreateKeysAndCertificate', { type: 'reject', statusCode: 429 }, { times: 2 });

    const device = await provision({ ...claim(), parameters: { SerialNumber: 'SN-0002' } });

    expect(device.thingName).toBe('sensor-SN-0002');
    const requests = sim
      .requests()
      .filter((e) => e.type === 'publish' && e.operation === 'CreateKeysAndCertificate');
    expect(requests).toHaveLength(3); // two throttled, one accepted
  });

  it('reports a missing template parameter without retrying', async () => {
    await expect(provision({ ...claim(), parameters: {} })).rejects.toMatchObject({
      code: 'REJECTED',
      statusCode: 400,
      errorCode: 'InvalidParameters',
      retryable: false,
    });
  });
});
// --- guide:end

describe('docs/simulator.md', () => {
  it('shows the example above, line for line, with the package import paths', async () => {
    const { readFile } = await import('node:fs/promises');
    const self = await readFile(new URL(import.meta.url), 'utf8');
    const start = self.indexOf('// --- guide:start\n') + '// --- guide:start\n'.length;
    const example = self
      .slice(start, self.indexOf('// --- guide:end'))
      .replace("'../../src/index.js'", "'iot-fleet-provisioning'")
      .replace("'../../src/simulator/index.js'", "'iot-fleet-provisioning/simulator'");
    const doc = await readFile(new URL('../../docs/simulator.md', import.meta.url), 'utf8');
    expect(doc).toContain(`\`\`\`ts\n${example}\`\`\``);
  });
});
