/**
 * provision() end to end against the simulator over mutual TLS: every key mode in JSON and CBOR, the
 * files, progress, retries, verify, and the failures that must stop it before RegisterThing.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { createCsr, generateKeyPair } from '../../src/device/keys.js';
import { provision } from '../../src/provision/provision.js';
import type { ProgressEvent } from '../../src/provision/types.js';
import { type Simulator, startSimulator } from '../../src/simulator/index.js';
import { claimOptions, publicKeyOf, simulatorForFile, tempDir } from '../helpers/provision-fixtures.js';
import { connectTo } from '../helpers/sim-mqtt.js';

let sim: Simulator;
const { cleanups, outDir } = simulatorForFile(
  'provision-',
  {
    serverKeyType: 'ec-p256',
    templates: {
      DemoTemplate: {
        thingName: 'sensor-{{SerialNumber}}',
        requiredParameters: ['SerialNumber'],
        deviceConfiguration: { Fleet: 'factory' },
      },
      NoThing: { deviceConfiguration: { Mode: 'cert-only' } },
      Inactive: { thingName: 'off-{{SerialNumber}}', certificateStatus: 'INACTIVE' },
    },
  },
  (started) => {
    sim = started;
  },
);

function mode(path: string): Promise<number> {
  return stat(path).then((s) => s.mode & 0o777);
}

/** The operations the simulator saw published, in order, for every client. */
function published(): string[] {
  return sim
    .requests()
    .filter((e) => e.type === 'publish' && e.kind === 'request')
    .map((e) => e.operation ?? '?');
}

describe.each(['json', 'cbor'] as const)('provision() in %s', (format) => {
  it('provisions with a server-made key and writes the files', async () => {
    const dir = await outDir();
    const events: ProgressEvent[] = [];
    const device = await provision({
      ...claimOptions(sim),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: `SN-${format}-1` },
      format,
      outDir: dir,
      onProgress: (e) => events.push(e),
    });
    expect(device.thingName).toBe(`sensor-SN-${format}-1`);
    expect(device.deviceConfiguration).toEqual({ Fleet: 'factory' });
    expect(device.privateKey).toBeDefined();
    expect(publicKeyOf(device.certificatePem)).toEqual(
      createPublicKey(device.privateKey ?? '').export({ type: 'spki', format: 'der' }),
    );
    expect(events.map((e) => e.step)).toEqual([
      'connecting',
      'subscribed',
      'certificate',
      'staged',
      'registered',
      'saved',
    ]);

    const files = device.files;
    expect(files).toBeDefined();
    if (files === undefined) return;
    expect(await readFile(files.certificate, 'utf8')).toBe(device.certificatePem);
    expect(await readFile(files.privateKey ?? '', 'utf8')).toBe(device.privateKey);
    expect(await mode(files.privateKey ?? '')).toBe(0o600);
    expect(await mode(files.certificate)).toBe(0o644);
    expect(await mode(files.deviceJson)).toBe(0o644);
    expect(await mode(dir)).toBe(0o700);
    const json: unknown = JSON.parse(await readFile(files.deviceJson, 'utf8'));
    expect(json).toEqual({
      thingName: `sensor-SN-${format}-1`,
      certificateId: device.certificateId,
      deviceConfiguration: { Fleet: 'factory' },
      templateName: 'DemoTemplate',
      endpoint: sim.url,
      provisionedAt: expect.any(String),
      parametersSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    const registry = sim.certificates().find((c) => c.certificateId === device.certificateId);
    expect(registry).toMatchObject({ status: 'ACTIVE', thingName: `sensor-SN-${format}-1` });
  });

  it.each(['ec-p256', 'ec-p384', 'rsa-2048'] as const)('generates a %s key on the device', async (type) => {
    const before = published().length;
    const device = await provision({
      ...claimOptions(sim),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: `SN-${format}-${type}` },
      keys: { generate: type },
      format,
    });
    expect(published().slice(before)).toEqual(['CreateCertificateFromCsr', 'RegisterThing']);
    const key = createPrivateKey(device.privateKey ?? '');
    expect(publicKeyOf(device.certificatePem)).toEqual(
      createPublicKey(key).export({ type: 'spki', format: 'der' }),
    );
    expect(key.asymmetricKeyType).toBe(type.startsWith('ec') ? 'ec' : 'rsa');
  });

  it("uses the caller's CSR and returns no key", async () => {
    const pair = await generateKeyPair('ec-p256');
    const csr = await createCsr({ keys: pair.keys });
    const dir = await outDir();
    const device = await provision({
      ...claimOptions(sim),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: `SN-${format}-csr` },
      keys: { csr },
      format,
      outDir: dir,
    });
    expect(device.privateKey).toBeUndefined();
    expect(device.files?.privateKey).toBeUndefined();
    expect(publicKeyOf(device.certificatePem)).toEqual(
      createPublicKey(pair.privateKeyPem).export({ type: 'spki', format: 'der' }),
    );
  });
});

