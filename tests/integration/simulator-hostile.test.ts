import { chmod, lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { MqttClient } from 'mqtt';
import { topics } from '../../src/protocol/topics.js';
import { loadOrCreateIdentity } from '../../src/simulator/identity.js';
import { IDENTITY_FILES, type Simulator, startSimulator } from '../../src/simulator/index.js';
import { closeClients } from '../helpers/mqtt.js';
import { ask, closedByServer, connectTo, field, nextMessage } from '../helpers/sim-mqtt.js';

describe('simulator identity in a shared directory', () => {
  it('saves through fresh files: symlinks planted at the temp names or a target leak no key and overwrite nothing', async () => {
    const shared = await mkdtemp(join(tmpdir(), 'sim-shared-'));
    try {
      // A directory others may write to, as /tmp is: an attacker plants links before the simulator starts.
      await chmod(shared, 0o1777);
      const dir = join(shared, 'sim');
      await mkdir(dir);
      await chmod(dir, 0o777);
      const victim = join(shared, 'victim.conf');
      await writeFile(victim, 'precious\n');
      const drop = join(shared, 'attacker-drop');
      await writeFile(drop, '', { mode: 0o666 });
      for (const name of Object.values(IDENTITY_FILES)) {
        // The temp name the old writer used; keys pointed at a file the attacker reads, the rest at a victim.
        const target = name.endsWith('.key') ? drop : victim;
        await symlink(target, join(dir, `${name}.${process.pid}.tmp`));
      }
      await symlink(victim, join(dir, IDENTITY_FILES.caPrivateKey));

      const identity = await loadOrCreateIdentity(dir);

      expect(await readFile(victim, 'utf8')).toBe('precious\n');
      expect(await readFile(drop, 'utf8')).toBe('');
      const expected: Record<string, string> = {
        [IDENTITY_FILES.caCertificate]: identity.ca.certificatePem,
        [IDENTITY_FILES.caPrivateKey]: identity.ca.privateKeyPem,
        [IDENTITY_FILES.serverCertificate]: identity.server.certificatePem,
        [IDENTITY_FILES.serverPrivateKey]: identity.server.privateKeyPem,
        [IDENTITY_FILES.claimCertificate]: identity.claim.certificatePem,
        [IDENTITY_FILES.claimPrivateKey]: identity.claim.privateKeyPem,
      };
      for (const [name, text] of Object.entries(expected)) {
        const info = await lstat(join(dir, name));
        expect({ name, file: info.isFile() }).toEqual({ name, file: true });
        expect({ name, mode: info.mode & 0o777 }).toEqual({
          name,
          mode: name.endsWith('.key') ? 0o600 : 0o644,
        });
        expect(await readFile(join(dir, name), 'utf8')).toBe(text);
      }
    } finally {
      await rm(shared, { recursive: true, force: true });
    }
  });
});

describe('simulator on a port already in use', () => {
  it('rejects with INVALID_ARGUMENT naming the port and what to do', async () => {
    const holder = createServer();
    await new Promise<void>((listening) => holder.listen(0, '127.0.0.1', () => listening()));
    try {
      const address = holder.address();
      if (address === null || typeof address === 'string') throw new Error('no TCP address');
      await expect(startSimulator({ tls: false, port: address.port })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: `The simulator cannot listen: port ${address.port} on 127.0.0.1 is already in use (EADDRINUSE). Stop what listens there, or pick another port (0 picks a free one).`,
      });
    } finally {
      await new Promise<void>((closed) => holder.close(() => closed()));
    }
  });
});

