/**
 * `fleet-provision simulate` as a child process: it prints its endpoint, writes the files clients need,
 * answers a real `fleet-provision provision`, prints a line per answer, loads templates from a file, and
 * stops cleanly (exit 0) on SIGINT and SIGTERM.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runCli, secretsIn, startCli } from '../helpers/cli-run.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-provision-cli-simulate-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('fleet-provision simulate', () => {
  it('serves provision requests, logs each answer, and exits 0 on SIGINT', async () => {
    const simDir = join(dir, 'sim');
    const templates = join(dir, 'templates.json');
    await writeFile(
      templates,
      JSON.stringify({
        SensorTemplate: {
          thingName: 'sensor-{{SerialNumber}}',
          deviceConfiguration: { region: 'north', serial: '{{SerialNumber}}' },
          requiredParameters: ['SerialNumber'],
        },
      }),
    );
    const sim = startCli(['simulate', '--port', '0', '--out', simDir, '--templates', templates]);
    const endpoint = (await sim.line(/^endpoint: /)).replace('endpoint: ', '').trim();
    expect(endpoint).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    expect(await sim.line(/^template: /)).toBe('template: SensorTemplate (parameters: SerialNumber)');
    const files = {
      ca: join(simDir, 'ca.pem.crt'),
      cert: join(simDir, 'claim.pem.crt'),
      key: join(simDir, 'claim.private.pem.key'),
    };
    expect((await stat(files.key)).mode & 0o777).toBe(0o600);
    expect(await readFile(files.ca, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);

    const out = join(dir, 'device');
    const provisioned = await runCli([
      'provision',
      '--endpoint',
      endpoint,
      '--ca',
      files.ca,
      '--claim-cert',
      files.cert,
      '--claim-key',
      files.key,
      '--template',
      'SensorTemplate',
      '--param',
      'SerialNumber=42',
      '--out',
      out,
      '--json',
    ]);
    expect(provisioned.code).toBe(0);
    expect(JSON.parse(provisioned.stdout)).toMatchObject({
      thingName: 'sensor-42',
      deviceConfiguration: { region: 'north', serial: '42' },
    });
    await sim.line(/ RegisterThing json accepted client=/);

    sim.child.kill('SIGINT');
    const result = await sim.exited;
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/stopped/);
    expect(result.stdout).toMatch(/CreateKeysAndCertificate json accepted/);
    const key = await readFile(files.key, 'utf8');
    expect(secretsIn(result.stdout + result.stderr + provisioned.stdout + provisioned.stderr, [key])).toEqual(
      [],
    );
  });

  it('exits 0 on SIGTERM, and reuses its identity from --out on the next start', async () => {
    const simDir = join(dir, 'sim-term');
    const first = startCli(['simulate', '--port', '0', '--out', simDir, '--quiet']);
    await first.line(/^endpoint: /);
    const ca = await readFile(join(simDir, 'ca.pem.crt'), 'utf8');
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);

    const second = startCli(['simulate', '--port', '0', '--out', simDir, '--no-tls']);
    expect(await second.line(/^endpoint: /)).toMatch(/^endpoint: mqtt:\/\/127\.0\.0\.1:\d+$/);
    expect(await readFile(join(simDir, 'ca.pem.crt'), 'utf8')).toBe(ca);
    second.child.kill('SIGINT');
    expect((await second.exited).code).toBe(0);
  });

  it('exits 2 on a templates file that is not a map of templates', async () => {
    const bad = join(dir, 'bad-templates.json');
    await writeFile(bad, JSON.stringify({ T: { thingName: 7 } }));
    const result = await runCli([
      'simulate',
      '--port',
      '0',
      '--out',
      join(dir, 'unused'),
      '--templates',
      bad,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--templates file .* is not a map of templates \(at T\.thingName\)/);
  });

  it('exits 2 with what to do when the port is already in use', async () => {
    const holder = createServer();
    await new Promise<void>((listening) => holder.listen(0, '127.0.0.1', () => listening()));
    try {
      const address = holder.address();
      if (address === null || typeof address === 'string') throw new Error('no TCP address');
      const result = await runCli(['simulate', '--port', String(address.port), '--out', join(dir, 'busy')]);
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        `error: port ${address.port} on 127.0.0.1 is already in use (EADDRINUSE): stop what listens there, ` +
          'or pick another port with --port <n> (--port 0 picks a free one).\n',
      );
    } finally {
      await new Promise<void>((closed) => holder.close(() => closed()));
    }
  });

  it('has --help with an example', async () => {
    const help = await runCli(['simulate', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Example:\n\s+fleet-provision simulate/);
  });
});
