/**
 * `fleet-provision demo` and `fleet-provision load` as child processes: the demo end to end with its
 * files, load against its own in-process simulator (200 devices, zero failures, report written) and
 * against a simulator in this process (a warning, real registrations, failures counted by code).
 */
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runCli, secretsIn } from '../helpers/cli-run.js';
import { type CliSimulator, startCliSimulator } from '../helpers/cli-simulator.js';

let env: CliSimulator;
beforeAll(async () => {
  env = await startCliSimulator();
});
afterAll(async () => {
  await env.close();
});

interface Report {
  devices: number;
  succeeded: number;
  failed: number;
  failuresByCode: Record<string, number>;
  throughputPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; min: number } | null;
  histogram: Array<{ fromMs: number; toMs: number; count: number }>;
}

describe('fleet-provision demo', () => {
  it('provisions one device end to end, saves its files and reconnects with the new certificate', async () => {
    const out = join(env.dir, 'demo');
    const result = await runCli(['demo', '--out', out]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    for (const step of [
      'simulator',
      'key',
      'connecting',
      'subscribed',
      'certificate',
      'registered',
      'saved',
    ]) {
      expect(result.stdout).toMatch(new RegExp(`^\\s+\\d+\\. ${step}\\s`, 'm'));
    }
    expect(result.stdout).toMatch(/verified\s+reconnected with the new certificate: the broker accepted it/);
    expect(result.stdout).toMatch(/\(ACTIVE\), issued by CreateCertificateFromCsr/);
    expect(result.stdout).toContain(`${join(out, 'private.pem.key')}  (mode 0600)`);
    expect((await stat(join(out, 'private.pem.key'))).mode & 0o777).toBe(0o600);
    const device = JSON.parse(await readFile(join(out, 'device.json'), 'utf8')) as { thingName: string };
    expect(device.thingName).toMatch(/^demo-[0-9a-f]{6}$/);
    const key = await readFile(join(out, 'private.pem.key'), 'utf8');
    expect(secretsIn(result.stdout, [key])).toEqual([]);
  });

  it('also runs with server-made keys over CBOR, in a fresh folder by default', async () => {
    const result = await runCli(['demo', '--keys', 'server', '--format', 'cbor']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/issued by CreateKeysAndCertificate/);
    const folder = /The device's files \((.+)\):/.exec(result.stdout)?.[1];
    expect(folder).toMatch(/fleet-provision-demo-/);
    expect((await stat(join(folder ?? '', 'device.json'))).isFile()).toBe(true);
    await rm(folder ?? '', { recursive: true, force: true });
  });
});

describe('fleet-provision load', () => {
  it('provisions 200 devices on the in-process simulator with zero failures and writes a report', async () => {
    const reportPath = join(env.dir, 'load.json');
    const result = await runCli(['load', '--devices', '200', '--concurrency', '25', '--report', reportPath], {
      cwd: env.dir,
    });
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(reportPath, 'utf8')) as Report;
    expect(report).toMatchObject({ devices: 200, succeeded: 200, failed: 0, failuresByCode: {} });
    expect(report.throughputPerSecond).toBeGreaterThan(0);
    const latency = report.latencyMs;
    expect(latency).not.toBeNull();
    if (latency !== null) {
      expect(latency.min).toBeLessThanOrEqual(latency.p50);
      expect(latency.p50).toBeLessThanOrEqual(latency.p90);
      expect(latency.p90).toBeLessThanOrEqual(latency.p99);
      expect(latency.p99).toBeLessThanOrEqual(latency.max);
    }
    expect(report.histogram.reduce((sum, bucket) => sum + bucket.count, 0)).toBe(200);
    expect(result.stdout).toMatch(/succeeded\s+200/);
    expect(result.stdout).toMatch(/failed\s+0/);
    expect(result.stdout).toMatch(/p50 [\d.]+ ms\s+p90 [\d.]+ ms\s+p99 [\d.]+ ms\s+max [\d.]+ ms/);
    expect(result.stdout).toMatch(/│█/);
    // Not a terminal: the progress bar prints a plain line per tenth on stderr.
    expect(result.stderr).toMatch(/\[█{30}\] 100% 200\/200/);
    expect(secretsIn(result.stdout + result.stderr)).toEqual([]);
  }, 120_000);

  it('against an --endpoint: warns, registers real things there, and counts failures by code', async () => {
    env.sim.faults.script(
      'RegisterThing',
      { type: 'reject', statusCode: 400, errorCode: 'InvalidParameters' },
      {
        times: 3,
      },
    );
    const before = env.sim.things().length;
    const result = await runCli([
      'load',
      '--devices',
      '12',
      '--concurrency',
      '4',
      ...env.connectionFlags(),
      '--param',
      'SerialNumber=endpoint-load-{i}',
      '--json',
    ]);
    expect(result.stderr).toMatch(/warning: load against mqtts:\/\/127\.0\.0\.1:\d+ creates 12 real things/);
    expect(result.code).toBe(3);
    const report = JSON.parse(result.stdout) as Report;
    expect(report).toMatchObject({ devices: 12, succeeded: 9, failed: 3, failuresByCode: { REJECTED: 3 } });
    expect(env.sim.things().length - before).toBe(9);
    expect(
      env.sim.things().some((t) => t.thingName === 'endpoint-load-0' || t.thingName === 'endpoint-load-11'),
    ).toBe(true);
  });

  it('exits 2 naming a missing --devices, or a shared --client-id', async () => {
    const result = await runCli(['load', '--concurrency', '4']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/missing required flag --devices/);
    // One client id for every connection would make the broker drop all but the newest.
    const shared = await runCli(['load', '--devices', '2', '--client-id', 'same']);
    expect(shared.code).toBe(2);
    expect(shared.stderr).toMatch(/--client-id cannot be used with load/);
  });

  it('has --help with an example', async () => {
    const help = await runCli(['load', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Example:\n\s+fleet-provision load --devices/);
  });
});
