/**
 * Crash safety for the whole of provision(): a child process provisioning in a loop into one
 * directory is SIGKILLed at a different progress event in each trial. Afterwards the final paths must hold
 * one complete, matching set (or none, before the first success), and the next run must clean up.
 * The child runs the built library (`npm test` builds dist/ first).
 */
import { spawn } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { CREDENTIAL_FILES, readDeviceJson } from '../../src/device/credentials.js';
import { type Simulator, startSimulator } from '../../src/simulator/index.js';
import { claimOptions, tempDir } from '../helpers/provision-fixtures.js';
import { certificateIdOf } from '../helpers/x509.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CHILD = join(ROOT, 'tests/helpers/provision-child.mjs');
const TRIALS = 24;

let dir: { path: string; remove(): Promise<void> };
let out: string;
let sim: Simulator;
let job: string;

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist/index.js')))
    throw new Error('dist/ is missing: run `npm run build` (`npm test` does).');
  dir = await tempDir('provision-crash-');
  out = join(dir.path, 'credentials');
  sim = await startSimulator({ serverKeyType: 'ec-p256' });
  job = JSON.stringify({ outDir: out, ...claimOptions(sim) });
});

afterAll(async () => {
  await sim.close();
  await dir.remove();
});

/** Run the child until its `killAt`-th progress event, then SIGKILL it; resolves when it is gone. */
async function runAndKill(killAt: number): Promise<void> {
  const child = spawn(process.execPath, [CHILD, job], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const event: unknown = JSON.parse(line);
    if (typeof event === 'object' && event !== null && 'n' in event && event.n === killAt) {
      child.kill('SIGKILL');
      break;
    }
  }
  await exited;
}

/** The final paths show one complete set whose parts belong together, or nothing yet. */
async function assertOneCompleteSet(): Promise<'set' | 'none'> {
  const device = await readDeviceJson(out);
  const certPath = join(out, CREDENTIAL_FILES.certificate);
  const keyPath = join(out, CREDENTIAL_FILES.privateKey);
  if (device === undefined) {
    expect(existsSync(certPath)).toBe(false);
    return 'none';
  }
  const certificatePem = await readFile(certPath, 'utf8');
  expect(certificateIdOf(certificatePem)).toBe(device.certificateId);
  const key = createPublicKey(await readFile(keyPath, 'utf8')).export({ type: 'spki', format: 'der' });
  expect(new X509Certificate(certificatePem).publicKey.export({ type: 'spki', format: 'der' })).toEqual(key);
  return 'set';
}

it(`never leaves a partial set when killed at any step (${TRIALS} trials)`, async () => {
  // A child's first device uses a server key (six events: connecting, subscribed, certificate, staged,
  // registered, saved), its second a generated one (seven: key first). Cycling killAt over 1..13 hits
  // every step of both key modes, each more than once.
  const outcomes: string[] = [];
  for (let trial = 1; trial <= TRIALS; trial++) {
    await runAndKill(((trial - 1) % 13) + 1);
    outcomes.push(await assertOneCompleteSet());
  }
  expect(outcomes.filter((o) => o === 'set').length).toBeGreaterThan(0);
  // A run that completes cleans up whatever the killed runs left behind.
  await runAndKill(7);
  const leftovers = (await readdir(out)).filter(
    (name) => name.startsWith('.set-') || name.startsWith('.tmp-'),
  );
  expect(leftovers.length).toBeLessThanOrEqual(2);
  await assertOneCompleteSet();
}, 120_000);
