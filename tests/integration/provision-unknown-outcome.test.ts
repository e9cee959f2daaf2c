/**
 * provision() never throws away a key whose certificate may be active: RegisterThing's answer late or
 * lost, the connection dropped after it, an abort during it, a save that fails after it, and a process
 * killed between it and the commit. In every case the simulator's registry must agree with the result:
 * each ACTIVE certificate made by the test is either the result's or listed in abandonedCertificateIds.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from '@jest/globals';
import { provision } from '../../src/provision/provision.js';
import type { ProgressEvent, ProvisionedDevice } from '../../src/provision/types.js';
import type { Simulator } from '../../src/simulator/index.js';
import { claimOptions, FACTORY_TEMPLATE, simulatorForFile } from '../helpers/provision-fixtures.js';
import { certificateIdOf } from '../helpers/x509.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CHILD = join(ROOT, 'tests/helpers/provision-child.mjs');

let sim: Simulator;
const { outDir } = simulatorForFile(
  'unknown-outcome-',
  {
    serverKeyType: 'ec-p256',
    templates: {
      DemoTemplate: FACTORY_TEMPLATE,
    },
  },
  (started) => {
    sim = started;
  },
);

/** Certificates issued since `before` (a count of sim.certificates()) that are ACTIVE. */
function activeSince(before: number): string[] {
  return sim
    .certificates()
    .slice(before)
    .filter((c) => c.status === 'ACTIVE')
    .map((c) => c.certificateId);
}

/** Every ACTIVE certificate made since `before` is the result's or reported as abandoned. */
function expectRegistryAgrees(before: number, device: ProvisionedDevice): void {
  const accounted = new Set([device.certificateId, ...device.abandonedCertificateIds]);
  for (const id of activeSince(before)) expect(accounted).toContain(id);
  expect(activeSince(before)).toContain(device.certificateId);
}

/** What the final paths of `dir` hold: the certificate's id, and whether the key file is there. */
async function finalSet(dir: string): Promise<{ certificateId: string; hasKey: boolean }> {
  const pem = await readFile(join(dir, 'certificate.pem.crt'), 'utf8');
  return { certificateId: certificateIdOf(pem), hasKey: existsSync(join(dir, 'private.pem.key')) };
}

function publishedRequests(): number {
  return sim.requests().filter((e) => e.type === 'publish' && e.kind === 'request').length;
}

