/**
 * Test your onboarding code against the local simulator, in your own jest suite: the happy path, the
 * registry afterwards, and the faults AWS can throw at a device. In your project, import from
 * 'iot-fleet-provisioning' and 'iot-fleet-provisioning/simulator'.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { type ProvisionOptions, provision } from '../src/index.js';
import { type Simulator, startSimulator } from '../src/simulator/index.js';

describe('device onboarding', () => {
  let sim: Simulator;

  beforeAll(async () => {
    sim = await startSimulator({
      serverKeyType: 'ec-p256', // AWS makes RSA-2048 keys; EC is much faster to generate in tests
      templates: {
        FactoryTemplate: {
          thingName: 'sensor-{{SerialNumber}}',
          requiredParameters: ['SerialNumber'],
          deviceConfiguration: { Fleet: 'factory' },
        },
      },
    });
  });
  afterAll(() => sim.close());
  afterEach(() => sim.faults.clear());

  /** The options your device code would build, pointed at the simulator. */
  function options(serialNumber: string, extra: Partial<ProvisionOptions> = {}): ProvisionOptions {
    return {
      endpoint: sim.url,
      claimCertificate: sim.claimCertificate,
      claimPrivateKey: sim.claimPrivateKey,
      caCertificate: sim.caCertificate,
      templateName: 'FactoryTemplate',
      parameters: { SerialNumber: serialNumber },
      clientId: `test-${serialNumber}`, // so sim.requests(clientId) shows this test's traffic only
      retry: { baseDelayMs: 10 }, // keep retries fast in tests
      ...extra,
    };
  }

  it('registers the thing and activates its certificate', async () => {
    const device = await provision(options('SN-1'));

    expect(device.thingName).toBe('sensor-SN-1');
    expect(device.deviceConfiguration).toEqual({ Fleet: 'factory' });
    expect(sim.things().find((t) => t.thingName === 'sensor-SN-1')?.certificateId).toBe(device.certificateId);
    expect(sim.certificates().find((c) => c.certificateId === device.certificateId)?.status).toBe('ACTIVE');
  });

  it('rides out throttling', async () => {
    sim.faults.script('RegisterThing', { type: 'reject', statusCode: 429 }, { times: 2 });

    const device = await provision(options('SN-2'));

    expect(device.thingName).toBe('sensor-SN-2');
    const registerThings = sim
      .requests('test-SN-2')
      .filter((entry) => entry.type === 'publish' && entry.operation === 'RegisterThing');
    expect(registerThings).toHaveLength(3); // two 429s, then accepted
  });

  it('gives up on a rejection that retrying cannot fix', async () => {
    await expect(provision(options('SN-3', { parameters: {} }))).rejects.toMatchObject({
      code: 'REJECTED',
      statusCode: 400,
      errorCode: 'InvalidParameters',
      retryable: false,
    });
    expect(sim.things().some((t) => t.thingName === 'sensor-SN-3')).toBe(false);
  });

  it('times out when the service never answers', async () => {
    sim.faults.script('CreateKeysAndCertificate', { type: 'silent' });

    await expect(provision(options('SN-4', { timeoutMs: 500, retry: false }))).rejects.toMatchObject({
      code: 'TIMEOUT',
      phase: 'response',
    });
  });
});
