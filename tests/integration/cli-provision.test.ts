/**
 * `fleet-provision provision`, the built bin in a child process, against a simulator in this process:
 * files and modes, `--json` (parsed, checked for secrets), idempotency and `--force`, configuration from
 * the environment, output modes, and a provision path that never loads the simulator.
 */
import { lstat, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runCli, secretsIn } from '../helpers/cli-run.js';
import { type CliSimulator, startCliSimulator } from '../helpers/cli-simulator.js';

const forbidHook = fileURLToPath(new URL('../helpers/cli-forbid-simulator.mjs', import.meta.url));

let env: CliSimulator;
beforeAll(async () => {
  env = await startCliSimulator();
});
afterAll(async () => {
  await env.close();
});

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;
const connects = () => env.sim.requests().filter((entry) => entry.type === 'connect').length;

describe('fleet-provision provision', () => {
  it('provisions, writes the files with their modes, and prints one secret-free JSON object', async () => {
    const out = join(env.dir, 'json');
    const result = await runCli([
      'provision',
      ...env.connectionFlags(),
      '--param',
      'SerialNumber=SN-json',
      '--out',
      out,
      '--json',
    ]);
    expect(result.stderr).not.toMatch(/error/);
    expect(result.code).toBe(0);
    const printed: unknown = JSON.parse(result.stdout);
    expect(printed).toEqual({
      thingName: 'SN-json',
      certificateId: expect.stringMatching(/^[0-9a-f]{64}$/),
      deviceConfiguration: {},
      files: {
        directory: out,
        certificate: join(out, 'certificate.pem.crt'),
        privateKey: join(out, 'private.pem.key'),
        deviceJson: join(out, 'device.json'),
      },
      alreadyProvisioned: false,
    });
    expect(await modeOf(out)).toBe(0o700);
    expect(await modeOf(join(out, 'certificate.pem.crt'))).toBe(0o644);
    expect(await modeOf(join(out, 'private.pem.key'))).toBe(0o600);
    expect(await modeOf(join(out, 'device.json'))).toBe(0o644);
    const device: unknown = JSON.parse(await readFile(join(out, 'device.json'), 'utf8'));
    expect(device).toMatchObject({
      thingName: 'SN-json',
      templateName: 'DemoTemplate',
      endpoint: env.sim.url,
    });
    const privateKey = await readFile(join(out, 'private.pem.key'), 'utf8');
    const certificate = await readFile(join(out, 'certificate.pem.crt'), 'utf8');
    expect(
      secretsIn(result.stdout + result.stderr, [privateKey, certificate, env.sim.claimPrivateKey]),
    ).toEqual([]);
    // The simulator agrees: the thing exists and its certificate is the one on disk, now ACTIVE.
    const id = (printed as { certificateId: string }).certificateId;
    expect(env.sim.things().find((t) => t.thingName === 'SN-json')?.certificateId).toBe(id);
    expect(env.sim.certificates().find((c) => c.certificateId === id)?.status).toBe('ACTIVE');
  });

  it('is idempotent: an existing device.json means exit 0 without connecting, unless --force', async () => {
    const out = join(env.dir, 'again');
    const flags = [
      'provision',
      ...env.connectionFlags(),
      '--param',
      'SerialNumber=SN-again',
      '--out',
      out,
      '--json',
    ];
    const first = await runCli(flags);
    expect(first.code).toBe(0);
    const firstId = (JSON.parse(first.stdout) as { certificateId: string }).certificateId;

    const before = connects();
    const second = await runCli(flags);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ certificateId: firstId, alreadyProvisioned: true });
    expect(connects()).toBe(before);

    const forced = await runCli([...flags, '--force']);
    expect(forced.code).toBe(0);
    const forcedId = (JSON.parse(forced.stdout) as { certificateId: string }).certificateId;
    expect(forcedId).not.toBe(firstId);
    expect(connects()).toBeGreaterThan(before);
    const device = JSON.parse(await readFile(join(out, 'device.json'), 'utf8')) as { certificateId: string };
    expect(device.certificateId).toBe(forcedId);
  });

  it('refuses a set made for another serial number (exit 2, naming it) unless --force', async () => {
    const out = join(env.dir, 'other-serial');
    const flags = ['provision', ...env.connectionFlags(), '--out', out];
    expect((await runCli([...flags, '--param', 'SerialNumber=SN-first'])).code).toBe(0);
    const before = connects();
    const other = await runCli([...flags, '--param', 'SerialNumber=SN-second']);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/other template parameters/);
    expect(connects()).toBe(before);
    expect((await runCli([...flags, '--param', 'SerialNumber=SN-second', '--force'])).code).toBe(0);
  });

  it('exports the live set as plain files with their modes', async () => {
    const out = join(env.dir, 'to-export');
    const to = join(env.dir, 'exported');
    const flags = ['provision', ...env.connectionFlags(), '--param', 'SerialNumber=SN-export', '--out', out];
    expect((await runCli(flags)).code).toBe(0);
    const result = await runCli(['export', '--out', out, '--to', to, '--json']);
    expect(result.code).toBe(0);
    const printed = JSON.parse(result.stdout) as { certificateId: string };
    expect(secretsIn(result.stdout)).toEqual([]);
    for (const [name, mode] of [
      ['certificate.pem.crt', 0o644],
      ['private.pem.key', 0o600],
      ['device.json', 0o644],
    ] as const) {
      const info = await lstat(join(to, name));
      expect(info.isFile()).toBe(true);
      expect(info.mode & 0o777).toBe(mode);
      expect(await readFile(join(to, name), 'utf8')).toBe(await readFile(join(out, name), 'utf8'));
    }
    expect(await modeOf(to)).toBe(0o700);
    expect(JSON.parse(await readFile(join(to, 'device.json'), 'utf8'))).toMatchObject({
      certificateId: printed.certificateId,
    });
    const help = await runCli(['export', '--help']);
    expect(help.stdout).toMatch(/Usage: fleet-provision export --out <dir> --to <dir>/);
    const nothing = await runCli(['export', '--out', join(env.dir, 'never-provisioned'), '--to', to]);
    expect(nothing.code).toBe(7);
  });

  it('when already provisioned, still rejects bad flags but needs no claim files', async () => {
    const out = join(env.dir, 'done-once');
    const claimCopy = join(env.dir, 'claim-copy.pem.crt');
    const keyCopy = join(env.dir, 'claim-copy.private.pem.key');
    await writeFile(claimCopy, env.sim.claimCertificate);
    await writeFile(keyCopy, env.sim.claimPrivateKey, { mode: 0o600 });
    const flags = [
      'provision',
      '--endpoint',
      env.sim.url,
      '--ca',
      env.files.ca,
      '--claim-cert',
      claimCopy,
      '--claim-key',
      keyCopy,
      '--template',
      'DemoTemplate',
      '--param',
      'SerialNumber=SN-once',
      '--out',
      out,
    ];
    expect((await runCli(flags)).code).toBe(0);
    // Factories delete the claim credentials once a device is provisioned; the next boot must still pass.
    await rm(claimCopy);
    await rm(keyCopy);
    const again = await runCli(flags);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/already provisioned: thing SN-once/);
    const typo = await runCli([...flags, '--keys', 'ed25519']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/--keys must be one of/);
  });

  it('takes every setting from FLEET_PROVISION_* variables, PEM text included', async () => {
    const out = join(env.dir, 'from-env');
    const result = await runCli(['provision'], {
      env: {
        FLEET_PROVISION_ENDPOINT: env.sim.url,
        FLEET_PROVISION_TEMPLATE: 'DemoTemplate',
        FLEET_PROVISION_CA: env.files.ca,
        // A CI secret holds the PEM itself; a file path works as well.
        FLEET_PROVISION_CLAIM_CERT: env.sim.claimCertificate,
        FLEET_PROVISION_CLAIM_KEY: env.sim.claimPrivateKey,
        FLEET_PROVISION_PARAMS_JSON: '{"SerialNumber":"SN-env"}',
        FLEET_PROVISION_KEYS: 'generate',
        FLEET_PROVISION_FORMAT: 'cbor',
        FLEET_PROVISION_OUT: out,
        FLEET_PROVISION_JSON: 'true',
      },
    });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ thingName: 'SN-env', alreadyProvisioned: false });
    const id = (JSON.parse(result.stdout) as { certificateId: string }).certificateId;
    expect(env.sim.certificates().find((c) => c.certificateId === id)?.issuedBy).toBe(
      'CreateCertificateFromCsr',
    );
    const cbor = env.sim.requests().filter((e) => e.type === 'publish' && e.format === 'cbor');
    expect(cbor.length).toBeGreaterThanOrEqual(2);
    expect(secretsIn(result.stdout + result.stderr, [env.sim.claimPrivateKey])).toEqual([]);
  });

  it('lets the command line win over the environment, and --param over --params-json', async () => {
    const out = join(env.dir, 'precedence');
    const result = await runCli(
      ['provision', ...env.connectionFlags(), '--param', 'SerialNumber=SN-flag', '--out', out, '--json'],
      {
        env: {
          FLEET_PROVISION_TEMPLATE: 'NoSuchTemplate',
          FLEET_PROVISION_PARAMS_JSON: '{"SerialNumber":"SN-env"}',
        },
      },
    );
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ thingName: 'SN-flag' });
  });

  it('shows plain progress lines on stderr and a summary on stdout; --quiet prints nothing', async () => {
    const plain = await runCli([
      'provision',
      ...env.connectionFlags(),
      '--param',
      'SerialNumber=SN-plain',
      '--out',
      join(env.dir, 'plain'),
      '--verify',
    ]);
    expect(plain.code).toBe(0);
    const steps = plain.stderr.split('\n').map((line) => line.split(/\s+/)[0]);
    expect(steps).toEqual(
      expect.arrayContaining([
        'connecting',
        'subscribed',
        'certificate',
        'staged',
        'registered',
        'saved',
        'verified',
      ]),
    );
    expect(plain.stdout).toMatch(/^provisioned thing SN-plain/);
    expect(plain.stdout).toMatch(/verified\s+yes/);

    const quiet = await runCli([
      'provision',
      ...env.connectionFlags(),
      '--param',
      'SerialNumber=SN-quiet',
      '--out',
      join(env.dir, 'quiet'),
      '--quiet',
    ]);
    expect(quiet.code).toBe(0);
    expect(quiet.stdout).toBe('');
    expect(quiet.stderr).toBe('');
    expect(env.sim.things().some((t) => t.thingName === 'SN-quiet')).toBe(true);
  });

  it('never loads the simulator, its broker or the X.509 library on the provision path', async () => {
    const result = await runCli(
      [
        'provision',
        ...env.connectionFlags(),
        '--param',
        'SerialNumber=SN-lean',
        '--out',
        join(env.dir, 'lean'),
      ],
      { nodeArgs: ['--import', forbidHook] },
    );
    expect(result.stderr).not.toMatch(/forbidden import/);
    expect(result.code).toBe(0);
    // The hook itself works: the demo, which needs the simulator, is refused under it.
    const demo = await runCli(['demo'], { nodeArgs: ['--import', forbidHook] });
    expect(demo.stderr).toMatch(/forbidden import: .*simulator/);
    expect(demo.code).toBe(1);
  });

  it('has --help with an example, and --version', async () => {
    const help = await runCli(['provision', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: fleet-provision provision/);
    expect(help.stdout).toMatch(/Example:\n\s+fleet-provision provision/);
    const version = await runCli(['provision', '--version']);
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(version.stdout.trim()).toBe(pkg.version);
  });
});
