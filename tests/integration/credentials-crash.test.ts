/**
 * Crash safety with real processes: a writer killed with SIGKILL at random moments and just
 * before each of its file-system calls, the same calls failing as on a full disk, and a real EACCES.
 * After each, the final paths must show the old complete set or the new complete set, and the next run
 * must leave nothing behind. The writer is tests/helpers/credentials-child.mjs over dist/ (`npm test`
 * builds it first).
 */
import { spawn } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CREDENTIAL_FILES, type DeviceJson, readDeviceJson } from '../../src/device/credentials.js';
import { generateKeyPair } from '../../src/device/keys.js';
import { stageCredentials } from '../../src/device/staged-set.js';
import { certificateIdOf, issueCertificate, makeCa } from '../helpers/x509.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CHILD = join(ROOT, 'tests/helpers/credentials-child.mjs');

interface Fixture {
  certificatePem: string;
  privateKeyPem?: string;
  device: DeviceJson;
}
interface ChildEvent {
  event: 'started' | 'staged' | 'saved' | 'failed' | 'done';
  index?: number;
  k?: number;
  calls?: number;
  writes?: number;
  code?: string;
  errorCode?: string;
  message?: string;
}

/** Sets 0, 1 and 3 have a key; set 2 is a CSR-flow set without one. */
const fixtures: Fixture[] = [];
let base: string;
let fixturesFile: string;

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist/device/credentials.js'))) {
    throw new Error('dist/device/credentials.js is missing: run `npm run build` first (`npm test` does).');
  }
  base = await mkdtemp(join(tmpdir(), 'credentials-crash-'));
  await chmod(base, 0o755); // the EACCES test runs a child as another user
  const ca = await makeCa();
  for (let i = 0; i < 4; i += 1) {
    const pair = await generateKeyPair('ec-p256');
    const certificatePem = await issueCertificate(ca, pair.publicKeyPem);
    fixtures.push({
      certificatePem,
      ...(i === 2 ? {} : { privateKeyPem: pair.privateKeyPem }),
      device: {
        thingName: `thing-${i}`,
        certificateId: certificateIdOf(certificatePem),
        deviceConfiguration: { set: String(i) },
        templateName: 'FactoryTemplate',
        endpoint: 'mqtts://example.invalid:8883',
        provisionedAt: new Date(Date.UTC(2025, 0, i + 1)).toISOString(),
      },
    });
  }
  fixturesFile = join(base, 'fixtures.json');
  await writeFile(fixturesFile, JSON.stringify(fixtures), { mode: 0o644 });
}, 30_000);

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

function fixture(index: number): Fixture {
  const f = fixtures[index % fixtures.length];
  if (f === undefined) throw new Error(`no fixture ${index}`);
  return f;
}

/** Run the writer; with `killAfterMs`, SIGKILL it that long after it starts writing. */
function runChild(
  job: Record<string, unknown>,
  options: { killAfterMs?: number; uid?: number } = {},
): Promise<{ signal: NodeJS.Signals | null; events: ChildEvent[] }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CHILD, JSON.stringify({ fixtures: fixturesFile, ...job })], {
      stdio: ['ignore', 'pipe', 'inherit'],
      ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.uid }),
    });
    let buffer = '';
    const events: ChildEvent[] = [];
    let timer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffer += chunk;
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        const event: ChildEvent = JSON.parse(line);
        events.push(event);
        if (event.event === 'started' && options.killAfterMs !== undefined) {
          timer = setTimeout(() => child.kill('SIGKILL'), options.killAfterMs);
        }
      }
    });
    child.on('error', fail);
    child.on('close', (_code, signal) => {
      clearTimeout(timer);
      done({ signal, events });
    });
  });
}

