/**
 * Load: 1,000 devices provisioning at once against the in-process simulator, each on its own
 * connection. No time bound is asserted (that is the bench's job: `npm run bench:simulator`); what must
 * hold is zero failures, a distinct certificate and thing per device, and a registry that agrees.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { provision } from '../../src/provision/provision.js';
import type { ProvisionedDevice } from '../../src/provision/types.js';
import { type Simulator, startSimulator } from '../../src/simulator/index.js';

const DEVICES = 1000;
let sim: Simulator;

beforeAll(async () => {
  // Plain MQTT and EC keys: the test is about concurrency, not about the cost of TLS handshakes.
  sim = await startSimulator({ tls: false, serverKeyType: 'ec-p256' });
});

afterAll(async () => {
  await sim.close();
});

it(`provisions ${DEVICES} devices at once, each with its own certificate and thing`, async () => {
  const outcomes = await Promise.allSettled(
    Array.from({ length: DEVICES }, (_, i) =>
      provision({
        endpoint: sim.url,
        templateName: 'DemoTemplate',
        parameters: { SerialNumber: `load-${i}` },
        timeoutMs: 60_000,
      }),
    ),
  );
  const failures = outcomes.filter((o) => o.status === 'rejected');
  expect(failures).toEqual([]);
  const devices = outcomes
    .filter((o): o is PromiseFulfilledResult<ProvisionedDevice> => o.status === 'fulfilled')
    .map((o) => o.value);
  expect(new Set(devices.map((d) => d.certificateId)).size).toBe(DEVICES);
  expect(new Set(devices.map((d) => d.thingName)).size).toBe(DEVICES);

  const things = new Map(sim.things().map((t) => [t.thingName, t.certificateId]));
  const certificates = new Map(sim.certificates().map((c) => [c.certificateId, c]));
  devices.forEach((device, i) => {
    expect(device.thingName).toBe(`load-${i}`);
    expect(things.get(`load-${i}`)).toBe(device.certificateId);
    expect(certificates.get(device.certificateId)).toMatchObject({
      status: 'ACTIVE',
      thingName: `load-${i}`,
    });
  });
}, 180_000);