describe('RegisterThing with an unknown outcome', () => {
  it.each(['server', 'generate'] as const)(
    'a late answer: retries with the same token, then starts over and reports the first certificate (%s keys)',
    async (keys) => {
      const before = sim.certificates().length;
      // The service registers at once but answers after the deadline; the retry's token is then used up.
      sim.faults.script('RegisterThing', { type: 'delay', ms: 1_500 });
      const events: ProgressEvent[] = [];
      const dir = await outDir();
      const device = await provision({
        ...claimOptions(sim),
        templateName: 'DemoTemplate',
        parameters: { SerialNumber: `late-${keys}` },
        keys,
        timeoutMs: 500,
        retry: { baseDelayMs: 1 },
        outDir: dir,
        onProgress: (e) => events.push(e),
      });
      const first = sim.certificates()[before]?.certificateId;
      expect(first).toBeDefined();
      expect(device.certificateId).not.toBe(first);
      expect(device.abandonedCertificateIds).toEqual([first]);
      expect(events).toContainEqual({ step: 'abandoned', certificateId: first, reason: expect.any(String) });
      expect(await finalSet(dir)).toEqual({ certificateId: device.certificateId, hasKey: true });
      expectRegistryAgrees(before, device);
      const rejected = sim
        .requests()
        .filter((e) => e.type === 'answer' && e.errorCode === 'InvalidCertificateOwnershipToken');
      expect(rejected.length).toBeGreaterThan(0);
    },
  );

  it('a connection dropped before RegisterThing ran: the same token on a fresh connection completes', async () => {
    const before = sim.certificates().length;
    sim.faults.script('RegisterThing', { type: 'disconnect' });
    const device = await provision({
      ...claimOptions(sim),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'dropped-early' },
      retry: { baseDelayMs: 1 },
    });
    expect(device.certificateId).toBe(sim.certificates()[before]?.certificateId);
    expect(device.abandonedCertificateIds).toEqual([]);
    expectRegistryAgrees(before, device);
  });

  it('a connection dropped after RegisterThing ran: starts over and reports the first certificate', async () => {
    const before = sim.certificates().length;
    sim.faults.script('RegisterThing', { type: 'runThenDisconnect' });
    const device = await provision({
      ...claimOptions(sim),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'dropped' },
      retry: { baseDelayMs: 1 },
    });
    const first = sim.certificates()[before]?.certificateId;
    expect(device.abandonedCertificateIds).toEqual([first]);
    expect(device.privateKey).toBeDefined();
    expectRegistryAgrees(before, device);
  });

  it('a successful run reports no abandoned certificate', async () => {
    const device = await provision({
      ...claimOptions(sim),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'plain' },
    });
    expect(device.abandonedCertificateIds).toEqual([]);
  });

  it('an abort during RegisterThing keeps the staged set; the next run finishes and reports it', async () => {
    const before = sim.certificates().length;
    sim.faults.script('RegisterThing', { type: 'delay', ms: 60_000 });
    const dir = await outDir();
    const controller = new AbortController();
    const onRequest = (entry: { operation?: string; kind?: string; type: string }) => {
      if (entry.type === 'publish' && entry.kind === 'request' && entry.operation === 'RegisterThing') {
        controller.abort('operator stop');
      }
    };
    sim.on('request', onRequest);
    const options = {
      ...claimOptions(sim),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'aborted' },
      retry: { baseDelayMs: 1 },
      outDir: dir,
    };
    try {
      const error: unknown = await provision({ ...options, signal: controller.signal }).catch(
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: 'ABORTED' });
      const first = sim.certificates()[before]?.certificateId ?? '';
      expect(String(error)).toContain(first);
    } finally {
      sim.off('request', onRequest);
    }
    const first = sim.certificates()[before]?.certificateId;
    // The key of a certificate that may be active is still on disk, in a staged set.
    const staged = (await readdir(dir)).filter((name) => name.startsWith('.set-'));
    expect(staged).toHaveLength(1);
    sim.faults.clear();
    const events: ProgressEvent[] = [];
    const device = await provision({ ...options, onProgress: (e) => events.push(e) });
    expect(events[0]).toEqual({ step: 'resuming', certificateId: first, state: 'issued' });
    expect(device.abandonedCertificateIds).toEqual([first]);
    expectRegistryAgrees(before, device);
    expect((await readdir(dir)).filter((name) => name.startsWith('.set-'))).toHaveLength(1);
  });
});

describe('a save that fails after RegisterThing', () => {
  it('is retried, and succeeds when the problem goes away', async () => {
    const dir = await outDir();
    const events: ProgressEvent[] = [];
    const device = await provision({
      ...claimOptions(sim),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'save-retried' },
      retry: { baseDelayMs: 1 },
      outDir: dir,
      onProgress: (e) => {
        events.push(e);
        // A directory where device.json belongs makes the switch fail; it is gone before the retry.
        if (e.step === 'registered') void mkdir(join(dir, 'device.json'));
        if (e.step === 'retrying' && e.operation === 'save')
          void rm(join(dir, 'device.json'), { recursive: true });
      },
    });
    expect(events.filter((e) => e.step === 'retrying').map((e) => 'operation' in e && e.operation)).toEqual([
      'save',
    ]);
    expect(await finalSet(dir)).toEqual({ certificateId: device.certificateId, hasKey: true });
  });

  it('fails PERSIST_FAILED naming certificate and thing; the next run commits it without traffic', async () => {
    const before = sim.certificates().length;
    const dir = await outDir();
    const options = {
      ...claimOptions(sim),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'save-failed' },
      retry: { baseDelayMs: 1 },
      outDir: dir,
    };
    const error: unknown = await provision({
      ...options,
      onProgress: (e) => {
        if (e.step === 'registered') void mkdir(join(dir, 'device.json'));
      },
    }).catch((e: unknown) => e);
    const issued = sim.certificates()[before];
    expect(issued?.status).toBe('ACTIVE');
    expect(error).toMatchObject({ code: 'PERSIST_FAILED' });
    expect(String(error)).toContain(issued?.certificateId ?? '?');
    expect(String(error)).toContain('thing save-failed');
    expect(String(error)).not.toMatch(/PRIVATE KEY|BEGIN/);

    await rm(join(dir, 'device.json'), { recursive: true });
    const traffic = sim.requests().length;
    const device = await provision(options);
    expect(sim.requests()).toHaveLength(traffic);
    expect(device).toMatchObject({ certificateId: issued?.certificateId, thingName: 'save-failed' });
    expect(device.abandonedCertificateIds).toEqual([]);
    expect(await finalSet(dir)).toEqual({ certificateId: issued?.certificateId, hasKey: true });
    expectRegistryAgrees(before, device);
  });
});