/** What the final paths show, after checking it is one complete, coherent set. */
async function visibleSet(dir: string): Promise<number | 'none'> {
  const read = (name: string) => readFile(join(dir, name), 'utf8').catch(() => undefined);
  const [certificate, key] = [
    await read(CREDENTIAL_FILES.certificate),
    await read(CREDENTIAL_FILES.privateKey),
  ];
  const device = await readDeviceJson(dir);
  if (certificate === undefined) {
    expect({ key, device }).toEqual({ key: undefined, device: undefined });
    return 'none';
  }
  const index = fixtures.findIndex((f) => f.certificatePem === certificate);
  expect(index).toBeGreaterThanOrEqual(0);
  const f = fixture(index);
  expect(device).toEqual(f.device);
  expect(device?.certificateId).toBe(certificateIdOf(certificate));
  expect(key).toBe(f.privateKeyPem);
  if (key !== undefined)
    expect(new X509Certificate(certificate).checkPrivateKey(createPrivateKey(key))).toBe(true);
  return index;
}

/** Entries besides the three final names and the pointer. */
async function extraEntries(dir: string): Promise<string[]> {
  const names: string[] = [...Object.values(CREDENTIAL_FILES), '.current'];
  return (await readdir(dir)).filter((e) => !names.includes(e));
}

/** The next run: it must clean every leftover and leave exactly the live set. */
async function nextRunCleansUp(dir: string, index: number): Promise<void> {
  const f = fixture(index);
  const staged = await stageCredentials(
    dir,
    f.privateKeyPem === undefined ? f : { certificatePem: f.certificatePem, privateKeyPem: f.privateKeyPem },
  );
  await staged.commit(f.device);
  expect(await visibleSet(dir)).toBe(index % fixtures.length);
  expect(await extraEntries(dir)).toHaveLength(1);
}

type From = number | 'none' | 'files';

/** A fresh directory holding set `from`, plain files of an older layout, or nothing. */
async function prepare(dir: string, from: From): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { mode: 0o700 });
  if (from === 'none') return;
  if (from === 'files') {
    const f = fixture(0);
    await writeFile(join(dir, CREDENTIAL_FILES.certificate), f.certificatePem, { mode: 0o644 });
    await writeFile(join(dir, CREDENTIAL_FILES.privateKey), f.privateKeyPem ?? '', { mode: 0o644 });
    await writeFile(join(dir, CREDENTIAL_FILES.deviceJson), JSON.stringify(f.device), { mode: 0o644 });
    return;
  }
  await nextRunCleansUp(dir, from);
}

/** The integers from `first` to `last`, both included. */
function range(first: number, last: number): number[] {
  return Array.from({ length: Math.max(0, last - first + 1) }, (_, i) => first + i);
}

/** `work` over `items`, three at a time (each runs a child process); results in input order. */
async function pool<T, R>(items: readonly T[], work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) {
      const item = items[i];
      if (item !== undefined) results[i] = await work(item);
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  return results;
}

