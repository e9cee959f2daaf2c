/**
 * rotate() against the simulator over mutual TLS: a provisioned device replaces its own certificate.
 * The old set stays live and usable until the new certificate is registered and has connected; whatever
 * goes wrong, every ACTIVE certificate in the registry is the old one, the new one, or reported abandoned.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from '@jest/globals';
import { readCurrentCredentials } from '../../src/device/credentials.js';
import { hasUnfinishedSets } from '../../src/device/unfinished-sets.js';
import { provision } from '../../src/provision/provision.js';
import { type RotatedDevice, rotate } from '../../src/provision/rotate.js';
import type { ProgressEvent } from '../../src/provision/types.js';
import { type Simulator, startSimulator } from '../../src/simulator/index.js';
import { closeClients } from '../helpers/mqtt.js';
import {
  claimOptions,
  FACTORY_TEMPLATE,
  publicKeyOf,
  simulatorForFile,
  tempDir,
} from '../helpers/provision-fixtures.js';
import { closedByServer, connectOutcome, connectTo } from '../helpers/sim-mqtt.js';
import { certificateIdOf } from '../helpers/x509.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CHILD = join(ROOT, 'tests/helpers/rotate-child.mjs');

let sim: Simulator;
const hookCalls: Array<{ clientId: string; caller: string; thing: string | undefined }> = [];
const { cleanups, outDir } = simulatorForFile(
  'rotate-',
  {
    serverKeyType: 'ec-p256',
    templates: {
      DemoTemplate: FACTORY_TEMPLATE,
      // The rotation template: the thing is the caller's own, as the hook checks.
      RotationTemplate: {
        thingName: '{{ThingName}}',
        requiredParameters: ['ThingName'],
        deviceConfiguration: { Rotated: 'yes' },
        preProvisioningHook: ({ clientId, claimCertificateId, parameters }) => {
          const thing = sim.things().find((t) => t.thingName === parameters.ThingName);
          hookCalls.push({ clientId, caller: claimCertificateId, thing: thing?.thingName });
          const own = thing !== undefined && clientId === thing.thingName;
          return { allowProvisioning: own && thing.certificateIds.includes(claimCertificateId) };
        },
      },
      // Registers the new certificate INACTIVE: it can never connect, so verification fails.
      InactiveRotation: {
        thingName: '{{ThingName}}',
        requiredParameters: ['ThingName'],
        certificateStatus: 'INACTIVE',
      },
    },
  },
  (started) => {
    sim = started;
  },
);

/** A device provisioned into a fresh directory (key made on the device). */
async function provisioned(serial: string): Promise<{ dir: string; certificateId: string; before: number }> {
  const before = sim.certificates().length;
  const dir = await outDir();
  const device = await provision({
    ...claimOptions(sim),
    templateName: 'DemoTemplate',
    parameters: { SerialNumber: serial },
    keys: 'generate',
    outDir: dir,
  });
  return { dir, certificateId: device.certificateId, before };
}

function rotationOptions(dir: string, thingName: string) {
  return {
    outDir: dir,
    caCertificate: sim.caCertificate,
    templateName: 'RotationTemplate',
    parameters: { ThingName: thingName },
  };
}

/** What the final paths of `dir` show: certificate id, the key, and device.json. */
async function live(dir: string) {
  const { certificatePem, privateKeyPem, device } = await readCurrentCredentials(dir);
  if (
    certificatePem === undefined ||
    privateKeyPem === undefined ||
    device === undefined ||
    device === null
  ) {
    throw new Error(`${dir} holds no complete set`);
  }
  return { certificateId: certificateIdOf(certificatePem), certificatePem, privateKeyPem, device };
}

/** The live set of `dir` connects as its thing. */
async function liveSetConnects(dir: string): Promise<'connected' | number | string> {
  const set = await live(dir);
  return connectOutcome(
    sim,
    { cert: set.certificatePem, key: set.privateKeyPem },
    { clientId: set.device.thingName ?? '' },
  );
}

/**
 * Every ACTIVE certificate issued since the device was provisioned (`before`, a count of
 * sim.certificates(), taken just before) is one of `allowed`: the old one, the new one, the abandoned ones.
 */