describe('provision() steps and outcomes', () => {
  it('leaves thingName out when the template makes no thing', async () => {
    const device = await provision({ ...claimOptions(sim), templateName: 'NoThing' });
    expect(device).not.toHaveProperty('thingName');
    expect(device.deviceConfiguration).toEqual({ Mode: 'cert-only' });
  });

  it('reports key generation and verifies the new certificate', async () => {
    const events: ProgressEvent[] = [];
    const device = await provision({
      ...claimOptions(sim),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'SN-verify' },
      keys: 'generate',
      verify: true,
      onProgress: (e) => events.push(e),
    });
    expect(device.verified).toBe(true);
    expect(events[0]).toEqual({ step: 'key', keyType: 'ec-p256' });
    expect(events.at(-1)).toEqual({ step: 'verified', accepted: true });
    // It connects as the thing, as AWS's recommended device policy requires of the client id.
    const verifying = sim
      .requests()
      .filter((e) => e.type === 'connect' && e.certificateId === device.certificateId);
    expect(verifying.map((e) => e.clientId)).toEqual(['sensor-SN-verify']);
    // The verifying connection presented the new device certificate.
    expect(sim.requests().some((e) => e.type === 'connect' && e.certificateId === device.certificateId)).toBe(
      true,
    );
  });

  it('reports verified: false when the template leaves the certificate INACTIVE', async () => {
    const device = await provision({
      ...claimOptions(sim),
      templateName: 'Inactive',
      parameters: { SerialNumber: 'SN-off' },
      verify: true,
    });
    expect(device.verified).toBe(false);
    expect(sim.certificates().find((c) => c.certificateId === device.certificateId)?.status).toBe('INACTIVE');
  });

  it('retries a 429 on the same connection and succeeds', async () => {
    sim.faults.script('CreateKeysAndCertificate', {
      type: 'reject',
      statusCode: 429,
      errorCode: 'ThrottlingException',
    });
    const events: ProgressEvent[] = [];
    const device = await provision({
      ...claimOptions(sim),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'SN-429' },
      retry: { baseDelayMs: 1 },
      onProgress: (e) => events.push(e),
    });
    expect(device.thingName).toBe('sensor-SN-429');
    const retries = events.filter((e) => e.step === 'retrying');
    expect(retries).toEqual([
      {
        step: 'retrying',
        operation: 'certificate',
        attempt: 2,
        delayMs: expect.any(Number),
        code: 'REJECTED',
      },
    ]);
    expect(events.filter((e) => e.step === 'connecting')).toHaveLength(1);
  });

  it('does not retry a 400', async () => {
    sim.faults.script(
      'RegisterThing',
      { type: 'reject', statusCode: 400, errorCode: 'InvalidParameters' },
      { times: 5 },
    );
    const before = published().length;
    await expect(
      provision({
        ...claimOptions(sim),
        templateName: 'DemoTemplate',
        parameters: { SerialNumber: 'SN-400' },
        retry: { baseDelayMs: 1 },
      }),
    ).rejects.toMatchObject({
      code: 'REJECTED',
      statusCode: 400,
      errorCode: 'InvalidParameters',
      retryable: false,
    });
    expect(published().slice(before)).toEqual(['CreateKeysAndCertificate', 'RegisterThing']);
  });

  it('retries a timeout over a fresh connection and succeeds', async () => {
    sim.faults.script('CreateKeysAndCertificate', { type: 'silent' });
    const events: ProgressEvent[] = [];
    const device = await provision({
      ...claimOptions(sim),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'SN-timeout' },
      timeoutMs: 300,
      retry: { baseDelayMs: 1 },
      onProgress: (e) => events.push(e),
    });
    expect(device.thingName).toBe('sensor-SN-timeout');
    expect(events.filter((e) => e.step === 'retrying')).toEqual([
      {
        step: 'retrying',
        operation: 'certificate',
        attempt: 2,
        delayMs: expect.any(Number),
        code: 'TIMEOUT',
      },
    ]);
    expect(events.filter((e) => e.step === 'connecting').map((e) => 'attempt' in e && e.attempt)).toEqual([
      1, 2,
    ]);
    const asked = sim
      .requests()
      .filter((e) => e.type === 'publish' && e.operation === 'CreateKeysAndCertificate');
    const lastTwo = asked.slice(-2).map((e) => e.clientId);
    expect(new Set(lastTwo).size).toBe(2);
  });

  it('gives up after the bounded number of tries', async () => {
    sim.faults.script(
      'CreateKeysAndCertificate',
      { type: 'reject', statusCode: 503, errorCode: 'ServiceUnavailable' },
      { times: 10 },
    );
    const before = published().length;
    await expect(
      provision({
        ...claimOptions(sim),
        templateName: 'DemoTemplate',
        parameters: { SerialNumber: 'SN-503' },
        retry: { attempts: 3, baseDelayMs: 1 },
      }),
    ).rejects.toMatchObject({ code: 'REJECTED', statusCode: 503, retryable: true });
    expect(published().slice(before)).toEqual(Array(3).fill('CreateKeysAndCertificate'));
  });

  it('fails with PERSIST_FAILED before any traffic when the directory cannot be created', async () => {
    const dir = await tempDir('provision-blocked-');
    cleanups.push(dir.remove);
    const blocker = join(dir.path, 'a-file');
    await writeFile(blocker, 'not a directory');
    const before = sim.requests().length;
    await expect(
      provision({
        ...claimOptions(sim),
        templateName: 'DemoTemplate',
        parameters: { SerialNumber: 'SN-persist' },
        outDir: join(blocker, 'credentials'),
      }),
    ).rejects.toMatchObject({ code: 'PERSIST_FAILED' });
    expect(sim.requests()).toHaveLength(before);
  });

  it('fails with PERSIST_FAILED and sends no RegisterThing when the files cannot be written', async () => {
    const out = await outDir();
    const before = published().length;
    await expect(
      provision({
        ...claimOptions(sim),
        templateName: 'DemoTemplate',
        parameters: { SerialNumber: 'SN-persist-late' },
        outDir: out,
        onProgress: (e) => {
          // The certificate is issued: now a file sits where the directory was.
          if (e.step === 'certificate') {
            renameSync(out, `${out}.moved`);
            writeFileSync(out, 'not a directory');
          }
        },
      }),
    ).rejects.toMatchObject({ code: 'PERSIST_FAILED' });
    expect(published().slice(before)).toEqual(['CreateKeysAndCertificate']);
  });

  it('refuses bad options before any traffic', async () => {
    const before = sim.requests().length;
    await expect(provision({ ...claimOptions(sim), templateName: 'a/b' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(
      provision({ ...claimOptions(sim), templateName: 'T', keys: { generate: 'dsa' as 'ec-p256' } }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      provision({ ...claimOptions(sim), templateName: 'T', parameters: { n: 1 as unknown as string } }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(provision({ templateName: 'T' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      provision({ ...claimOptions(sim), claimPrivateKey: 'not pem', templateName: 'T' }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(sim.requests()).toHaveLength(before);
  });

  it('rejects ABORTED with the reason as cause', async () => {
    sim.faults.script('CreateKeysAndCertificate', { type: 'silent' });
    const controller = new AbortController();
    const pending = provision({
      ...claimOptions(sim),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'SN-abort' },
      signal: controller.signal,
      onProgress: (e) => {
        if (e.step === 'subscribed') setImmediate(() => controller.abort('operator stop'));
      },
    });
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED', cause: 'operator stop' });
  });

  it('rejects ABORTED at once when the signal has already fired', async () => {
    const before = sim.requests().length;
    await expect(
      provision({
        ...claimOptions(sim),
        templateName: 'DemoTemplate',
        signal: AbortSignal.abort('too late'),
      }),
    ).rejects.toMatchObject({ code: 'ABORTED', cause: 'too late' });
    expect(sim.requests()).toHaveLength(before);
  });

  it('refuses a server certificate from an untrusted CA, with no insecure switch and no retry', async () => {
    const other = await startSimulator({ serverKeyType: 'ec-p256' });
    const events: ProgressEvent[] = [];
    try {
      await expect(
        provision({
          ...claimOptions(sim),
          endpoint: other.url,
          templateName: 'DemoTemplate',
          onProgress: (e) => events.push(e),
        }),
      ).rejects.toMatchObject({
        code: 'CONNECTION_LOST',
        retryable: false,
        message: expect.stringContaining('not trusted'),
      });
      expect(events.map((e) => e.step)).toEqual(['connecting']);
      expect(other.requests().filter((e) => e.type === 'connect' && e.allowed === true)).toHaveLength(0);
    } finally {
      await other.close();
    }
  });

  it('puts the key on disk (0600) before RegisterThing is sent', async () => {
    const dir = await outDir();
    let seenAtStaged: { keys: string[]; registerSent: boolean } | undefined;
    const before = published().length;
    await provision({
      ...claimOptions(sim),
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'SN-order' },
      keys: 'generate',
      outDir: dir,
      onProgress: (e) => {
        if (e.step !== 'staged') return;
        const keys = readdirSync(dir)
          .filter((name) => name.startsWith('.set-'))
          .map((name) => join(dir, name, 'private.pem.key'))
          .filter((path) => existsSync(path) && (statSync(path).mode & 0o777) === 0o600);
        seenAtStaged = { keys, registerSent: published().slice(before).includes('RegisterThing') };
      },
    });
    expect(seenAtStaged?.keys.length).toBeGreaterThanOrEqual(1);
    expect(seenAtStaged?.registerSent).toBe(false);
  });

  it('leaves a handed-in client open', async () => {
    const client = await connectTo(sim);
    try {
      const device = await provision({
        client,
        templateName: 'DemoTemplate',
        parameters: { SerialNumber: 'SN-own' },
      });
      expect(device.thingName).toBe('sensor-SN-own');
      expect(client.connected).toBe(true);
      expect(client.listenerCount('message')).toBe(0);
    } finally {
      await client.endAsync();
    }
  });
});
