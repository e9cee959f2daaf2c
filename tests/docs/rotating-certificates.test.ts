/**
 * docs/guides/rotating-certificates.md: the AWS side runs on the simulator as it is (the rotation
 * template, the device policy with the rotation lines, the hook that checks the caller, the function
 * that deactivates previous certificates), and the example rotates a device provisioned from the claim.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { deactivatePrevious } from '../../examples/deactivate-previous.js';
import { main } from '../../examples/rotate-certificate.js';
import { rotationHook } from '../../examples/rotation-hook.js';
import { operationTopics, provision, readDeviceJson, rotate } from '../../src/index.js';
import { type Simulator, startSimulator } from '../../src/simulator/index.js';
import { awsTemplate, policyFrom, readJson } from '../helpers/docs/aws-files.js';
import { connectOutcome } from '../helpers/sim-mqtt.js';

const ARN = 'arn:aws:iot:eu-west-1:123456789012';
const THING_NAME_VARIABLE = ['$', '{iot:Connection.Thing.ThingName}'].join('');
let sim: Simulator;
let dir: string;
const certificatesOf = async (thingName: string) =>
  sim.things().find((t) => t.thingName === thingName)?.certificateIds ?? [];

beforeAll(async () => {
  sim = await startSimulator({
    serverKeyType: 'ec-p256',
    templates: {
      FactoryTemplate: awsTemplate(readJson('examples/aws/provisioning-template.json')),
      RotationTemplate: {
        templateBody: awsTemplate(readJson('examples/aws/rotation-template.json')),
        preProvisioningHook: rotationHook(certificatesOf),
      },
    },
    claimPolicy: readJson('examples/aws/claim-policy.json'),
    policies: { FactoryDevicePolicy: readJson('examples/aws/device-policy-with-rotation.json') },
  });
  dir = await mkdtemp(join(tmpdir(), 'guide-rotation-'));
});
afterAll(async () => {
  await sim.close();
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  jest.restoreAllMocks();
});

/** A device provisioned from the claim with FactoryTemplate, key made on the device. */
async function device(serialNumber: string) {
  const outDir = join(dir, serialNumber);
  const provisioned = await provision({
    endpoint: sim.url,
    claimCertificate: sim.claimCertificate,
    claimPrivateKey: sim.claimPrivateKey,
    caCertificate: sim.caCertificate,
    templateName: 'FactoryTemplate',
    parameters: { SerialNumber: serialNumber },
    keys: 'generate',
    outDir,
  });
  return { outDir, ...provisioned };
}

describe('the device policy with the rotation lines', () => {
  const may = policyFrom(
    JSON.parse(
      JSON.stringify(readJson('examples/aws/device-policy-with-rotation.json')).replaceAll(
        THING_NAME_VARIABLE,
        'sensor-1',
      ),
    ),
  );

  it('allows exactly the topics rotate() uses with RotationTemplate and a key made on the device', () => {
    for (const operation of ['CreateCertificateFromCsr', 'RegisterThing'] as const) {
      const topics = operationTopics(operation, 'json', 'RotationTemplate');
      expect(may('iot:Publish', `${ARN}:topic/${topics.request}`)).toBe(true);
      for (const answer of [topics.accepted, topics.rejected]) {
        expect(may('iot:Receive', `${ARN}:topic/${answer}`)).toBe(true);
        expect(may('iot:Subscribe', `${ARN}:topicfilter/${answer}`)).toBe(true);
      }
    }
    expect(
      may('iot:Publish', `${ARN}:topic/$aws/provisioning-templates/FactoryTemplate/provision/json`),
    ).toBe(false);
    expect(may('iot:Publish', `${ARN}:topic/$aws/certificates/create/json`)).toBe(false);
    expect(may('iot:Connect', `${ARN}:client/sensor-1`)).toBe(true);
    expect(may('iot:Connect', `${ARN}:client/sensor-2`)).toBe(false);
  });
});

describe('examples/rotate-certificate.ts', () => {
  it('rotates: the new certificate is live, attached to the same thing, with the device policy', async () => {
    const provisioned = await device('SN-0042');
    const printed: string[] = [];
    jest.spyOn(console, 'log').mockImplementation((line: unknown) => void printed.push(String(line)));
    jest.spyOn(console, 'error').mockImplementation((line: unknown) => void printed.push(String(line)));

    const rotated = await main({ outDir: provisioned.outDir, caCertificate: sim.caCertificate });
    expect((await readDeviceJson(provisioned.outDir))?.certificateId).toBe(rotated.certificateId);

    expect(rotated).toMatchObject({
      thingName: 'sensor-SN-0042',
      previousCertificateId: provisioned.certificateId,
      verified: true,
      deviceConfiguration: { Fleet: 'factory', RotatedWith: 'RotationTemplate' },
    });
    expect(await certificatesOf('sensor-SN-0042')).toEqual([
      provisioned.certificateId,
      rotated.certificateId,
    ]);
    expect(sim.certificates().find((c) => c.certificateId === rotated.certificateId)).toMatchObject({
      status: 'ACTIVE',
      policyNames: ['FactoryDevicePolicy'],
    });
    expect(printed.join('\n')).toContain(
      `thing sensor-SN-0042: certificate ${rotated.certificateId} replaces ${provisioned.certificateId}`,
    );
    expect(printed.join('\n')).not.toMatch(/-----BEGIN|PRIVATE KEY/);
  });

  it('the hook refuses a device that asks for another thing (403), and its own set stays live', async () => {
    const victim = await device('SN-0100');
    const intruder = await device('SN-0101');
    const error = await rotate({
      outDir: intruder.outDir,
      caCertificate: sim.caCertificate,
      templateName: 'RotationTemplate',
      parameters: { ThingName: 'sensor-SN-0100' },
      retry: false,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'REJECTED', statusCode: 403, errorCode: 'AccessDenied' });
    expect(await certificatesOf('sensor-SN-0100')).toEqual([victim.certificateId]);
    expect((await readDeviceJson(intruder.outDir))?.certificateId).toBe(intruder.certificateId);
  });
});

describe('examples/deactivate-previous.ts', () => {
  it('on the new certificate’s connected event: the previous one is deactivated and cannot connect', async () => {
    const provisioned = await device('SN-0200');
    const rotated = await rotate({
      outDir: provisioned.outDir,
      caCertificate: sim.caCertificate,
      templateName: 'RotationTemplate',
      parameters: { ThingName: 'sensor-SN-0200' },
    });
    const account = {
      certificatesOf,
      deactivate: async (id: string) => sim.deactivateCertificate(id),
    };
    // The old certificate's own connection, or a stranger's certificate, deactivates nothing new.
    expect(
      await deactivatePrevious({ clientId: 'sensor-SN-0200', principalIdentifier: 'f'.repeat(64) }, account),
    ).toEqual([]);
    const deactivated = await deactivatePrevious(
      { clientId: 'sensor-SN-0200', principalIdentifier: rotated.certificateId },
      account,
    );
    expect(deactivated).toEqual([provisioned.certificateId]);
    expect(sim.certificates().find((c) => c.certificateId === provisioned.certificateId)?.status).toBe(
      'INACTIVE',
    );
    const oldSet = { cert: provisioned.certificatePem, key: provisioned.privateKey ?? '' };
    const newSet = { cert: rotated.certificatePem, key: rotated.privateKey ?? '' };
    expect(await connectOutcome(sim, oldSet, { clientId: 'sensor-SN-0200' })).toBe(5);
    expect(await connectOutcome(sim, newSet, { clientId: 'sensor-SN-0200' })).toBe('connected');
  });
});
