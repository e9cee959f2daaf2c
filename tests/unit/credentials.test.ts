import { spawnSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { CREDENTIAL_FILES, type DeviceJson, readDeviceJson } from '../../src/device/credentials.js';
import { generateKeyPair } from '../../src/device/keys.js';
import { stageCredentials } from '../../src/device/staged-set.js';
import { findStagedSets } from '../../src/device/unfinished-sets.js';
import {
  FleetProvisioningError,
  InvalidArgumentError,
  PersistFailedError,
} from '../../src/protocol/errors.js';
import { certificateIdOf, issueCertificate, makeCa } from '../helpers/x509.js';

interface Fixture {
  certificatePem: string;
  privateKeyPem: string;
  device: DeviceJson;
}

const fixtures: Fixture[] = [];
let base: string;

function fixture(index: number): Fixture {
  const value = fixtures[index];
  if (value === undefined) throw new Error(`no fixture ${index}`);
  return value;
}

beforeAll(async () => {
  const ca = await makeCa();
  for (let i = 0; i < 3; i += 1) {
    const pair = await generateKeyPair('ec-p256');
    const certificatePem = await issueCertificate(ca, pair.publicKeyPem);
    fixtures.push({
      certificatePem,
      privateKeyPem: pair.privateKeyPem,
      device: {
        thingName: `thing-${i}`,
        certificateId: certificateIdOf(certificatePem),
        deviceConfiguration: { index: String(i) },
        templateName: 'FactoryTemplate',
        endpoint: 'mqtts://127.0.0.1:8883',
        provisionedAt: new Date(2025, 0, i + 1).toISOString(),
      },
    });
  }
});

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'credentials-'));
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

async function save(dir: string, f: Fixture, withKey = true) {
  const staged = await stageCredentials(
    dir,
    withKey
      ? { certificatePem: f.certificatePem, privateKeyPem: f.privateKeyPem }
      : { certificatePem: f.certificatePem },
  );
  return staged.commit(f.device);
}

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;
const read = (dir: string, name: string): Promise<string> => readFile(join(dir, name), 'utf8');

