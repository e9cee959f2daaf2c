/**
 * `fleet-provision rotate` and `fleet-provision status`, the built bin in child processes, against a
 * simulator in this process that issues short-lived (5-day) certificates.
 */
import { spawn } from 'node:child_process';
import { chmod, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runCli, secretsIn } from '../helpers/cli-run.js';
import { type CliSimulator, startCliSimulator } from '../helpers/cli-simulator.js';
import { certificateIdOf } from '../helpers/x509.js';

let env: CliSimulator;
beforeAll(async () => {
  env = await startCliSimulator({
    certificateValidityDays: 5,
    templates: {
      DemoTemplate: { thingName: '{{SerialNumber}}', requiredParameters: ['SerialNumber'] },
      RotationTemplate: { thingName: '{{ThingName}}', requiredParameters: ['ThingName'] },
    },
  });
});
afterAll(async () => {
  await env.close();
});

const connects = () => env.sim.requests().filter((entry) => entry.type === 'connect').length;

/** A device provisioned by the CLI into `<tmp>/<name>`, key made here. */
async function provisioned(name: string): Promise<string> {
  const out = join(env.dir, name);
  const result = await runCli([
    'provision',
    ...env.connectionFlags(),
    '--param',
    `SerialNumber=${name}`,
    '--keys',
    'generate',
    '--out',
    out,
    '--quiet',
  ]);
  expect(result.code).toBe(0);
  return out;
}

function rotateArgs(out: string, thing: string): string[] {
  return [
    'rotate',
    '--out',
    out,
    '--template',
    'RotationTemplate',
    '--param',
    `ThingName=${thing}`,
    '--ca',
    env.files.ca,
  ];
}

async function liveCertificateId(out: string): Promise<string> {
  return certificateIdOf(await readFile(join(out, 'certificate.pem.crt'), 'utf8'));
}

async function status(out: string): Promise<{ code: number | null; json: Record<string, unknown> }> {
  const result = await runCli(['status', '--out', out, '--json']);
  const json: unknown = JSON.parse(result.stdout);
  if (typeof json !== 'object' || json === null) throw new Error('status printed no object');
  return { code: result.code, json: { ...json } };
}