function expectOnlyActive(before: number, allowed: ReadonlyArray<string>): void {
  const active = sim
    .certificates()
    .slice(before)
    .filter((c) => c.status === 'ACTIVE')
    .map((c) => c.certificateId);
  for (const id of active) expect(allowed).toContain(id);
}

describe('rotate()', () => {
  it.each([
    ['generate', 'generate'],
    ['ec-p384', { generate: 'ec-p384' }],
    ['rsa-2048', { generate: 'rsa-2048' }],
    ['server', 'server'],
  ] as const)(
    'replaces the certificate with keys %s: new set live, both certificates on the thing',
    async (name, keys) => {
      const thing = `rot-keys-${name}`;
      const { dir, certificateId: oldId, before } = await provisioned(thing);
      const oldKey = (await live(dir)).privateKeyPem;
      const events: ProgressEvent[] = [];
      const rotated = await rotate({
        ...rotationOptions(dir, thing),
        keys,
        onProgress: (e) => events.push(e),
      });

      expect(rotated).toMatchObject({
        thingName: thing,
        previousCertificateId: oldId,
        verified: true,
        abandonedCertificateIds: [],
        deviceConfiguration: { Fleet: 'factory', Rotated: 'yes' },
      });
      expect(rotated.certificateId).not.toBe(oldId);
      const now = await live(dir);
      expect(now.certificateId).toBe(rotated.certificateId);
      expect(now.privateKeyPem).not.toBe(oldKey);
      expect(publicKeyOf(now.certificatePem)).toEqual(publicKeyOf(rotated.certificatePem));
      // device.json still describes the provisioned device, so provision() reuses it on the next boot.
      expect(now.device).toMatchObject({
        thingName: thing,
        certificateId: rotated.certificateId,
        templateName: 'DemoTemplate',
        previousCertificateId: oldId,
      });
      const reused = await provision({
        ...claimOptions(sim),
        templateName: 'DemoTemplate',
        parameters: { SerialNumber: thing },
        keys: 'generate',
        outDir: dir,
      });
      expect(reused).toMatchObject({ reused: true, certificateId: rotated.certificateId });

      const record = sim.things().find((t) => t.thingName === thing);
      expect(record?.certificateIds).toEqual([oldId, rotated.certificateId]);
      expect(hookCalls.at(-1)).toEqual({ clientId: thing, caller: oldId, thing });
      // The connection used the old certificate with the thing name as client id.
      const connect = sim.requests(thing).find((e) => e.type === 'connect');
      expect(connect).toMatchObject({ certificateId: oldId, allowed: true, role: 'device' });
      expect(events.map((e) => e.step)).toEqual(
        expect.arrayContaining(['connecting', 'certificate', 'staged', 'registered', 'verified', 'saved']),
      );
      // The switch happens only after the new certificate connected.
      const steps = events.map((e) => e.step);
      expect(steps.indexOf('verified')).toBeLessThan(steps.indexOf('saved'));
      expect(await liveSetConnects(dir)).toBe('connected');
      expect((await readdir(dir)).filter((n) => n.startsWith('.set-'))).toHaveLength(1);
      expectOnlyActive(before, [oldId, rotated.certificateId]);
    },
    60_000,
  );

  it('after rotation and deactivation, the old certificate cannot connect and the new one can', async () => {
    const thing = 'rot-deactivate';
    const { dir } = await provisioned(thing);
    const old = await live(dir);
    const open = await connectTo(
      sim,
      { cert: old.certificatePem, key: old.privateKeyPem },
      { clientId: 'watcher' },
    );
    const rotated = await rotate(rotationOptions(dir, thing));

    const closed = closedByServer(open);
    sim.deactivateCertificate(rotated.previousCertificateId);
    await closed;
    expect(open.connected).toBe(false);
    await closeClients(open);
    expect(sim.certificates().find((c) => c.certificateId === old.certificateId)?.status).toBe('INACTIVE');
    expect(
      await connectOutcome(sim, { cert: old.certificatePem, key: old.privateKeyPem }, { clientId: thing }),
    ).toBe(5);
    expect(await liveSetConnects(dir)).toBe('connected');
    expect(() => sim.deactivateCertificate('0'.repeat(64))).toThrow(/never issued/);
  }, 60_000);

  it('a caller that is not the thing is refused by the hook: REJECTED, the old set stays live', async () => {
    const thing = 'rot-other';
    const { dir, certificateId: oldId, before } = await provisioned(thing);
    const victim = await provisioned('rot-victim');
    const issued = sim.certificates().length;
    const error = await rotate({ ...rotationOptions(dir, 'rot-victim'), retry: false }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'REJECTED', statusCode: 403, errorCode: 'AccessDenied' });
    expect((await live(dir)).certificateId).toBe(oldId);
    expect(sim.certificates()[issued]?.status).toBe('PENDING_ACTIVATION');
    expect(sim.things().find((t) => t.thingName === 'rot-victim')?.certificateIds).toHaveLength(1);
    expect(await liveSetConnects(dir)).toBe('connected');
    expect((await readdir(dir)).filter((n) => n.startsWith('.set-'))).toHaveLength(1);
    expectOnlyActive(before, [oldId, victim.certificateId]);
  }, 60_000);

  it('RegisterThing rejected (400): the old set stays live and the next run rotates', async () => {
    const thing = 'rot-rejected';
    const { dir, certificateId: oldId, before } = await provisioned(thing);
    sim.faults.script('RegisterThing', { type: 'reject', statusCode: 400, errorCode: 'InvalidParameters' });
    const error = await rotate({ ...rotationOptions(dir, thing), retry: false }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'REJECTED', statusCode: 400 });
    expect((await live(dir)).certificateId).toBe(oldId);
    expect(await liveSetConnects(dir)).toBe('connected');
    const rotated = await rotate(rotationOptions(dir, thing));
    expect(rotated.previousCertificateId).toBe(oldId);
    expect(rotated.abandonedCertificateIds).toEqual([]);
    expectOnlyActive(before, [oldId, rotated.certificateId]);
  }, 60_000);

  it('retries by status code: 503 and 429 are retried, the rotation completes with one certificate', async () => {
    const thing = 'rot-retried';
    const { dir, certificateId: oldId, before } = await provisioned(thing);
    sim.faults.script('RegisterThing', { type: 'reject', statusCode: 503, errorCode: 'ServiceUnavailable' });
    sim.faults.script('CreateCertificateFromCsr', {
      type: 'reject',
      statusCode: 429,
      errorCode: 'ThrottlingException',
    });
    const events: ProgressEvent[] = [];
    const rotated = await rotate({
      ...rotationOptions(dir, thing),
      retry: { baseDelayMs: 1 },
      onProgress: (e) => events.push(e),
    });
    expect(events.filter((e) => e.step === 'retrying').map((e) => 'operation' in e && e.operation)).toEqual([
      'certificate',
      'RegisterThing',
    ]);
    expect(rotated.abandonedCertificateIds).toEqual([]);
    expect(
      sim
        .certificates()
        .slice(before)
        .map((c) => c.certificateId),
    ).toEqual([oldId, rotated.certificateId]);
  }, 60_000);

  it('RegisterThing times out: the old set stays live; the next run finishes the staged certificate', async () => {
    const thing = 'rot-timeout';
    const { dir, certificateId: oldId, before } = await provisioned(thing);
    const issued = sim.certificates().length;
    sim.faults.script('RegisterThing', { type: 'silent' });
    const error = await rotate({ ...rotationOptions(dir, thing), retry: false, timeoutMs: 1_000 }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'TIMEOUT' });
    expect(String(error)).toContain('rotate() again');
    const staged = sim.certificates()[issued]?.certificateId;
    expect((await live(dir)).certificateId).toBe(oldId);
    expect(await liveSetConnects(dir)).toBe('connected');

    const events: ProgressEvent[] = [];
    const rotated = await rotate({ ...rotationOptions(dir, thing), onProgress: (e) => events.push(e) });
    expect(events[0]).toEqual({ step: 'resuming', certificateId: staged, state: 'issued' });
    expect(rotated).toMatchObject({ certificateId: staged, previousCertificateId: oldId, verified: true });
    expectOnlyActive(before, [oldId, rotated.certificateId]);
  }, 60_000);

  it('verification fails (the new certificate cannot connect): old set live, new one abandoned and reported', async () => {
    const thing = 'rot-verify';
    const { dir, certificateId: oldId, before } = await provisioned(thing);
    const issued = sim.certificates().length;
    const events: ProgressEvent[] = [];
    const error = await rotate({
      ...rotationOptions(dir, thing),
      templateName: 'InactiveRotation',
      onProgress: (e) => events.push(e),
    }).catch((e: unknown) => e);
    const refused = sim.certificates()[issued]?.certificateId ?? '?';
    expect(error).toMatchObject({ code: 'CONNECTION_LOST' });
    expect(String(error)).toContain(`deactivate ${refused}`);
    expect(events).toContainEqual({ step: 'verified', accepted: false });
    expect(events).toContainEqual(expect.objectContaining({ step: 'abandoned', certificateId: refused }));
    expect((await live(dir)).certificateId).toBe(oldId);
    expect(await liveSetConnects(dir)).toBe('connected');

    // The next rotation reports it, so an operator can deactivate it.
    const rotated = await rotate(rotationOptions(dir, thing));
    expect(rotated.abandonedCertificateIds).toEqual([refused]);
    expectOnlyActive(before, [oldId, rotated.certificateId, ...rotated.abandonedCertificateIds]);
  }, 60_000);

  it('a template that attaches the certificate to another thing: INVALID_RESPONSE, old set live, reported', async () => {
    const thing = 'rot-elsewhere';
    const { dir, certificateId: oldId, before } = await provisioned(thing);
    const issued = sim.certificates().length;
    const error = await rotate({
      ...rotationOptions(dir, thing),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'rot-elsewhere-2' },
    }).catch((e: unknown) => e);
    const stray = sim.certificates()[issued]?.certificateId ?? '?';
    expect(error).toMatchObject({ code: 'INVALID_RESPONSE', operation: 'RegisterThing' });
    expect(String(error)).toContain(`deactivate ${stray}`);
    expect((await live(dir)).certificateId).toBe(oldId);
    expect((await live(dir)).device.thingName).toBe(thing);
    const rotated = await rotate(rotationOptions(dir, thing));
    expect(rotated.abandonedCertificateIds).toEqual([stray]);
    expectOnlyActive(before, [oldId, rotated.certificateId, stray]);
  }, 60_000);

  it('the broker goes away before the check: the old set stays live, the registered set is kept for the next run', async () => {
    const other = await startSimulator({
      serverKeyType: 'ec-p256',
      templates: { DemoTemplate: { thingName: '{{SerialNumber}}', requiredParameters: ['SerialNumber'] } },
    });
    const temp = await tempDir('rotate-gone-');
    cleanups.push(temp.remove);
    const dir = join(temp.path, 'credentials');
    const device = await provision({
      endpoint: other.url,
      claimCertificate: other.claimCertificate,
      claimPrivateKey: other.claimPrivateKey,
      caCertificate: other.caCertificate,
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'rot-gone' },
      keys: 'generate',
      outDir: dir,
    });
    let closing: Promise<void> | undefined;
    const error = await rotate({
      outDir: dir,
      caCertificate: other.caCertificate,
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'rot-gone' },
      retry: false,
      // The listener closes at once: the check's connection finds no one listening.
      onProgress: (e) => {
        if (e.step === 'registered') closing = other.close();
      },
    }).catch((e: unknown) => e);
    await closing;
    expect(error).toMatchObject({ code: 'CONNECTION_LOST' });
    expect(String(error)).toContain('is registered but could not be checked');
    expect((await live(dir)).certificateId).toBe(device.certificateId);
    expect(await hasUnfinishedSets(dir, 'rotate')).toBe(true);
  }, 60_000);

  it('refuses a directory without a complete set, and a CSR, before any traffic', async () => {
    const temp = await tempDir('rotate-empty-');
    cleanups.push(temp.remove);
    const traffic = sim.requests().length;
    await expect(rotate(rotationOptions(temp.path, 'x'))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('there is no device.json'),
    });
    expect(sim.requests()).toHaveLength(traffic);
    const { dir } = await provisioned('rot-args');
    const after = sim.requests().length;
    await expect(
      // @ts-expect-error: a CSR is refused at run time too
      rotate({ ...rotationOptions(dir, 'rot-args'), keys: { csr: '-----BEGIN CERTIFICATE REQUEST-----' } }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      rotate({ ...rotationOptions(dir, 'rot-args'), templateName: 'bad name' }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(sim.requests()).toHaveLength(after);
  }, 60_000);

  it('an abort during RegisterThing keeps the old set live', async () => {
    const thing = 'rot-abort';
    const { dir, certificateId: oldId, before } = await provisioned(thing);
    sim.faults.script('RegisterThing', { type: 'silent' });
    const controller = new AbortController();
    const error = await rotate({
      ...rotationOptions(dir, thing),
      signal: controller.signal,
      onProgress: (e) => {
        if (e.step === 'staged') setImmediate(() => controller.abort(new Error('stop')));
      },
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ABORTED' });
    expect((await live(dir)).certificateId).toBe(oldId);
    expect(await liveSetConnects(dir)).toBe('connected');
    const rotated = await rotate(rotationOptions(dir, thing));
    expectOnlyActive(before, [oldId, rotated.certificateId, ...rotated.abandonedCertificateIds]);
  }, 60_000);
});

/** Run a child rotating `dir` until it reaches `step`, and SIGKILL it there. */
async function killAt(dir: string, thingName: string, step: string): Promise<void> {
  const job = JSON.stringify({ ...rotationOptions(dir, thingName), hangAt: step });
  const child = spawn(process.execPath, [CHILD, job], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  let seen = false;
  for await (const line of createInterface({ input: child.stdout })) {
    const event: unknown = JSON.parse(line);
    if (typeof event === 'object' && event !== null && 'step' in event && event.step === step) {
      seen = true;
      child.kill('SIGKILL');
      break;
    }
  }
  await exited;
  if (!seen) throw new Error(`the child ended before ${step}`);
}

describe('a rotation killed at each step, then run again', () => {
  it.each(['key', 'connecting', 'subscribed', 'certificate', 'staged', 'registered', 'verified'])(
    'killed at %s: the old set stays live; the rerun completes the rotation',
    async (step) => {
      const thing = `rot-kill-${step}`;
      const { dir, certificateId: oldId, before } = await provisioned(thing);
      await killAt(dir, thing, step);
      expect((await live(dir)).certificateId).toBe(oldId);
      expect(await liveSetConnects(dir)).toBe('connected');

      const rotated: RotatedDevice = await rotate(rotationOptions(dir, thing));
      expect(rotated.previousCertificateId).toBe(oldId);
      expect((await live(dir)).certificateId).toBe(rotated.certificateId);
      expect(await liveSetConnects(dir)).toBe('connected');
      expectOnlyActive(before, [oldId, rotated.certificateId, ...rotated.abandonedCertificateIds]);
      // A rerun after the registration finishes that certificate rather than making another.
      if (step === 'registered' || step === 'verified') {
        expect(rotated.abandonedCertificateIds).toEqual([]);
        const mine = sim.certificates().filter((c) => c.thingName === thing);
        expect(mine.map((c) => c.certificateId)).toEqual([oldId, rotated.certificateId]);
      }
      expect((await readFile(join(dir, 'device.json'), 'utf8')).includes(rotated.certificateId)).toBe(true);
    },
    60_000,
  );

  it('killed after the switch: the new set is live and a rerun rotates from it', async () => {
    const thing = 'rot-kill-saved';
    const { dir, certificateId: oldId, before } = await provisioned(thing);
    await killAt(dir, thing, 'saved');
    const switched = await live(dir);
    expect(switched.certificateId).not.toBe(oldId);
    expect(switched.device.previousCertificateId).toBe(oldId);
    expect(await liveSetConnects(dir)).toBe('connected');
    expectOnlyActive(before, [oldId, switched.certificateId]);
    const again = await rotate(rotationOptions(dir, thing));
    expect(again.previousCertificateId).toBe(switched.certificateId);
    expect(sim.things().find((t) => t.thingName === thing)?.certificateIds).toEqual([
      oldId,
      switched.certificateId,
      again.certificateId,
    ]);
  }, 60_000);
});
