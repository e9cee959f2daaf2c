/**
 * AWS's own provisioning templates run in the simulator. The templates follow the examples of the AWS IoT
 * Developer Guide ("Provisioning templates", fleet provisioning section; "Pre-provisioning hooks"), and
 * each expected outcome is what that guide says RegisterThing does with them.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { MqttClient } from 'mqtt';
import { InvalidArgumentError } from '../../src/protocol/errors.js';
import { type Simulator, startSimulator } from '../../src/simulator/index.js';
import { closeClients } from '../helpers/mqtt.js';
import { makeCsr } from '../helpers/sim-csr.js';
import { ask, connectOutcome, connectTo, field } from '../helpers/sim-mqtt.js';

/** The fleet provisioning template of AWS's guide: thing, certificate, inline policy, mapped configuration. */
const FLEET_TEMPLATE = {
  Parameters: {
    ThingName: { Type: 'String' },
    SerialNumber: { Type: 'String' },
    DeviceLocation: { Type: 'String' },
  },
  Mappings: { LocationTable: { Seattle: { LocationUrl: 'https://example.aws' } } },
  Resources: {
    thing: {
      Type: 'AWS::IoT::Thing',
      Properties: {
        AttributePayload: { version: 'v1', serialNumber: 'serialNumber' },
        ThingName: { Ref: 'ThingName' },
        ThingTypeName: { 'Fn::Join': ['', ['ThingTypePrefix_', { Ref: 'SerialNumber' }]] },
        ThingGroups: ['v1-lightbulbs', 'WA'],
      },
      OverrideSettings: { AttributePayload: 'MERGE', ThingTypeName: 'REPLACE', ThingGroups: 'DO_NOTHING' },
    },
    certificate: {
      Type: 'AWS::IoT::Certificate',
      Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'Active' },
    },
    policy: {
      Type: 'AWS::IoT::Policy',
      Properties: {
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Action: ['iot:Connect'],
              // biome-ignore lint/suspicious/noTemplateCurlyInString: AWS template and policy syntax, not JavaScript
              Resource: ['arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}'],
            },
            {
              Effect: 'Allow',
              Action: ['iot:Subscribe'],
              Resource: [
                // biome-ignore lint/suspicious/noTemplateCurlyInString: AWS template and policy syntax, not JavaScript
                'arn:aws:iot:us-east-1:123456789012:topicfilter/devices/${iot:Connection.Thing.ThingName}/*',
              ],
            },
          ],
        },
      },
    },
  },
  DeviceConfiguration: {
    FallbackUrl: 'https://www.example.com/test-site',
    LocationUrl: { 'Fn::FindInMap': ['LocationTable', { Ref: 'DeviceLocation' }, 'LocationUrl'] },
  },
};

/** A template with conditions: production devices join a group and get a stricter status. */
const CONDITIONS_TEMPLATE = {
  Parameters: {
    SerialNumber: { Type: 'String' },
    Stage: { Type: 'String', Default: 'test' },
    Tags: { Type: 'String', Default: 'a,b,c' },
  },
  Conditions: {
    IsProd: { 'Fn::Equals': [{ Ref: 'Stage' }, 'prod'] },
    IsTest: { 'Fn::Not': [{ Condition: 'IsProd' }] },
    Known: { 'Fn::Or': [{ Condition: 'IsProd' }, { 'Fn::Equals': [{ Ref: 'Stage' }, 'test'] }] },
    ProdAndKnown: { 'Fn::And': [{ Condition: 'IsProd' }, { Condition: 'Known' }] },
  },
  Resources: {
    thing: {
      Type: 'AWS::IoT::Thing',
      Properties: {
        // biome-ignore lint/suspicious/noTemplateCurlyInString: AWS template and policy syntax, not JavaScript
        ThingName: { 'Fn::Sub': '${Stage}-${SerialNumber}' },
        ThingGroups: { 'Fn::If': ['ProdAndKnown', ['production'], { Ref: 'AWS::NoValue' }] },
        AttributePayload: { firstTag: { 'Fn::Select': ['0', { 'Fn::Split': [',', { Ref: 'Tags' }] }] } },
      },
    },
    certificate: {
      Type: 'AWS::IoT::Certificate',
      Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' },
    },
    testPolicy: {
      Type: 'AWS::IoT::Policy',
      Condition: 'IsTest',
      Properties: { PolicyName: 'TestDevicePolicy' },
    },
  },
  DeviceConfiguration: {
    stage: { 'Fn::If': ['IsProd', 'production', 'testing'] },
    cn: { Ref: 'AWS::IoT::Certificate::CommonName' },
  },
};

