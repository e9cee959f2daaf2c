/**
 * docs/guides/provision-on-aws.md: the provisioning template runs on the simulator, the claim policy
 * allows exactly what the library publishes and subscribes to, the device policy allows what the device
 * does next, and the example provisions, writes the files and connects as the new thing.
 */
import { lstat, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { readClaim } from '../../examples/claim.js';
import { main } from '../../examples/provision-on-aws.js';
import { OPERATION_NAMES, operationTopics } from '../../src/index.js';
import { type Simulator, startSimulator } from '../../src/simulator/index.js';
import { awsTemplate, policyFrom, readJson } from '../helpers/docs/aws-files.js';

const ARN = 'arn:aws:iot:eu-west-1:123456789012';
/** The IoT policy variable for the connected thing's name (a literal `${…}`, not a JS template). */
const THING_NAME_VARIABLE = ['$', '{iot:Connection.Thing.ThingName}'].join('');
const template = awsTemplate(readJson('examples/aws/provisioning-template.json'));
let sim: Simulator;
let dir: string;

beforeAll(async () => {
  // The guide's three files as they are: the template, the claim policy on the claim connection, and the
  // device policy the template attaches by name, enforced on the device's own connection.
  sim = await startSimulator({
    serverKeyType: 'ec-p256',
    templates: { FactoryTemplate: template },
    claimPolicy: readJson('examples/aws/claim-policy.json'),
    policies: { FactoryDevicePolicy: readJson('examples/aws/device-policy.json') },
  });
  dir = await mkdtemp(join(tmpdir(), 'guide-aws-'));
});
afterAll(async () => {
  await sim.close();
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  jest.restoreAllMocks();
});

describe('the provisioning template', () => {
  it('declares SerialNumber, names the thing after it, attaches FactoryDevicePolicy and returns the configuration', () => {
    expect(Object.keys(template.Parameters ?? {})).toEqual(['SerialNumber', 'AWS::IoT::Certificate::Id']);
    expect(template.DeviceConfiguration).toEqual({ Fleet: 'factory' });
    expect(JSON.stringify(template.Resources)).toContain('"PolicyName":"FactoryDevicePolicy"');
  });
});

describe('the claim policy', () => {
  const may = policyFrom(readJson('examples/aws/claim-policy.json'));

  it.each(['json', 'cbor'] as const)('allows every topic of FactoryTemplate in %s', (format) => {
    for (const operation of OPERATION_NAMES) {
      const topics = operationTopics(operation, format, 'FactoryTemplate');
      expect([topics.request, may('iot:Publish', `${ARN}:topic/${topics.request}`)]).toEqual([
        topics.request,
        true,
      ]);
      for (const answer of [topics.accepted, topics.rejected]) {
        expect([answer, may('iot:Receive', `${ARN}:topic/${answer}`)]).toEqual([answer, true]);
        expect([answer, may('iot:Subscribe', `${ARN}:topicfilter/${answer}`)]).toEqual([answer, true]);
      }
    }
    expect(may('iot:Connect', `${ARN}:client/fleet-provision-1234`)).toBe(true);
  });

  it('includes create-from-csr, which AWS’s example policy forgets', () => {
    expect(may('iot:Subscribe', `${ARN}:topicfilter/$aws/certificates/create-from-csr/json/accepted`)).toBe(
      true,
    );
  });

  it('allows nothing else', () => {
    expect(may('iot:Publish', `${ARN}:topic/$aws/provisioning-templates/OtherTemplate/provision/json`)).toBe(
      false,
    );
    expect(may('iot:Publish', `${ARN}:topic/$aws/things/sensor-1/shadow/update`)).toBe(false);
    expect(may('iot:Subscribe', `${ARN}:topicfilter/#`)).toBe(false);
    expect(may('iot:Publish', `${ARN}:topic/devices/sensor-1/hello`)).toBe(false);
  });
});

describe('the device policy', () => {
  const asThing = (thingName: string) =>
    policyFrom(
      JSON.parse(
        JSON.stringify(readJson('examples/aws/device-policy.json')).replaceAll(
          THING_NAME_VARIABLE,
          thingName,
        ),
      ),
    );

  it('lets a thing connect under its own name and use its own topics only', () => {
    const may = asThing('sensor-SN-1');
    expect(may('iot:Connect', `${ARN}:client/sensor-SN-1`)).toBe(true);
    expect(may('iot:Publish', `${ARN}:topic/devices/sensor-SN-1/hello`)).toBe(true);
    expect(may('iot:Connect', `${ARN}:client/sensor-SN-2`)).toBe(false);
    expect(may('iot:Publish', `${ARN}:topic/devices/sensor-SN-2/hello`)).toBe(false);
    expect(may('iot:Publish', `${ARN}:topic/$aws/certificates/create/json`)).toBe(false);
  });
});

describe('examples/provision-on-aws.ts', () => {
  it('provisions from the claim files, writes the credentials and connects as the thing', async () => {
    const claimDir = join(dir, 'claim');
    await rm(claimDir, { recursive: true, force: true });
    await mkdir(claimDir);
    await writeFile(join(claimDir, 'claim.pem.crt'), sim.claimCertificate);
    await writeFile(join(claimDir, 'claim.private.pem.key'), sim.claimPrivateKey);
    await writeFile(join(claimDir, 'AmazonRootCA1.pem'), sim.caCertificate);
    const printed: string[] = [];
    jest.spyOn(console, 'log').mockImplementation((line: unknown) => void printed.push(String(line)));
    jest.spyOn(console, 'error').mockImplementation((line: unknown) => void printed.push(String(line)));

    const outDir = join(dir, 'credentials');
    const device = await main(await readClaim(claimDir, sim.url), { serialNumber: 'SN-0042', outDir });

    expect(device.thingName).toBe('sensor-SN-0042');
    expect(device.deviceConfiguration).toEqual({ Fleet: 'factory' });
    expect((await stat(outDir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(outDir, 'private.pem.key'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(outDir, 'certificate.pem.crt'))).mode & 0o777).toBe(0o644);
    expect((await lstat(join(outDir, 'device.json'))).isSymbolicLink()).toBe(true);
    expect(sim.certificates().find((c) => c.certificateId === device.certificateId)).toMatchObject({
      status: 'ACTIVE',
      policyNames: ['FactoryDevicePolicy'],
    });
    expect(sim.things().find((t) => t.thingName === 'sensor-SN-0042')?.attributes).toEqual({
      serialNumber: 'SN-0042',
    });
    const asDevice = sim.requests('sensor-SN-0042');
    expect(asDevice.find((e) => e.type === 'connect')).toMatchObject({ role: 'device', allowed: true });
    expect(asDevice.find((e) => e.type === 'publish')).toMatchObject({
      topic: 'devices/sensor-SN-0042/hello',
      allowed: true,
    });
    expect(printed.join('\n')).toContain('thing sensor-SN-0042');
    expect(printed.join('\n')).not.toMatch(/-----BEGIN|PRIVATE KEY/);
  });
});
