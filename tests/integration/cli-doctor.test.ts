/**
 * `fleet-provision doctor`, run as the built CLI. Offline: each finding comes from running a broken
 * template or policy for real in the local simulators. Online: against the simulator over mutual TLS,
 * once healthy and once with each fault (wrong CA, closed port, refused SUBSCRIBE).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type CliResult, runCli, secretsIn } from '../helpers/cli-run.js';
import { type CliSimulator, startCliSimulator } from '../helpers/cli-simulator.js';
import { freePort } from '../helpers/mosquitto.js';
import { makeCa } from '../helpers/x509.js';

interface Report {
  mode: string;
  ok: boolean;
  checks: Array<{ check: string; ok: boolean; detail: string; awsError?: string }>;
}

let dir: string;
const examples = new URL('../../examples/aws/', import.meta.url);
const template: Record<string, unknown> & {
  Resources: Record<string, { Properties: Record<string, unknown> }>;
} = JSON.parse(await readFile(new URL('provisioning-template.json', examples), 'utf8'));
const claimPolicy: { Statement: Array<{ Resource: string | string[] }> } = JSON.parse(
  await readFile(new URL('claim-policy.json', examples), 'utf8'),
);
const devicePolicy: { Statement: Array<{ Resource: string | string[] }> } = JSON.parse(
  await readFile(new URL('device-policy.json', examples), 'utf8'),
);

async function file(name: string, value: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, JSON.stringify(value));
  return path;
}

function report(result: CliResult): Report {
  expect(secretsIn(result.stdout + result.stderr)).toEqual([]);
  return JSON.parse(result.stdout);
}

function failures(r: Report) {
  return r.checks.filter((c) => !c.ok);
}

async function offline(files: { template?: unknown; claim?: unknown; device?: unknown }, params: string[]) {
  return runCli([
    'doctor',
    '--template',
    await file('template.json', files.template ?? template),
    '--claim-policy',
    await file('claim.json', files.claim ?? claimPolicy),
    '--device-policy',
    await file('device.json', files.device ?? devicePolicy),
    ...params.flatMap((p) => ['--param', p]),
    '--json',
  ]);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'doctor-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('doctor, offline', () => {
  it('passes the guide files with the parameter the template needs (exit 0)', async () => {
    const result = await offline({}, ['SerialNumber=SN-1']);
    const r = report(result);
    expect(failures(r)).toEqual([]);
    expect(r).toMatchObject({ mode: 'offline', ok: true });
    expect(result.code).toBe(0);
  });

  it('reports a missing parameter as the InvalidParameters answer RegisterThing would give', async () => {
    const result = await offline({}, []);
    expect(failures(report(result))).toEqual([
      expect.objectContaining({
        check: 'template: RegisterThing',
        awsError: '400 InvalidParameters',
        detail: expect.stringContaining('SerialNumber'),
      }),
    ]);
    expect(result.code).toBe(3);
  });

  it('reports an unresolved reference as create-provisioning-template would refuse it', async () => {
    const broken = structuredClone(template);
    broken.Resources.thing!.Properties.ThingName = { Ref: 'SerialNo' };
    const result = await offline({ template: broken }, ['SerialNumber=SN-1']);
    expect(failures(report(result))).toEqual([
      expect.objectContaining({
        check: 'template: create-provisioning-template',
        awsError: 'InvalidRequestException',
        detail: expect.stringContaining('Ref SerialNo'),
      }),
    ]);
    expect(result.code).toBe(3);
  });

  it('reports a thing name AWS rejects', async () => {
    const result = await offline({}, ['SerialNumber=SN 1']);
    expect(failures(report(result))).toEqual([
      expect.objectContaining({
        check: 'template: RegisterThing',
        awsError: '400 InvalidParameters',
        detail: expect.stringContaining('"sensor-SN 1"'),
      }),
    ]);
  });

  it('reports a claim policy that refuses a provisioning topic with the SUBACK the device would see', async () => {
    const broken = structuredClone(claimPolicy);
    const subscribe = broken.Statement[2]!;
    subscribe.Resource = (subscribe.Resource as string[]).filter(
      (r) => !r.includes('provisioning-templates'),
    );
    const result = await offline({ claim: broken }, ['SerialNumber=SN-1']);
    const found = failures(report(result));
    expect(found.map((c) => c.check)).toEqual([
      'claim policy: SUBSCRIBE $aws/provisioning-templates/FactoryTemplate/provision/json/accepted',
      'claim policy: SUBSCRIBE $aws/provisioning-templates/FactoryTemplate/provision/json/rejected',
    ]);
    expect(found.every((c) => c.awsError === 'SUBACK 0x80 (failure)')).toBe(true);
    expect(result.code).toBe(3);
  });

  it('reports a device policy whose client-id rule does not match the thing name the template makes', async () => {
    const broken = structuredClone(devicePolicy);
    broken.Statement[0]!.Resource = 'arn:aws:iot:eu-west-1:123456789012:client/device-*';
    const result = await offline({ device: broken }, ['SerialNumber=SN-1']);
    expect(failures(report(result))).toEqual([
      expect.objectContaining({
        check: 'device policy: CONNECT as the thing',
        awsError: 'CONNACK 5 (not authorized)',
        detail: expect.stringContaining('sensor-SN-1'),
      }),
    ]);
  });

  it('prints one line per check and a verdict without --json', async () => {
    const result = await runCli([
      'doctor',
      '--template',
      await file('t.json', template),
      '--claim-policy',
      await file('c.json', claimPolicy),
    ]);
    expect(result.stdout).toContain('FAIL  template: RegisterThing');
    expect(result.stdout).toMatch(/1 problem found: a factory run would fail\n$/);
    expect(result.code).toBe(3);
  });
});

describe('doctor, online against the simulator over mutual TLS', () => {
  let cli: CliSimulator;

  beforeAll(async () => {
    cli = await startCliSimulator();
  });

  afterAll(async () => {
    await cli.close();
  });

  const online = (endpoint: string, ca: string) =>
    runCli([
      'doctor',
      '--endpoint',
      endpoint,
      '--ca',
      ca,
      '--claim-cert',
      cli.files.claimCert,
      '--claim-key',
      cli.files.claimKey,
      '--template',
      'DemoTemplate',
      '--json',
    ]);

  it('passes a healthy setup, and never publishes', async () => {
    const result = await online(cli.sim.url, cli.files.ca);
    const r = report(result);
    expect(failures(r)).toEqual([]);
    expect(r.checks.map((c) => c.check)).toEqual([
      `TCP 127.0.0.1:${cli.sim.port}`,
      `TLS 127.0.0.1:${cli.sim.port}`,
      'claim certificate: CONNECT',
      'SUBSCRIBE $aws/certificates/create/json/accepted',
      'SUBSCRIBE $aws/certificates/create/json/rejected',
      'SUBSCRIBE $aws/provisioning-templates/DemoTemplate/provision/json/accepted',
      'SUBSCRIBE $aws/provisioning-templates/DemoTemplate/provision/json/rejected',
    ]);
    expect(result.code).toBe(0);
    expect(cli.sim.requests().filter((e) => e.type === 'publish')).toEqual([]);
    expect(cli.sim.certificates()).toEqual([]);
  });

  it('reports a wrong CA as a failed TLS handshake (exit 5)', async () => {
    const other = await makeCa('CN=Some other CA');
    const ca = join(dir, 'other-ca.pem');
    await writeFile(ca, other.certificatePem);
    const result = await online(cli.sim.url, ca);
    expect(failures(report(result))).toEqual([
      expect.objectContaining({
        check: `TLS 127.0.0.1:${cli.sim.port}`,
        detail: expect.stringContaining('--ca'),
      }),
    ]);
    expect(result.code).toBe(5);
  });

  it('reports a closed port', async () => {
    const port = await freePort();
    const result = await online(`mqtts://127.0.0.1:${port}`, cli.files.ca);
    expect(failures(report(result))).toEqual([
      expect.objectContaining({ check: `TCP 127.0.0.1:${port}`, awsError: 'ECONNREFUSED' }),
    ]);
    expect(result.code).toBe(5);
  });

  it('reports a refused SUBSCRIBE', async () => {
    const strict = await startCliSimulator({
      claimPolicy: {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: ['iot:Connect'], Resource: '*' },
          {
            Effect: 'Allow',
            Action: ['iot:Subscribe'],
            Resource: 'arn:aws:iot:*:*:topicfilter/$aws/certificates/*',
          },
        ],
      },
    });
    try {
      const result = await runCli(['doctor', ...strict.connectionFlags(), '--json']);
      expect(failures(report(result)).map((c) => [c.check, c.awsError])).toEqual([
        [
          'SUBSCRIBE $aws/provisioning-templates/DemoTemplate/provision/json/accepted',
          'SUBACK 0x80 (failure)',
        ],
        [
          'SUBSCRIBE $aws/provisioning-templates/DemoTemplate/provision/json/rejected',
          'SUBACK 0x80 (failure)',
        ],
      ]);
      expect(result.code).toBe(5);
    } finally {
      await strict.close();
    }
  });
});