/** Run the child provisioning `serialNumber` into `dir` until it reaches `step`, and SIGKILL it there. */
async function killAt(dir: string, serialNumber: string, step: string): Promise<void> {
  const job = JSON.stringify({ outDir: dir, ...claimOptions(sim), serialNumber, hangAt: step });
  const child = spawn(process.execPath, [CHILD, job], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  for await (const line of createInterface({ input: child.stdout })) {
    const event: unknown = JSON.parse(line);
    if (typeof event === 'object' && event !== null && 'step' in event && event.step === step) {
      child.kill('SIGKILL');
      break;
    }
  }
  await exited;
}

describe('a process killed before the commit', () => {
  it('after staging: the next run sends RegisterThing with the kept token and keeps that certificate', async () => {
    const before = sim.certificates().length;
    const dir = await outDir();
    await killAt(dir, 'killed-staged', 'staged');
    const issued = sim.certificates()[before];
    expect(issued?.status).toBe('PENDING_ACTIVATION');
    const events: ProgressEvent[] = [];
    const device = await provision({
      ...claimOptions(sim),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'killed-staged' },
      outDir: dir,
      onProgress: (e) => events.push(e),
    });
    expect(events[0]).toEqual({ step: 'resuming', certificateId: issued?.certificateId, state: 'issued' });
    expect(device).toMatchObject({ certificateId: issued?.certificateId, abandonedCertificateIds: [] });
    expect(sim.certificates()).toHaveLength(before + 1);
    expectRegistryAgrees(before, device);
  }, 30_000);

  it('after staging, then a run for another device: the set is abandoned and reported without using it', async () => {
    const before = sim.certificates().length;
    const dir = await outDir();
    await killAt(dir, 'killed-first', 'staged');
    const issued = sim.certificates()[before]?.certificateId;
    const device = await provision({
      ...claimOptions(sim),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'killed-second' },
      outDir: dir,
    });
    expect(device.abandonedCertificateIds).toEqual([issued]);
    expect(device.thingName).toBe('killed-second');
    expect(sim.certificates().find((c) => c.certificateId === issued)?.status).toBe('PENDING_ACTIVATION');
    expect((await readdir(dir)).filter((name) => name.startsWith('.set-'))).toHaveLength(1);
  }, 30_000);

  it('between RegisterThing and the commit: the next run commits the registered set without traffic', async () => {
    const before = sim.certificates().length;
    const dir = await outDir();
    await killAt(dir, 'killed', 'registered');
    const registered = sim.certificates()[before];
    expect(registered?.status).toBe('ACTIVE');
    expect(existsSync(join(dir, 'device.json'))).toBe(false);

    const published = publishedRequests();
    const events: ProgressEvent[] = [];
    const device = await provision({
      ...claimOptions(sim),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'killed' },
      outDir: dir,
      onProgress: (e) => events.push(e),
    });
    expect(publishedRequests()).toBe(published);
    expect(events.map((e) => e.step)).toEqual(['resuming', 'saved']);
    expect(device).toMatchObject({ certificateId: registered?.certificateId, thingName: 'killed' });
    expect(await finalSet(dir)).toEqual({ certificateId: registered?.certificateId, hasKey: true });
    expectRegistryAgrees(before, device);
    // The staged set's token never reaches the live set.
    const live = await readdir(join(dir, '.current'));
    expect(live.sort()).toEqual(['certificate.pem.crt', 'device.json', 'private.pem.key']);
  }, 30_000);
});
