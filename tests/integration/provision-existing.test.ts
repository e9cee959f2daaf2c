/**
 * provision() and what `outDir` already holds: the directory's mode and owner, a complete matching set
 * reused without traffic, one made for something else refused unless `existing: 'replace'`; and the
 * waits and callbacks that must not break a run (UNSUBACK that never comes, a file step that never
 * returns, a throwing onProgress, an abort during verify).
 */
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, open, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { provision } from '../../src/provision/provision.js';
import type { ProgressEvent } from '../../src/provision/types.js';
import { type Simulator, startSimulator } from '../../src/simulator/index.js';
import { connectClient } from '../helpers/mqtt.js';
import { startMqttProxy } from '../helpers/mqtt-proxy.js';
import { claimOptions, tempDir } from '../helpers/provision-fixtures.js';

const ROOT = resolve(import.meta.dirname, '../..');

let sim: Simulator;
let other: Simulator;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  [sim, other] = await Promise.all([
    startSimulator({ serverKeyType: 'ec-p256' }),
    startSimulator({ serverKeyType: 'ec-p256', tls: false }),
  ]);
});

afterAll(async () => {
  await Promise.all([sim.close(), other.close()]);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function outDir(): Promise<string> {
  const dir = await tempDir('existing-');
  cleanups.push(dir.remove);
  return join(dir.path, 'credentials');
}

const mode = async (path: string) => (await stat(path)).mode & 0o777;
const options = (dir: string, serial = 'SN-existing') => ({
  ...claimOptions(sim),
  templateName: 'DemoTemplate',
  parameters: { SerialNumber: serial },
  outDir: dir,
});

describe('outDir permissions', () => {
  it('tightens an existing 0755 outDir to 0700', async () => {
    const dir = await outDir();
    await mkdir(dir, { mode: 0o755 });
    await chmod(dir, 0o755);
    await provision(options(dir, 'SN-0755'));
    expect(await mode(dir)).toBe(0o700);
  });

  it('creates a missing outDir (and parents) at 0700', async () => {
    const dir = join(await outDir(), 'deeper');
    await provision(options(dir, 'SN-new-dir'));
    expect(await mode(dir)).toBe(0o700);
  });

  it('refuses an outDir owned by another user with PERSIST_FAILED, before any traffic', async () => {
    let dir = '/';
    if (process.getuid?.() === 0) {
      // As root: a directory given to another user with chown. Otherwise root's own / serves.
      dir = await outDir();
      await mkdir(dir, { mode: 0o700 });
      await chown(dir, 4242, 4242);
    }
    const before = sim.requests().length;
    const error: unknown = await provision(options(dir, 'SN-foreign')).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'PERSIST_FAILED' });
    expect(String(error)).toMatch(/belongs to user \d+, not to this process's user/);
    expect(sim.requests()).toHaveLength(before);
  });
});

describe('existing credentials', () => {
  it("reuses a complete matching set without traffic ('reuse' is the default)", async () => {
    const dir = await outDir();
    const first = await provision(options(dir, 'SN-reuse'));
    expect(first.reused).toBeUndefined();
    const before = sim.requests().length;
    const again = await provision(options(dir, 'SN-reuse'));
    expect(sim.requests()).toHaveLength(before);
    expect(again).toMatchObject({
      reused: true,
      certificateId: first.certificateId,
      thingName: first.thingName,
      privateKey: first.privateKey,
      abandonedCertificateIds: [],
    });
  });

  it("replaces a set with existing: 'replace'", async () => {
    const dir = await outDir();
    const first = await provision(options(dir, 'SN-replace'));
    const second = await provision({ ...options(dir, 'SN-replace'), existing: 'replace' });
    expect(second.certificateId).not.toBe(first.certificateId);
    expect(second.reused).toBeUndefined();
  });

  it('refuses a set made for another serial number or endpoint, naming what differs', async () => {
    const dir = await outDir();
    await provision(options(dir, 'SN-mine'));
    const before = sim.requests().length;
    await expect(provision(options(dir, 'SN-theirs'))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/other template parameters.*existing: 'replace'/),
    });
    const elsewhere = provision({
      endpoint: other.url,
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'SN-mine' },
      outDir: dir,
    });
    await expect(elsewhere).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining(`it was made for endpoint ${sim.url}, not ${other.url}`),
    });
    expect(sim.requests()).toHaveLength(before);
    expect(other.requests()).toHaveLength(0);
  });

  it('refuses a set whose key was deleted', async () => {
    const dir = await outDir();
    await provision(options(dir, 'SN-lost-key'));
    await rm(join(dir, '.current', 'private.pem.key'));
    await expect(provision(options(dir, 'SN-lost-key'))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('the private key is missing'),
    });
  });
});