let sim: Simulator;
let claim: MqttClient;
let dir: string;

async function register(
  templateName: string,
  parameters: Record<string, string>,
  how: { csrSubject?: string } = {},
) {
  let token: string;
  let certificateId: string;
  let key: string | undefined;
  let certificatePem: string;
  if (how.csrSubject === undefined) {
    const created = await ask(claim, 'CreateKeysAndCertificate', {}, { templateName });
    token = field(created, 'certificateOwnershipToken');
    certificateId = field(created, 'certificateId');
    certificatePem = field(created, 'certificatePem');
    key = field(created, 'privateKey');
  } else {
    const csr = await makeCsr('ec-p256', how.csrSubject);
    const created = await ask(claim, 'CreateCertificateFromCsr', { certificateSigningRequest: csr.csrPem });
    token = field(created, 'certificateOwnershipToken');
    certificateId = field(created, 'certificateId');
    certificatePem = field(created, 'certificatePem');
    key = csr.privateKeyPem;
  }
  const answer = await ask(
    claim,
    'RegisterThing',
    { certificateOwnershipToken: token, parameters },
    { templateName },
  );
  return { answer, certificateId, certificatePem, key };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aws-templates-'));
  const hookScript = join(dir, 'hook.mjs');
  // The hook of AWS's guide, as a program: reads the Lambda event, allows, overrides a parameter.
  await writeFile(
    hookScript,
    `import { readFileSync, writeFileSync } from 'node:fs';
const event = JSON.parse(readFileSync(0, 'utf8'));
writeFileSync(process.argv[2], JSON.stringify(event));
const allow = event.parameters.SerialNumber !== 'banned';
process.stdout.write(JSON.stringify({ allowProvisioning: allow, parameterOverrides: { DeviceLocation: 'Seattle' } }));
`,
  );
  sim = await startSimulator({
    serverKeyType: 'ec-p256',
    templates: {
      FleetTemplate: FLEET_TEMPLATE,
      Hooked: {
        templateBody: JSON.stringify(FLEET_TEMPLATE),
        preProvisioningHook: { command: [process.execPath, hookScript, join(dir, 'event.json')] },
      },
      Conditional: CONDITIONS_TEMPLATE,
      Strict: {
        ...CONDITIONS_TEMPLATE,
        Resources: {
          ...CONDITIONS_TEMPLATE.Resources,
          thing: {
            ...CONDITIONS_TEMPLATE.Resources.thing,
            OverrideSettings: { AttributePayload: 'FAIL' },
          },
        },
      },
    },
  });
  claim = await connectTo(sim);
});