describe('simulator under a hostile client holding the claim certificate', () => {
  let sim: Simulator;
  let clock = 1_000_000;

  beforeAll(async () => {
    sim = await startSimulator({
      serverKeyType: 'ec-p256',
      now: () => clock,
      maxPacketBytes: 8 * 1024,
      requestsPerSecondPerClient: 3,
      templates: {
        DemoTemplate: { thingName: '{{SerialNumber}}', requiredParameters: ['SerialNumber'] },
        ByCertificate: { thingName: '{{AWS::IoT::Certificate::Id}}' },
      },
    });
  });

  afterAll(async () => {
    await sim.close();
  });

  it('closes a connection that sends a packet over maxPacketBytes, before the service sees it', async () => {
    const client = await connectTo(sim);
    const closed = closedByServer(client);
    client.publish(topics.createKeysAndCertificate().request, Buffer.alloc(9 * 1024, 0x7b), { qos: 1 });
    await closed;
    await closeClients(client);
    const seen = sim.requests(client.options.clientId);
    expect(seen.filter((e) => e.type === 'publish')).toEqual([]);
    // A packet under the limit still goes through on another connection.
    const other = await connectTo(sim);
    try {
      const created = await ask(other, 'CreateKeysAndCertificate', {});
      expect(created.kind).toBe('accepted');
    } finally {
      await closeClients(other);
    }
  });

  it('answers 429 ThrottlingException beyond requestsPerSecondPerClient, per client', async () => {
    clock += 10_000;
    const greedy = await connectTo(sim);
    const polite = await connectTo(sim);
    try {
      const kinds: string[] = [];
      for (let i = 0; i < 4; i++) {
        const answer = await ask(greedy, 'RegisterThing', { certificateOwnershipToken: 'x'.repeat(10) });
        kinds.push(answer.kind === 'rejected' ? field(answer, 'errorCode') : answer.kind);
      }
      expect(kinds).toEqual([
        'InvalidCertificateOwnershipToken',
        'InvalidCertificateOwnershipToken',
        'InvalidCertificateOwnershipToken',
        'ThrottlingException',
      ]);
      const other = await ask(polite, 'RegisterThing', { certificateOwnershipToken: 'x'.repeat(10) });
      expect(field(other, 'errorCode')).toBe('InvalidCertificateOwnershipToken');
      clock += 1_000;
      const later = await ask(greedy, 'RegisterThing', { certificateOwnershipToken: 'x'.repeat(10) });
      expect(field(later, 'errorCode')).toBe('InvalidCertificateOwnershipToken');
    } finally {
      await closeClients(greedy, polite);
    }
  });

  it('ignores a device parameter that names a built-in AWS::IoT:: parameter', async () => {
    clock += 10_000;
    const client = await connectTo(sim);
    try {
      const created = await ask(client, 'CreateKeysAndCertificate', {});
      const registered = await ask(
        client,
        'RegisterThing',
        {
          certificateOwnershipToken: field(created, 'certificateOwnershipToken'),
          parameters: { 'AWS::IoT::Certificate::Id': 'someone-elses-thing' },
        },
        { templateName: 'ByCertificate' },
      );
      expect(field(registered, 'thingName')).toBe(field(created, 'certificateId'));
      expect(sim.things().map((t) => t.thingName)).not.toContain('someone-elses-thing');
    } finally {
      await closeClients(client);
    }
  });

  it('gives a device certificate no access to $SYS: SUBSCRIBE refused, nothing forwarded', async () => {
    clock += 10_000;
    const claim = await connectTo(sim);
    const created = await ask(claim, 'CreateKeysAndCertificate', {});
    await ask(claim, 'RegisterThing', {
      certificateOwnershipToken: field(created, 'certificateOwnershipToken'),
      parameters: { SerialNumber: 'SYS-PROBE' },
    });
    await closeClients(claim);
    const device: MqttClient = await connectTo(sim, {
      cert: field(created, 'certificatePem'),
      key: field(created, 'privateKey'),
    });
    try {
      await expect(device.subscribeAsync('$SYS/#', { qos: 0 })).rejects.toMatchObject({
        packet: { granted: [0x80] },
      });
      await expect(device.subscribeAsync('$SYS/+/new/clients', { qos: 0 })).rejects.toMatchObject({
        packet: { granted: [0x80] },
      });
      const seen: string[] = [];
      device.on('message', (topic) => seen.push(topic));
      await device.subscribeAsync('#', { qos: 1 });
      // Another client connects (the broker announces it on $SYS), then a marker proves delivery caught up.
      const other = await connectTo(sim);
      const marker = nextMessage(device, ['devices/SYS-PROBE/marker']);
      await device.publishAsync('devices/SYS-PROBE/marker', 'm', { qos: 1 });
      await marker;
      expect(seen.filter((t) => t.startsWith('$SYS'))).toEqual([]);
      // A publish there would make aedes disconnect the client id it names: it closes the publisher instead.
      const closed = closedByServer(device);
      device.publish('$SYS/another-broker/new/clients', String(other.options.clientId), { qos: 1 });
      await closed;
      try {
        expect((await ask(other, 'CreateKeysAndCertificate', {})).kind).toBe('accepted');
      } finally {
        await closeClients(other);
      }
    } finally {
      await closeClients(device);
    }
  });
});

describe('simulator over plain MQTT (no certificate, no policy)', () => {
  it('still gives no one $SYS', async () => {
    const plain = await startSimulator({ tls: false });
    const client = await connectTo(plain);
    try {
      await expect(client.subscribeAsync('$SYS/#', { qos: 0 })).rejects.toMatchObject({
        packet: { granted: [0x80] },
      });
    } finally {
      await closeClients(client);
      await plain.close();
    }
  });
});

describe('simulator request log', () => {
  it('keeps the log under requestLogMaxBytes however long the topics a client sends', async () => {
    const sim = await startSimulator({ tls: false, requestLogMaxBytes: 16 * 1024 });
    const client = await connectTo(sim);
    try {
      const long = `t/${'x'.repeat(2_000)}`;
      for (let i = 0; i < 40; i++) await client.publishAsync(`${long}/${i}`, 'p', { qos: 1 });
      const entries = sim.requests();
      const bytes = entries.reduce((sum, e) => sum + JSON.stringify(e).length, 0);
      expect(bytes).toBeLessThanOrEqual(16 * 1024);
      expect(entries.at(-1)?.topic).toBe(`${long}/39`);
    } finally {
      await closeClients(client);
      await sim.close();
    }
  });
});
