/**
 * The simulator's side of certificate rotation: who may use the provisioning topics with a device
 * certificate (the built-in rule, and a policy that decides instead), short-lived certificates, and
 * certificate validity options.
 */
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { provision } from '../../src/provision/provision.js';
import { rotate } from '../../src/provision/rotate.js';
import type { ProvisionedDevice } from '../../src/provision/types.js';
import { type Simulator, startSimulator } from '../../src/simulator/index.js';
import { closeClients } from '../helpers/mqtt.js';
import { claimOptions, tempDir } from '../helpers/provision-fixtures.js';
import { closedByServer, connectTo } from '../helpers/sim-mqtt.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const ARN = 'arn:aws:iot:eu-west-1:123456789012';
const THING_NAME_VARIABLE = ['$', '{iot:Connection.Thing.ThingName}'].join('');
let sim: Simulator;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  sim = await startSimulator({
    serverKeyType: 'ec-p256',
    certificateValidityDays: 2,
    templates: {
      DemoTemplate: { thingName: '{{SerialNumber}}', requiredParameters: ['SerialNumber'] },
      NoThing: {},
      // Attaches a device policy that allows the thing's own topics but not the provisioning ones.
      Governed: {
        templateBody: {
          Parameters: { SerialNumber: { Type: 'String' } },
          Resources: {
            thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'SerialNumber' } } },
            certificate: {
              Type: 'AWS::IoT::Certificate',
              Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' },
            },
            policy: {
              Type: 'AWS::IoT::Policy',
              Properties: {
                PolicyDocument: JSON.stringify({
                  Version: '2012-10-17',
                  Statement: [
                    {
                      Effect: 'Allow',
                      Action: 'iot:Connect',
                      Resource: `${ARN}:client/${THING_NAME_VARIABLE}`,
                    },
                    {
                      Effect: 'Allow',
                      Action: 'iot:Subscribe',
                      Resource: `${ARN}:topicfilter/devices/${THING_NAME_VARIABLE}/*`,
                    },
                  ],
                }),
              },
            },
          },
        },
      },
    },
  });
});

afterAll(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  await sim.close();
});

async function device(templateName: string, serial?: string): Promise<ProvisionedDevice & { dir: string }> {
  const temp = await tempDir('sim-rotation-');
  cleanups.push(temp.remove);
  const dir = `${temp.path}/credentials`;
  const provisioned = await provision({
    ...claimOptions(sim),
    templateName,
    ...(serial === undefined ? {} : { parameters: { SerialNumber: serial } }),
    keys: 'generate',
    outDir: dir,
  });
  return { ...provisioned, dir };
}

const CSR_ACCEPTED = '$aws/certificates/create-from-csr/json/accepted';
const REGISTER = '$aws/provisioning-templates/DemoTemplate/provision/json';

/** The SUBACK code for `filter` on a connection with `device`'s certificate under `clientId`. */
async function subscribeAs(
  provisioned: ProvisionedDevice,
  clientId: string,
  filter: string,
): Promise<number> {
  const client = await connectTo(
    sim,
    { cert: provisioned.certificatePem, key: provisioned.privateKey ?? '' },
    { clientId },
  );
  try {
    // mqtt.js rejects a refused SUBSCRIBE, with the SUBACK on the error.
    const granted = await client.subscribeAsync(filter).then(
      (list) => list.map((g) => g.qos),
      (error: unknown) => {
        const packet: unknown = Reflect.get(Object(error), 'packet');
        const codes: unknown = Reflect.get(Object(packet), 'granted');
        if (!Array.isArray(codes)) throw error;
        return codes.map(Number);
      },
    );
    return granted[0] ?? -1;
  } finally {
    await closeClients(client);
  }
}

describe('a device certificate and the provisioning topics', () => {
  it('as its own thing: may subscribe to and publish the exact provisioning topics', async () => {
    const own = await device('DemoTemplate', 'sim-rot-own');
    expect(await subscribeAs(own, 'sim-rot-own', CSR_ACCEPTED)).toBe(0);
    expect(await subscribeAs(own, 'sim-rot-own', `${REGISTER}/accepted`)).toBe(0);
    const client = await connectTo(
      sim,
      { cert: own.certificatePem, key: own.privateKey ?? '' },
      { clientId: 'sim-rot-own' },
    );
    await client.publishAsync(REGISTER, '{}', { qos: 1 });
    expect(client.connected).toBe(true);
    await closeClients(client);
  });

  it('under another client id, with wildcards, or attached to no thing: refused as before', async () => {
    const own = await device('DemoTemplate', 'sim-rot-other');
    expect(await subscribeAs(own, 'someone-else', CSR_ACCEPTED)).toBe(128);
    expect(await subscribeAs(own, 'sim-rot-other', '$aws/#')).toBe(128);
    expect(await subscribeAs(own, 'sim-rot-other', '$aws/certificates/+/json/accepted')).toBe(128);
    const thingless = await device('NoThing');
    expect(thingless.thingName).toBeUndefined();
    expect(await subscribeAs(thingless, 'sim-rot-thingless', CSR_ACCEPTED)).toBe(128);
    // A PUBLISH there closes the connection, as AWS closes it on an unauthorised publish.
    const client = await connectTo(
      sim,
      { cert: own.certificatePem, key: own.privateKey ?? '' },
      { clientId: 'someone-else' },
    );
    const closed = closedByServer(client);
    client.publish(REGISTER, '{}', { qos: 1 });
    await closed;
    await closeClients(client);
  });

  it('a policy the template attached decides instead: without the rotation lines, rotate() cannot subscribe', async () => {
    const governed = await device('Governed', 'sim-rot-governed');
    expect(await subscribeAs(governed, 'sim-rot-governed', CSR_ACCEPTED)).toBe(128);
    expect(await subscribeAs(governed, 'sim-rot-governed', 'devices/sim-rot-governed/x')).toBe(0);
    const error = await rotate({
      outDir: governed.dir,
      caCertificate: sim.caCertificate,
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'sim-rot-governed' },
      retry: false,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SUBSCRIBE_FAILED' });
    expect(String(error)).toContain("For a rotation that is the device's own certificate");
  });
});

describe('certificateValidityDays', () => {
  it('issues device certificates that expire that many days after issue', async () => {
    const before = Date.now();
    const provisioned = await device('DemoTemplate', 'sim-rot-short');
    const notAfter = new Date(new X509Certificate(provisioned.certificatePem).validTo).getTime();
    // X.509 times have whole seconds.
    expect(notAfter).toBeGreaterThanOrEqual(before + 2 * DAY_MS - 1_000);
    expect(notAfter).toBeLessThanOrEqual(Date.now() + 2 * DAY_MS);
  });

  it.each([0, -1, Number.NaN])('refuses %p', async (days) => {
    await expect(startSimulator({ certificateValidityDays: days })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});