afterAll(async () => {
  await closeClients(claim);
  await sim.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the fleet provisioning template of the AWS guide', () => {
  it('makes the thing with its attributes, type and groups, activates the certificate and maps the configuration', async () => {
    const { answer, certificateId } = await register('FleetTemplate', {
      ThingName: 'lightbulb-1',
      SerialNumber: '0001',
      DeviceLocation: 'Seattle',
    });
    expect(answer.kind).toBe('accepted');
    expect(answer.value).toEqual({
      thingName: 'lightbulb-1',
      deviceConfiguration: {
        FallbackUrl: 'https://www.example.com/test-site',
        LocationUrl: 'https://example.aws',
      },
    });
    const thing = sim.things().find((t) => t.thingName === 'lightbulb-1');
    expect(thing).toMatchObject({
      attributes: { version: 'v1', serialNumber: 'serialNumber' },
      thingTypeName: 'ThingTypePrefix_0001',
      thingGroups: ['v1-lightbulbs', 'WA'],
      certificateId,
    });
    expect(sim.certificates().find((c) => c.certificateId === certificateId)?.status).toBe('ACTIVE');
  });

  it('answers InvalidParameters naming a parameter the template needs and the device did not send', async () => {
    const { answer } = await register('FleetTemplate', { ThingName: 'lightbulb-2', SerialNumber: '0002' });
    expect(answer.kind).toBe('rejected');
    expect(answer.value).toMatchObject({ statusCode: 400, errorCode: 'InvalidParameters' });
    expect(field(answer, 'errorMessage')).toContain('DeviceLocation');
  });

  it('attaches the inline policy, enforced on the device: client id must be the thing name', async () => {
    const { key, certificatePem } = await register('FleetTemplate', {
      ThingName: 'lightbulb-3',
      SerialNumber: '0003',
      DeviceLocation: 'Seattle',
    });
    const credentials = { cert: certificatePem, key: key ?? '' };
    expect(await connectOutcome(sim, credentials, { clientId: 'someone-else' })).toBe(5);
    const device = await connectTo(sim, credentials, { clientId: 'lightbulb-3' });
    try {
      const granted = await device.subscribeAsync('devices/lightbulb-3/status', { qos: 1 });
      expect(granted[0]?.qos).toBe(1);
      await expect(device.subscribeAsync('devices/lightbulb-4/status', { qos: 1 })).rejects.toMatchObject({
        packet: { granted: [0x80] },
      });
    } finally {
      await closeClients(device);
    }
  });
});

describe('a pre-provisioning hook run as a command', () => {
  it('gets the Lambda event AWS sends, and its parameterOverrides feed the template', async () => {
    const { answer, certificateId, certificatePem } = await register('Hooked', {
      ThingName: 'hooked-1',
      SerialNumber: '0101',
    });
    expect(answer.value).toMatchObject({
      thingName: 'hooked-1',
      deviceConfiguration: { LocationUrl: 'https://example.aws' },
    });
    const event: unknown = JSON.parse(await readFile(join(dir, 'event.json'), 'utf8'));
    expect(event).toEqual({
      claimCertificateId: sim.claimCertificateId,
      certificateId,
      certificatePem,
      templateArn: expect.stringMatching(/^arn:aws:iot:[a-z0-9-]+:\d{12}:provisioningtemplate\/Hooked$/),
      clientId: claim.options.clientId,
      parameters: { ThingName: 'hooked-1', SerialNumber: '0101' },
    });
  });

  it('denies with 403 AccessDenied when the hook answers allowProvisioning false', async () => {
    const { answer } = await register('Hooked', { ThingName: 'hooked-2', SerialNumber: 'banned' });
    expect(answer.value).toMatchObject({ statusCode: 403, errorCode: 'AccessDenied' });
  });
});

describe('a command hook that fails', () => {
  it.each([
    ['exits non-zero', ['-e', 'process.exit(1)']],
    ['prints no JSON', ['-e', 'console.log("yes")']],
    ['does not answer within the hook limit', ['-e', 'setTimeout(() => {}, 60_000)']],
  ])('is a 403 AccessDenied when it %s', async (_what, args) => {
    const hooked = await startSimulator({
      tls: false,
      serverKeyType: 'ec-p256',
      hookTimeoutMs: 300,
      templates: {
        T: { templateBody: FLEET_TEMPLATE, preProvisioningHook: { command: [process.execPath, ...args] } },
      },
    });
    const client = await connectTo(hooked);
    try {
      const created = await ask(client, 'CreateKeysAndCertificate', {});
      const answer = await ask(
        client,
        'RegisterThing',
        { certificateOwnershipToken: field(created, 'certificateOwnershipToken'), parameters: {} },
        { templateName: 'T' },
      );
      expect(answer.value).toMatchObject({ statusCode: 403, errorCode: 'AccessDenied' });
      expect(hooked.things()).toEqual([]);
    } finally {
      await closeClients(client);
      await hooked.close();
    }
  });
});