/** What the final paths show, checked to be one coherent set. */
async function visibleSet(dir: string): Promise<number | 'none'> {
  const certificate = await read(dir, CREDENTIAL_FILES.certificate).catch(() => undefined);
  const index = fixtures.findIndex((f) => f.certificatePem === certificate);
  if (certificate === undefined) {
    await expect(read(dir, CREDENTIAL_FILES.privateKey)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(readDeviceJson(dir)).resolves.toBeUndefined();
    return 'none';
  }
  const f = fixture(index);
  expect(await read(dir, CREDENTIAL_FILES.privateKey)).toBe(f.privateKeyPem);
  expect(await readDeviceJson(dir)).toEqual(f.device);
  expect(new X509Certificate(certificate).checkPrivateKey(createPrivateKey(f.privateKeyPem))).toBe(true);
  return index;
}

/** The names in `dir` other than the three final names and the pointer. */
async function extraEntries(dir: string): Promise<string[]> {
  const entries = await readdir(dir);
  return entries.filter((e) => ![...Object.values(CREDENTIAL_FILES), '.current'].includes(e));
}

describe('stageCredentials + commit', () => {
  it('creates the directory 0700 and writes the three files with their modes and content', async () => {
    const dir = join(base, 'a', 'credentials');
    const { files } = await save(dir, fixture(0));
    expect(files).toEqual({
      directory: dir,
      certificate: join(dir, 'certificate.pem.crt'),
      privateKey: join(dir, 'private.pem.key'),
      deviceJson: join(dir, 'device.json'),
    });
    expect(await mode(dir)).toBe(0o700);
    expect(await mode(files.certificate)).toBe(0o644);
    expect(await mode(join(dir, 'private.pem.key'))).toBe(0o600);
    expect(await mode(files.deviceJson)).toBe(0o644);
    expect(await visibleSet(dir)).toBe(0);
    expect(JSON.parse(await read(dir, 'device.json'))).toEqual(fixture(0).device);
    expect(await extraEntries(dir)).toHaveLength(1); // the one live set
  });

  it('sets the contract modes whatever the umask', async () => {
    const previous = process.umask(0o077);
    try {
      const dir = join(base, 'umask');
      await save(dir, fixture(0));
      expect(await mode(join(dir, 'certificate.pem.crt'))).toBe(0o644);
      expect(await mode(join(dir, 'device.json'))).toBe(0o644);
      expect(await mode(join(dir, 'private.pem.key'))).toBe(0o600);
    } finally {
      process.umask(previous);
    }
  });

  it('tightens an existing directory to 0700', async () => {
    await chmod(base, 0o755);
    await save(base, fixture(0));
    expect(await mode(base)).toBe(0o700);
    expect(await mode(join(base, 'private.pem.key'))).toBe(0o600);
  });

  it('replaces an old set with a new one and removes the old files', async () => {
    await save(base, fixture(0));
    const before = await extraEntries(base);
    await save(base, fixture(1));
    expect(await visibleSet(base)).toBe(1);
    const after = await extraEntries(base);
    expect(after).toHaveLength(1);
    expect(after).not.toEqual(before);
  });

  it('shows the old set until commit, with the new key already on disk (0600)', async () => {
    await save(base, fixture(0));
    const staged = await stageCredentials(base, fixture(1));
    expect(await visibleSet(base)).toBe(0);
    const sets = await extraEntries(base);
    expect(sets).toHaveLength(2);
    const keys = await Promise.all(
      sets.map((s) => readFile(join(base, s, 'private.pem.key'), 'utf8').then((k) => [k, s] as const)),
    );
    const stagedSet = keys.find(([k]) => k === fixture(1).privateKeyPem)?.[1];
    expect(stagedSet).toBeDefined();
    expect(await mode(join(base, stagedSet ?? '', 'private.pem.key'))).toBe(0o600);
    await staged.commit(fixture(1).device);
    expect(await visibleSet(base)).toBe(1);
  });

  it('makes the key 0600 even when a 0644 key file was there before, and adopts old regular files', async () => {
    for (const [name, content] of [
      ['certificate.pem.crt', fixture(0).certificatePem],
      ['private.pem.key', fixture(0).privateKeyPem],
      ['device.json', JSON.stringify(fixture(0).device)],
    ] as const) {
      await writeFile(join(base, name), content, { mode: 0o644 });
      await chmod(join(base, name), 0o644);
    }
    const staged = await stageCredentials(base, fixture(1));
    expect(await visibleSet(base)).toBe(0);
    await staged.commit(fixture(1).device);
    expect(await visibleSet(base)).toBe(1);
    expect(await mode(join(base, 'private.pem.key'))).toBe(0o600);
    expect(await mode(join(base, 'certificate.pem.crt'))).toBe(0o644);
    for (const name of Object.values(CREDENTIAL_FILES)) {
      expect((await lstat(join(base, name))).isSymbolicLink()).toBe(true);
    }
    expect(await extraEntries(base)).toHaveLength(1);
  });

  it('writes a set without a key (CSR flow): no private.pem.key, not even the old one', async () => {
    await save(base, fixture(0));
    const { files } = await save(base, fixture(1), false);
    expect(files.privateKey).toBeUndefined();
    expect(await read(base, 'certificate.pem.crt')).toBe(fixture(1).certificatePem);
    await expect(lstat(join(base, 'private.pem.key'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readDeviceJson(base)).toEqual(fixture(1).device);
    // And back to a set with a key.
    await save(base, fixture(2));
    expect(await visibleSet(base)).toBe(2);
  });

  it('keeps a second staged set of this process while staging another', async () => {
    const first = await stageCredentials(base, fixture(0));
    const second = await stageCredentials(base, fixture(1));
    await first.commit(fixture(0).device);
    await second.commit(fixture(1).device);
    expect(await visibleSet(base)).toBe(1);
  });
});

describe('discard and misuse', () => {
  it('discard removes the staged set and leaves the old set', async () => {
    await save(base, fixture(0));
    const staged = await stageCredentials(base, fixture(1));
    await staged.discard();
    await staged.discard();
    expect(await visibleSet(base)).toBe(0);
    expect(await extraEntries(base)).toHaveLength(1);
    await expect(staged.commit(fixture(1).device)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('refuses a second commit and a malformed device.json', async () => {
    const staged = await stageCredentials(base, fixture(0));
    const bad = { ...fixture(0).device, certificateId: '' };
    await expect(staged.commit(bad)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await staged.commit(fixture(0).device);
    await expect(staged.commit(fixture(0).device)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await staged.discard(); // no-op after commit
    expect(await visibleSet(base)).toBe(0);
  });

  it('refuses to stage without a certificate', async () => {
    await expect(stageCredentials(base, { certificatePem: '' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(stageCredentials(base, { certificatePem: 'x', privateKeyPem: '' })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });
});

describe('failures', () => {
  function expectPersistFailed(error: unknown, code: string): void {
    expect(error).toBeInstanceOf(PersistFailedError);
    if (!(error instanceof FleetProvisioningError)) return;
    expect(error.code).toBe('PERSIST_FAILED');
    expect(error.message).toContain(code);
    expect(error.message).not.toContain('BEGIN');
    expect(error.cause).toMatchObject({ code });
    for (const f of fixtures) {
      const body = f.privateKeyPem.split('\n')[1] ?? 'unreachable';
      expect(error.message).not.toContain(body);
    }
  }

  it('a path below a regular file → PERSIST_FAILED (works as root too)', async () => {
    await writeFile(join(base, 'file'), 'x');
    const error = await stageCredentials(join(base, 'file', 'credentials'), fixture(0)).catch(
      (e: unknown) => e,
    );
    expectPersistFailed(error, 'ENOTDIR');
  });

  it('a directory where a credential file belongs → PERSIST_FAILED at commit, old files untouched', async () => {
    await writeFile(join(base, 'certificate.pem.crt'), fixture(0).certificatePem);
    await writeFile(join(base, 'private.pem.key'), fixture(0).privateKeyPem, { mode: 0o600 });
    await mkdir(join(base, 'device.json', 'inside'), { recursive: true });
    const staged = await stageCredentials(base, fixture(1));
    const error = await staged.commit(fixture(1).device).catch((e: unknown) => e);
    expectPersistFailed(error, 'EISDIR');
    expect(await read(base, 'certificate.pem.crt')).toBe(fixture(0).certificatePem);
    expect(await read(base, 'private.pem.key')).toBe(fixture(0).privateKeyPem);
    await staged.discard();
    // Once the obstacle is gone, the next run succeeds and leaves nothing behind.
    await rm(join(base, 'device.json'), { recursive: true });
    await save(base, fixture(2));
    expect(await visibleSet(base)).toBe(2);
    expect(await extraEntries(base)).toHaveLength(1);
  });
});

describe('leftovers', () => {
  it('the next run removes sets and temp files of dead processes, and only those', async () => {
    await save(base, fixture(0));
    const child = spawnSync(process.execPath, ['-e', '0']);
    const dead = child.pid;
    if (dead === undefined) throw new Error('no pid');
    const alive = process.ppid;
    await mkdir(join(base, `.set-${dead}-0a1b2c`));
    await writeFile(join(base, `.set-${dead}-0a1b2c`, 'private.pem.key'), 'half');
    await writeFile(join(base, `.tmp-${dead}-abcdef`), 'half');
    await mkdir(join(base, `.set-${process.pid}-123456`)); // this pid, but not made by this process
    await mkdir(join(base, `.set-${alive}-fedcba`));
    await writeFile(join(base, 'notes.txt'), 'mine');
    await save(base, fixture(1));
    const extra = await extraEntries(base);
    expect(extra.sort()).toEqual(expect.arrayContaining([`.set-${alive}-fedcba`, 'notes.txt']));
    expect(extra).toHaveLength(3);
    expect(await visibleSet(base)).toBe(1);
  });
});

describe('readDeviceJson', () => {
  it('is undefined where nothing was provisioned', async () => {
    await expect(readDeviceJson(join(base, 'missing'))).resolves.toBeUndefined();
    await expect(readDeviceJson(base)).resolves.toBeUndefined();
  });

  it('reads a device without a thing name', async () => {
    const { thingName: _omit, ...device } = fixture(0).device;
    const staged = await stageCredentials(base, fixture(0));
    await staged.commit(device);
    const read = await readDeviceJson(base);
    expect(read).toEqual(device);
    expect(read).not.toHaveProperty('thingName');
  });

  it('throws PERSIST_FAILED on a corrupt device.json', async () => {
    await writeFile(join(base, 'device.json'), '{"thingName": 1');
    await expect(readDeviceJson(base)).rejects.toMatchObject({ code: 'PERSIST_FAILED' });
    await writeFile(join(base, 'device.json'), '{"thingName": "x"}');
    await expect(readDeviceJson(base)).rejects.toMatchObject({ code: 'PERSIST_FAILED' });
  });
});

describe('staged sets that record their state', () => {
  const state = (f: Fixture) => ({
    state: 'issued' as const,
    certificateId: f.device.certificateId,
    issuedAt: 1_700_000_000_000,
    certificateOwnershipToken: 'token-that-must-stay-private',
    endpoint: f.device.endpoint,
    templateName: f.device.templateName,
    parametersSha256: 'a'.repeat(64),
  });

  it('keeps the token 0600 in the set, drops it once registered, and never publishes the state file', async () => {
    const f = fixture(0);
    const staged = await stageCredentials(base, f, state(f));
    const [setName] = (await readdir(base)).filter((name) => name.startsWith('.set-'));
    const stateFile = join(base, setName ?? '?', 'state.json');
    expect(await mode(stateFile)).toBe(0o600);
    expect(await readFile(stateFile, 'utf8')).toContain('token-that-must-stay-private');
    await staged.markRegistered(f.device);
    expect(await readFile(stateFile, 'utf8')).not.toContain('token');
    expect(JSON.parse(await readFile(stateFile, 'utf8'))).toMatchObject({ state: 'registered' });
    await staged.commit();
    expect((await readdir(join(base, '.current'))).sort()).toEqual([
      'certificate.pem.crt',
      'device.json',
      'private.pem.key',
    ]);
    expect(await readDeviceJson(base)).toEqual(f.device);
  });

  it('is found by the next run, in the state it recorded, and is not removed as a leftover', async () => {
    const f = fixture(1);
    // A run that ends before its commit: leave() is what a crash amounts to for this process.
    const staged = await stageCredentials(base, f, state(f));
    await staged.markRegistered(f.device);
    staged.leave();
    // Another set staged here must leave the dead process's resumable set alone.
    const other = await stageCredentials(base, fixture(2));
    await other.discard();
    const found = await findStagedSets(base);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({
      certificatePem: f.certificatePem,
      privateKeyPem: f.privateKeyPem,
      device: f.device,
      progress: { state: 'registered', certificateId: f.device.certificateId },
    });
    expect(found[0]?.progress.certificateOwnershipToken).toBeUndefined();
    await found[0]?.staged.commit();
    expect(await readDeviceJson(base)).toEqual(f.device);
    expect(await findStagedSets(base)).toEqual([]);
  });
});
