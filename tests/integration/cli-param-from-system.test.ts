/**
 * `fleet-provision provision --param-from-system SerialNumber=serial`: the same command on every device of
 * a factory image, each thing named after the board's own serial number (read from a fixture tree).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runCli } from '../helpers/cli-run.js';
import { type CliSimulator, startCliSimulator } from '../helpers/cli-simulator.js';

let env: CliSimulator;
let root: string;

beforeAll(async () => {
  env = await startCliSimulator();
  root = join(env.dir, 'board');
  await mkdir(join(root, 'proc/sys/kernel'), { recursive: true });
  await writeFile(join(root, 'proc/sys/kernel/hostname'), 'board-17\n');
  await writeFile(join(root, 'proc/cpuinfo'), 'Hardware\t: BCM2835\nSerial\t\t: 100000002a5f3c1e\n');
});

afterAll(async () => {
  await env.close();
});

describe('provision --param-from-system', () => {
  it('names the thing after the serial number the machine reports', async () => {
    const result = await runCli([
      'provision',
      ...env.connectionFlags(),
      '--param-from-system',
      'SerialNumber=serial',
      '--system-root',
      root,
      '--out',
      join(env.dir, 'serial'),
      '--json',
    ]);
    expect(result.stderr).not.toMatch(/error/);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ thingName: '100000002a5f3c1e' });
    expect(env.sim.things().at(-1)?.parameters).toEqual({ SerialNumber: '100000002a5f3c1e' });
  });

  it('lets --param win over a fact, and refuses an unknown fact or one the machine lacks (exit 2)', async () => {
    const base = ['provision', ...env.connectionFlags(), '--system-root', root, '--json'];
    const both = await runCli([
      ...base,
      '--param-from-system',
      'SerialNumber=hostname',
      '--param',
      'SerialNumber=SN-given',
      '--out',
      join(env.dir, 'given'),
    ]);
    expect(JSON.parse(both.stdout)).toMatchObject({ thingName: 'SN-given' });
    const unknown = await runCli([
      ...base,
      '--param-from-system',
      'SerialNumber=imei',
      '--out',
      join(env.dir, 'x'),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/FACT one of hostname, interface, mac, ip, serial, certificate-id/);
    const lacking = await runCli([...base, '--param-from-system', 'Mac=mac', '--out', join(env.dir, 'y')]);
    expect(lacking.code).toBe(2);
    expect(lacking.stderr).toMatch(/this machine has no mac to give Mac/);
  });
});
