/**
 * docs/guides/onboarding-from-ci.md: every flag and variable the CI examples pass to `fleet-provision`
 * exists (per `--help` of the built CLI), and the scripts run: against the simulator the CLI starts, and
 * against an endpoint where nothing listens.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { ROOT } from '../helpers/docs/embedded-examples.js';

const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const SCRIPTS = [
  'examples/onboard-from-ci.sh',
  'examples/ci-with-simulator.sh',
  'examples/github-workflow.yml',
];
const work = mkdtempSync(join(tmpdir(), 'guide-ci-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function help(command: string): string {
  const result = spawnSync(process.execPath, [CLI, command, '--help'], { encoding: 'utf8' });
  expect(result.status).toBe(0);
  return result.stdout;
}

/** Each `fleet-provision <command> …` in `text` (comments left out), with its continuation lines, as [command, flags]. */
function invocations(text: string): Array<[string, string[]]> {
  const code = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n');
  const joined = code.replace(/\\\n/g, ' ');
  return [...joined.matchAll(/fleet-provision (\w+)([^\n;}]*)/g)].map(([, command = '', rest = '']) => [
    command,
    [...rest.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)].map((m) => m[0]),
  ]);
}

describe('the CI examples', () => {
  it.each(SCRIPTS)('%s passes only flags and variables that fleet-provision knows', (file) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    const found = invocations(text);
    if (!file.endsWith('.yml')) expect(found.length).toBeGreaterThan(0);
    for (const [command, flags] of found) {
      const known = help(command);
      expect(flags.filter((flag) => !known.includes(flag))).toEqual([]);
    }
    const variables = [...text.matchAll(/FLEET_PROVISION_[A-Z_]+/g)].map((m) => m[0]);
    expect(variables.length).toBeGreaterThan(0);
    const provisionHelp = help('provision');
    expect(variables.filter((variable) => !provisionHelp.includes(variable))).toEqual([]);
  });

  it('the workflow runs scripts that exist', () => {
    const workflow = readFileSync(join(ROOT, 'examples/github-workflow.yml'), 'utf8');
    const scripts = [...workflow.matchAll(/bash (\S+)/g)].map((m) => m[1] ?? '');
    expect(scripts).toEqual(['examples/ci-with-simulator.sh', 'examples/onboard-from-ci.sh']);
    expect(scripts.every((script) => existsSync(join(ROOT, script)))).toBe(true);
  });
});

/** A `fleet-provision` on PATH that runs the built CLI, as `npm install --global` would give. */
function pathWithCli(): string {
  const bin = join(work, 'bin');
  rmSync(bin, { recursive: true, force: true });
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'fleet-provision'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
  chmodSync(join(bin, 'fleet-provision'), 0o755);
  return `${bin}${delimiter}${process.env.PATH ?? ''}`;
}

function run(script: string, cwd: string, env: Record<string, string>) {
  const child = spawn('bash', [join(ROOT, script)], {
    cwd,
    env: { ...process.env, PATH: pathWithCli(), ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('examples/ci-with-simulator.sh', () => {
  const cwd = join(work, 'job');

  it('provisions through onboard-from-ci.sh against the simulator', async () => {
    mkdirSync(cwd, { recursive: true });
    const { status, stdout, stderr } = await run('examples/ci-with-simulator.sh', cwd, {
      SERIAL_NUMBER: 'CI-7',
    });

    expect({ status, stderr: status === 0 ? '' : stderr }).toEqual({ status: 0, stderr: '' });
    const result: unknown = JSON.parse(readFileSync(join(cwd, 'provisioned.json'), 'utf8'));
    expect(result).toMatchObject({ thingName: 'sensor-CI-7', deviceConfiguration: { Fleet: 'factory' } });
    expect(JSON.parse(readFileSync(join(cwd, 'credentials', 'device.json'), 'utf8'))).toMatchObject({
      thingName: 'sensor-CI-7',
      templateName: 'FactoryTemplate',
    });
    expect(existsSync(join(cwd, 'credentials', 'private.pem.key'))).toBe(true);
    expect(`${stdout}\n${stderr}`).not.toMatch(/-----BEGIN|PRIVATE KEY/);
  });

  it('refuses the second time: the stored set was made for the first simulator, another endpoint', async () => {
    // Each run starts a fresh simulator (a new port and CA): the stored set cannot be reused there.
    const { status, stderr } = await run('examples/ci-with-simulator.sh', cwd, { SERIAL_NUMBER: 'CI-7' });
    expect(status).toBe(2);
    expect(stderr).toMatch(
      /already holds credentials that do not fit this request: it was made for endpoint/,
    );
    expect(JSON.parse(readFileSync(join(cwd, 'credentials', 'device.json'), 'utf8'))).toMatchObject({
      thingName: 'sensor-CI-7',
    });
  });
});

describe('examples/onboard-from-ci.sh', () => {
  it('exits 5 with a hint when the endpoint does not answer', async () => {
    const cwd = join(work, 'unreachable');
    mkdirSync(cwd, { recursive: true });
    const pem = (label: string) => `-----BEGIN ${label}-----\nTUlJQg==\n-----END ${label}-----\n`;
    const { status, stderr } = await run('examples/onboard-from-ci.sh', cwd, {
      AWS_IOT_ENDPOINT: 'mqtt://127.0.0.1:1',
      SERIAL_NUMBER: 'CI-8',
      FLEET_PROVISION_CLAIM_CERT: pem('CERTIFICATE'),
      FLEET_PROVISION_CLAIM_KEY: pem('PRIVATE KEY'),
      OUT_DIR: join(cwd, 'credentials'),
    });
    expect(status).toBe(5);
    expect(stderr).toContain('run the job again later');
    expect(existsSync(join(cwd, 'credentials', 'device.json'))).toBe(false);
  });
});