describe('a template with conditions', () => {
  it('takes the false branches with the default Stage, and reads CommonName from the certificate', async () => {
    const { answer } = await register(
      'Conditional',
      { SerialNumber: 'c1', 'AWS::IoT::Certificate::CommonName': 'forged' },
      { csrSubject: 'CN=unit-c1' },
    );
    expect(answer.value).toEqual({
      thingName: 'test-c1',
      deviceConfiguration: { stage: 'testing', cn: 'unit-c1' },
    });
    expect(sim.things().find((t) => t.thingName === 'test-c1')).toMatchObject({
      thingGroups: [],
      attributes: { firstTag: 'a' },
    });
    expect(sim.certificates().at(-1)?.policyNames).toEqual(['TestDevicePolicy']);
  });

  it('takes the true branches for Stage=prod', async () => {
    const { answer } = await register('Conditional', { SerialNumber: 'c2', Stage: 'prod', Tags: 'x,y' });
    expect(answer.value).toMatchObject({
      thingName: 'prod-c2',
      deviceConfiguration: { stage: 'production' },
    });
    const thing = sim.things().find((t) => t.thingName === 'prod-c2');
    expect(thing).toMatchObject({ thingGroups: ['production'], attributes: { firstTag: 'x' } });
    expect(sim.certificates().at(-1)?.policyNames).toBeUndefined();
  });

  it('answers ResourceConflict when the thing exists with other attributes and OverrideSettings say FAIL', async () => {
    const first = await register('Strict', { SerialNumber: 'c3', Tags: 'a' });
    expect(first.answer.kind).toBe('accepted');
    const same = await register('Strict', { SerialNumber: 'c3', Tags: 'a' });
    expect(same.answer.kind).toBe('accepted');
    const other = await register('Strict', { SerialNumber: 'c3', Tags: 'b' });
    expect(other.answer.value).toMatchObject({ statusCode: 409, errorCode: 'ResourceConflict' });
  });
});

describe('templates AWS would refuse to create', () => {
  it.each([
    ['an unresolved Ref', { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'Nope' } } } }],
    [
      'an unknown condition',
      { thing: { Type: 'AWS::IoT::Thing', Condition: 'Nope', Properties: { ThingName: 'x' } } },
    ],
    ['an unsupported resource type', { bucket: { Type: 'AWS::S3::Bucket' } }],
  ])('refuses %s at start', async (_what, Resources) => {
    await expect(startSimulator({ tls: false, templates: { Bad: { Resources } } })).rejects.toThrow(
      InvalidArgumentError,
    );
  });
});

describe('the claim policy', () => {
  it('refuses a SUBSCRIBE outside it with SUBACK 0x80', async () => {
    const strict = await startSimulator({
      serverKeyType: 'ec-p256',
      claimPolicy: {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: 'iot:Connect', Resource: '*' },
          {
            Effect: 'Allow',
            Action: 'iot:Subscribe',
            Resource: 'arn:aws:iot:eu-west-1:123456789012:topicfilter/$aws/certificates/create/*',
          },
        ],
      },
    });
    const client = await connectTo(strict);
    try {
      const granted = await client.subscribeAsync('$aws/certificates/create/json/accepted', { qos: 1 });
      expect(granted[0]?.qos).toBe(1);
      await expect(
        client.subscribeAsync('$aws/certificates/create-from-csr/json/accepted', { qos: 1 }),
      ).rejects.toMatchObject({ packet: { granted: [0x80] } });
    } finally {
      await closeClients(client);
      await strict.close();
    }
  });
});