describe('fleet-provision rotate', () => {
  it('--if-expires-within: nothing to do while the certificate has more days left (no connection)', async () => {
    const out = await provisioned('cli-rot-early');
    const before = await liveCertificateId(out);
    const traffic = connects();
    const result = await runCli([...rotateArgs(out, 'cli-rot-early'), '--if-expires-within', '3', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      rotated: false,
      thingName: 'cli-rot-early',
      certificateId: before,
      daysLeft: 4,
    });
    expect(result.stderr).toContain('not within 3 days: nothing to do');
    expect(connects()).toBe(traffic);
    expect(await liveCertificateId(out)).toBe(before);
  });

  it('--if-expires-within: rotates when the certificate expires within the window', async () => {
    const out = await provisioned('cli-rot-due');
    const before = await liveCertificateId(out);
    const key = await readFile(join(out, 'private.pem.key'), 'utf8');
    const result = await runCli([...rotateArgs(out, 'cli-rot-due'), '--if-expires-within', '10', '--json']);
    expect(result.stderr).not.toMatch(/error/);
    expect(result.code).toBe(0);
    const printed: unknown = JSON.parse(result.stdout);
    expect(printed).toEqual({
      rotated: true,
      thingName: 'cli-rot-due',
      certificateId: expect.stringMatching(/^[0-9a-f]{64}$/),
      previousCertificateId: before,
      notAfter: expect.any(String),
      deviceConfiguration: {},
      files: {
        directory: out,
        certificate: join(out, 'certificate.pem.crt'),
        privateKey: join(out, 'private.pem.key'),
        deviceJson: join(out, 'device.json'),
      },
      verified: true,
      abandonedCertificateIds: [],
    });
    const after = await liveCertificateId(out);
    expect(after).not.toBe(before);
    expect(printed).toMatchObject({ certificateId: after });
    expect(
      secretsIn(result.stdout + result.stderr, [key, await readFile(join(out, 'private.pem.key'), 'utf8')]),
    ).toEqual([]);
    expect((await status(out)).json).toMatchObject({ ok: true, certificateId: after, daysLeft: 4 });
  });

  it('prints a readable summary without --json', async () => {
    const out = await provisioned('cli-rot-text');
    const before = await liveCertificateId(out);
    const result = await runCli([...rotateArgs(out, 'cli-rot-text'), '--keys', 'ec-p384']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('rotated thing cli-rot-text');
    expect(result.stdout).toContain(`previous        ${before} (still ACTIVE: deactivate it)`);
    expect(result.stdout).toContain('verified        yes');
    expect((await status(out)).json).toMatchObject({ ok: true, keyType: 'ec-p384' });
  });

  it('a rejected RegisterThing exits 3 and leaves the current set in place', async () => {
    const out = await provisioned('cli-rot-rejected');
    const before = await liveCertificateId(out);
    env.sim.faults.script('RegisterThing', { type: 'reject', statusCode: 403, errorCode: 'AccessDenied' });
    const result = await runCli([...rotateArgs(out, 'cli-rot-rejected'), '--retries', '0']);
    env.sim.faults.clear();
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/^error: .*AccessDenied/m);
    expect(await liveCertificateId(out)).toBe(before);
    expect((await status(out)).code).toBe(0);
  });

  it('usage mistakes and a directory without a set exit 2 before any traffic', async () => {
    const traffic = connects();
    expect((await runCli(['rotate', '--template', 'RotationTemplate'])).code).toBe(2);
    const empty = await runCli([
      'rotate',
      '--out',
      join(env.dir, 'nothing-here'),
      '--template',
      'RotationTemplate',
    ]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('does not hold a complete provisioned set to rotate');
    expect(connects()).toBe(traffic);
  });

  it.each(['rotate', 'status'])('%s --help shows its usage', async (command) => {
    const result = await runCli([command, '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Usage: fleet-provision ${command} --out <dir>`);
  });
});

/** Rotate `out` in a child process and SIGKILL it once its new set is staged. */
async function killRotationWhenStaged(out: string, thing: string): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      resolve(import.meta.dirname, '../helpers/rotate-child.mjs'),
      JSON.stringify({
        outDir: out,
        caCertificate: env.sim.caCertificate,
        templateName: 'RotationTemplate',
        parameters: { ThingName: thing },
        hangAt: 'staged',
      }),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  for await (const line of createInterface({ input: child.stdout })) {
    if (line.includes('"staged"')) {
      child.kill('SIGKILL');
      break;
    }
  }
  await exited;
}

describe('an interrupted rotation', () => {
  it('status shows it, provision still answers "already provisioned" without the claim files, rotate finishes it', async () => {
    const out = await provisioned('cli-rot-killed');
    const before = await liveCertificateId(out);
    await killRotationWhenStaged(out, 'cli-rot-killed');
    expect((await status(out)).json).toMatchObject({ ok: true, unfinished: true, certificateId: before });

    const traffic = connects();
    const flags = env
      .connectionFlags()
      .map((flag) => (flag === env.files.claimKey ? join(env.dir, 'deleted.key') : flag));
    const again = await runCli([
      'provision',
      ...flags,
      '--param',
      'SerialNumber=cli-rot-killed',
      '--out',
      out,
    ]);
    expect(again.stderr).toContain('already provisioned: thing cli-rot-killed');
    expect(again.code).toBe(0);
    expect(connects()).toBe(traffic);

    const result = await runCli([...rotateArgs(out, 'cli-rot-killed'), '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      previousCertificateId: before,
      abandonedCertificateIds: [],
    });
    expect((await status(out)).json).toMatchObject({ ok: true, unfinished: false });
  });
});

describe('fleet-provision status', () => {
  it('describes a good set: thing, certificate, issuer, expiry, key, modes', async () => {
    const out = await provisioned('cli-status-good');
    const { code, json } = await status(out);
    expect(code).toBe(0);
    expect(json).toEqual({
      ok: true,
      directory: out,
      thingName: 'cli-status-good',
      certificateId: await liveCertificateId(out),
      issuer: expect.stringContaining('CN='),
      notAfter: expect.any(String),
      daysLeft: 4,
      keyType: 'ec-p256',
      keyMatchesCertificate: true,
      modes: { directory: '0700', certificate: '0644', privateKey: '0600', deviceJson: '0644' },
      modesOk: true,
      unfinished: false,
      problems: [],
    });
    const text = await runCli(['status', '--out', out]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^thing {7}cli-status-good$/m);
    expect(text.stdout).toMatch(/^not after {3}\S+ \(4 days left\)$/m);
    expect(text.stdout).toMatch(/^status {6}ok$/m);
    expect(text.stdout).not.toContain('PRIVATE KEY');
  });

  it('wrong modes exit 7 and name the file', async () => {
    const out = await provisioned('cli-status-modes');
    await chmod(join(out, 'private.pem.key'), 0o644);
    await chmod(out, 0o755);
    const { code, json } = await status(out);
    expect(code).toBe(7);
    expect(json).toMatchObject({
      ok: false,
      modesOk: false,
      modes: { directory: '0755', privateKey: '0644' },
      problems: [
        'the directory is mode 0755, should be 0700',
        `${join(out, 'private.pem.key')} is mode 0644, should be 0600`,
      ],
    });
  });

  it('a torn set (device.json names another certificate, the key is gone) exits 7 with each problem', async () => {
    const out = await provisioned('cli-status-torn');
    const setDir = join(out, await readlink(join(out, '.current')));
    const device: unknown = JSON.parse(await readFile(join(setDir, 'device.json'), 'utf8'));
    await writeFile(
      join(setDir, 'device.json'),
      JSON.stringify({ ...Object(device), certificateId: 'f'.repeat(64) }),
    );
    await rm(join(setDir, 'private.pem.key'));
    const { code, json } = await status(out);
    expect(code).toBe(7);
    expect(json.problems).toEqual([
      `device.json names certificate ${'f'.repeat(64)}, but the certificate file is ${await liveCertificateId(out)}`,
      'the private key is missing',
    ]);
    const text = await runCli(['status', '--out', out]);
    expect(text.code).toBe(7);
    expect(text.stdout).toContain('status      PROBLEMS');
    expect(text.stdout).toContain('  - the private key is missing');
  });

  it('a directory that does not exist exits 7; a missing --out exits 2', async () => {
    const { code, json } = await status(join(env.dir, 'no-such-dir'));
    expect(code).toBe(7);
    expect(json.problems).toEqual([`${join(env.dir, 'no-such-dir')} does not exist`]);
    expect((await runCli(['status'])).code).toBe(2);
  });
});