describe('waits that must end', () => {
  it('settles although the broker never acknowledges the UNSUBSCRIBE (own and handed-in connection)', async () => {
    const proxy = await startMqttProxy(other.url, { drop: (packet) => packet.cmd === 'unsubscribe' });
    cleanups.push(proxy.close);
    const own = await provision({
      endpoint: proxy.url,
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'SN-no-unsuback' },
      timeoutMs: 1_000,
    });
    expect(own.certificateId).toBeDefined();
    const client = await connectClient(proxy.url);
    cleanups.push(() => client.endAsync(true));
    const handedIn = await provision({
      client,
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'SN-no-unsuback-2' },
      timeoutMs: 1_000,
    });
    expect(handedIn.certificateId).toBeDefined();
    expect(client.connected).toBe(true);
  });

  it('with a handed-in client, resolves without waiting for the UNSUBACK and leaves no listener behind', async () => {
    // The UNSUBSCRIBE reaches the proxy and goes no further: no UNSUBACK ever comes.
    let unsubscribeSeen: () => void = () => {};
    const seen = new Promise<void>((resolve) => {
      unsubscribeSeen = resolve;
    });
    const proxy = await startMqttProxy(other.url, {
      drop: (packet) => {
        if (packet.cmd !== 'unsubscribe') return false;
        unsubscribeSeen();
        return true;
      },
    });
    cleanups.push(proxy.close);
    const client = await connectClient(proxy.url);
    cleanups.push(() => client.endAsync(true));
    const listeners = client.listenerCount('message');
    const running = provision({
      client,
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'SN-unsuback-off-path' },
      timeoutMs: 30_000,
    });
    // Once the UNSUBSCRIBE is on the wire, one more round trip on the same connection (a SUBSCRIBE and
    // its SUBACK) must come back after provision() resolved: it does not wait for the UNSUBACK.
    const order: string[] = [];
    await Promise.all([
      running.then(() => order.push('provision resolved')),
      seen
        .then(() => client.subscribeAsync('$aws/certificates/create/json/accepted').catch(() => undefined))
        .then(() => order.push('round trip after the UNSUBSCRIBE')),
    ]);
    expect(order).toEqual(['provision resolved', 'round trip after the UNSUBSCRIBE']);
    expect((await running).certificateId).toBeDefined();
    // The UNSUBSCRIBE was sent; nothing of provision() listens on the client any more.
    expect(client.listenerCount('message')).toBe(listeners);
    expect(client.connected).toBe(true);
  });

  it('provisions twice in a row on one handed-in client, although the first UNSUBACK is still owed', async () => {
    // aedes may handle an UNSUBSCRIBE after a SUBSCRIBE that followed it: the second call's SUBSCRIBE
    // must wait for the first call's UNSUBACK, or its subscription is undone and its answers never come.
    const client = await connectClient(other.url);
    cleanups.push(() => client.endAsync(true));
    for (const serial of ['SN-back-to-back-1', 'SN-back-to-back-2', 'SN-back-to-back-3']) {
      const device = await provision({
        client,
        templateName: 'DemoTemplate',
        parameters: { SerialNumber: serial },
        timeoutMs: 5_000,
        retry: false,
      });
      expect(device.thingName).toContain(serial);
    }
  });

  it('retries over a fresh connection when the first goes half-open during RegisterThing', async () => {
    // The RegisterThing request vanishes and the connection stays "up": no answer, no close, no error.
    const proxy = await startMqttProxy(other.url, {
      freeze: (packet) => packet.cmd === 'publish' && packet.topic?.includes('/provision/') === true,
    });
    cleanups.push(proxy.close);
    const events: ProgressEvent[] = [];
    const device = await provision({
      endpoint: proxy.url,
      templateName: 'DemoTemplate',
      parameters: { SerialNumber: 'SN-half-open' },
      timeoutMs: 1_000,
      retry: { baseDelayMs: 1 },
      onProgress: (e) => events.push(e),
    });
    // The request never reached the service: the same token completes on the new connection.
    expect(device.abandonedCertificateIds).toEqual([]);
    expect(events.filter((e) => e.step === 'retrying')).toEqual([
      expect.objectContaining({ operation: 'RegisterThing', code: 'TIMEOUT' }),
    ]);
  });

  it('bounds a file step that never returns: TIMEOUT in the persist phase, before any traffic', async () => {
    const dir = await outDir();
    await mkdir(dir, { mode: 0o700 });
    // Reading a FIFO blocks until someone writes to it: a file system that does not answer.
    const fifo = join(dir, 'device.json');
    await promisify(execFile)('mkfifo', [fifo]);
    const before = sim.requests().length;
    try {
      await expect(provision({ ...options(dir, 'SN-fifo'), timeoutMs: 300 })).rejects.toMatchObject({
        code: 'TIMEOUT',
        phase: 'persist',
      });
      expect(sim.requests()).toHaveLength(before);
    } finally {
      // Let the blocked read finish, so nothing is left running.
      const writer = await open(fifo, 'w');
      await writer.close();
    }
  });
});

describe('callbacks and aborts after the work is done', () => {
  it('turns an exception thrown by onProgress into a process warning; the run goes on', async () => {
    // In a process of its own (the built library), whose warnings reach its stderr.
    const script = `
      const { provision } = await import(${JSON.stringify(join(ROOT, 'dist/index.js'))});
      const device = await provision({ ...JSON.parse(process.argv[1]), onProgress: () => { throw new Error('callback bug'); } });
      process.stdout.write(device.certificateId);`;
    const job = JSON.stringify(options(await outDir(), 'SN-throwing-callback'));
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [
      '--input-type=module',
      '-e',
      script,
      job,
    ]);
    expect(stdout).toMatch(/^[0-9a-f]{64}$/);
    expect(stderr).toMatch(
      /Warning: onProgress threw on step connecting; provisioning goes on\. Error: callback bug/,
    );
    expect(stderr).toMatch(/onProgress threw on step saved/);
  });

  it('resolves with the result when the signal aborts during verify, after the files were saved', async () => {
    const controller = new AbortController();
    const events: ProgressEvent[] = [];
    const dir = await outDir();
    const device = await provision({
      ...options(dir, 'SN-abort-verify'),
      verify: true,
      signal: controller.signal,
      onProgress: (e) => {
        events.push(e);
        if (e.step === 'saved') controller.abort('shutting down');
      },
    });
    expect(device.files?.directory).toBe(dir);
    expect(device.verified).toBeUndefined();
    expect(events.map((e) => e.step)).toContain('saved');
  });
});