/** A small seeded PRNG (mulberry32): the same kill delays on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('a writer killed with SIGKILL', () => {
  it('at 24 random moments leaves the old or the new complete set, and the next run cleans up', async () => {
    const next = random(20_250_601);
    const dir = join(base, 'random');
    for (let trial = 0; trial < 24; trial += 1) {
      const start = trial * 7;
      const { signal, events } = await runChild({ dir, mode: 'loop', start }, { killAfterMs: next() * 40 });
      expect(signal).toBe('SIGKILL');
      const last = events.filter((e) => e.event === 'saved').at(-1)?.index;
      const visible = await visibleSet(dir);
      // The set last reported saved, or the one being written when the kill came; before the first
      // save, what the previous trial's next run left (set start + 3 - 7) or the first set of this one.
      const allowed: (number | 'none')[] =
        last === undefined
          ? [(start - 4 + fixtures.length * 2) % fixtures.length, start % fixtures.length]
          : [last, (last + 1) % fixtures.length];
      if (trial === 0 && last === undefined) allowed.push('none');
      expect(allowed).toContain(visible);
      await nextRunCleansUp(dir, start + 3);
    }
  }, 120_000);

  const scenarios: { name: string; from: From; to: number; sweep: 'every write' | 'commit' }[] = [
    { name: 'over a set with a key', from: 0, to: 1, sweep: 'every write' },
    { name: 'over plain files of an older layout (key 0644)', from: 'files', to: 1, sweep: 'commit' },
    { name: 'into an empty directory', from: 'none', to: 0, sweep: 'commit' },
    { name: 'with a keyless set over a keyed one', from: 1, to: 2, sweep: 'commit' },
    { name: 'with a keyed set over a keyless one', from: 2, to: 3, sweep: 'commit' },
  ];

  // Staging is the same in every scenario, so the first sweeps every write and the others the commit
  // phase, where they differ.
  it.each(scenarios)(
    'just before each write, $name: the old set, then the new set, never a mix',
    async ({ from, to, sweep }) => {
      const dir = join(base, `each-${String(from)}-${to}`);
      await prepare(dir, from);
      const { events } = await runChild({ dir, mode: 'once', start: to });
      const writes = events.at(-1)?.writes ?? 0;
      const stagedAt = events.find((e) => e.event === 'staged')?.writes ?? 0;
      expect(stagedAt).toBeGreaterThan(5);
      expect(writes).toBeGreaterThan(stagedAt);
      const old = from === 'files' ? 0 : from;
      const seen = await pool(range(sweep === 'every write' ? 1 : stagedAt, writes), async (k) => {
        const trialDir = `${dir}-${k}`;
        await prepare(trialDir, from);
        const { signal } = await runChild({ dir: trialDir, mode: 'once', start: to, crashAt: k });
        expect(signal).toBe('SIGKILL');
        const visible = await visibleSet(trialDir);
        expect([old, to]).toContain(visible);
        await nextRunCleansUp(trialDir, to + 1);
        await rm(trialDir, { recursive: true });
        return visible;
      });
      // One switch point: the old set up to some write, the new set from the next write on.
      const firstNew = seen.indexOf(to);
      expect(firstNew).toBeGreaterThan(0);
      expect(seen.slice(0, firstNew).every((v) => v === old)).toBe(true);
      expect(seen.slice(firstNew).every((v) => v === to)).toBe(true);
    },
    120_000,
  );
});

describe('a write that fails', () => {
  it('with ENOSPC at any call → PERSIST_FAILED or saved, never a partial set; the next run cleans up', async () => {
    const dir = join(base, 'enospc');
    await prepare(dir, 0);
    const { events } = await runChild({ dir, mode: 'once', start: 1 });
    const calls = events.at(-1)?.calls ?? 0;
    expect(calls).toBeGreaterThan(20);
    const { events: trials } = await runChild({
      dir,
      mode: 'fail-sweep',
      from: 0,
      start: 1,
      failFrom: 1,
      failTo: calls,
    });
    let failures = 0;
    for (let k = 1; k <= calls; k += 1) {
      const trialDir = `${dir}-${k}`;
      const outcome = trials.find((e) => e.k === k);
      const visible = await visibleSet(trialDir);
      if (outcome?.event === 'saved') {
        expect(visible).toBe(1);
      } else {
        failures += 1;
        expect(outcome).toMatchObject({ event: 'failed', code: 'PERSIST_FAILED', errorCode: 'ENOSPC' });
        expect(outcome?.message).toContain('free some space');
        expect(outcome?.message).not.toContain('BEGIN');
        expect([0, 1]).toContain(visible);
        // A failure while staging is found before RegisterThing would be sent: the old set is intact.
        if (outcome?.message?.includes('write the new credentials')) expect(visible).toBe(0);
      }
      await nextRunCleansUp(trialDir, 3);
    }
    expect(failures).toBeGreaterThan(10);
  }, 120_000);

  it('with a real EACCES → PERSIST_FAILED saying what to do (as root too: the writer runs as nobody)', async () => {
    const dir = join(base, 'not-writable');
    await mkdir(dir, { mode: 0o755 });
    const asRoot = process.getuid?.() === 0;
    if (!asRoot) await chmod(dir, 0o555);
    // The credentials directory must be made in a directory this writer may not write to. (A directory
    // that exists but belongs to another user is refused before any write; see provision-existing.)
    const out = join(dir, 'credentials');
    const { events } = await runChild({ dir: out, mode: 'once', start: 0 }, asRoot ? { uid: 65_534 } : {});
    const failed = events.find((e) => e.event === 'failed');
    expect(failed).toMatchObject({ code: 'PERSIST_FAILED', errorCode: 'EACCES' });
    expect(failed?.message).toContain('permissions');
    expect(failed?.message).not.toContain('BEGIN');
    expect(await readdir(dir)).toEqual([]);
  });
});
