import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { MqttClient } from 'mqtt';
import { topics } from '../../src/protocol/topics.js';
import { IDENTITY_FILES, type Simulator, startSimulator } from '../../src/simulator/index.js';
import { closeClients } from '../helpers/mqtt.js';
import { makeCsr } from '../helpers/sim-csr.js';
import { ask, closedByServer, connectOutcome, connectTo, field } from '../helpers/sim-mqtt.js';

describe('simulator over mutual TLS', () => {
  let sim: Simulator;
  let claim: MqttClient;

  beforeAll(async () => {
    sim = await startSimulator({
      serverKeyType: 'ec-p256',
      templates: {
        DemoTemplate: { thingName: '{{SerialNumber}}', requiredParameters: ['SerialNumber'] },
        Quarantine: { thingName: 'q-{{SerialNumber}}', certificateStatus: 'INACTIVE' },
      },
    });
    claim = await connectTo(sim);
  });

  afterAll(async () => {
    await closeClients(claim);
    await sim.close();
  });

  it('serves mqtts on 127.0.0.1 with real X.509 from its own CA', () => {
    expect(sim.url).toBe(`mqtts://127.0.0.1:${sim.port}`);
    const ca = new X509Certificate(sim.caCertificate);
    const claimCert = new X509Certificate(sim.claimCertificate);
    expect(ca.ca).toBe(true);
    expect(claimCert.verify(ca.publicKey)).toBe(true);
    expect(claimCert.checkPrivateKey(createPrivateKey(sim.claimPrivateKey))).toBe(true);
  });

  it('CreateKeysAndCertificate → RegisterThing: the new certificate is refused until activated, then connects', async () => {
    const created = await ask(claim, 'CreateKeysAndCertificate', {});
    expect(created.kind).toBe('accepted');
    const cert = field(created, 'certificatePem');
    const key = field(created, 'privateKey');
    const certificateId = field(created, 'certificateId');
    const certificate = new X509Certificate(cert);
    expect(certificate.verify(new X509Certificate(sim.caCertificate).publicKey)).toBe(true);
    expect(certificate.checkPrivateKey(createPrivateKey(key))).toBe(true);
    expect(certificate.fingerprint256.replaceAll(':', '').toLowerCase()).toBe(certificateId);
    expect(sim.certificates().find((c) => c.certificateId === certificateId)?.status).toBe(
      'PENDING_ACTIVATION',
    );

    expect(await connectOutcome(sim, { cert, key })).toBe(5);

    const registered = await ask(claim, 'RegisterThing', {
      certificateOwnershipToken: field(created, 'certificateOwnershipToken'),
      parameters: { SerialNumber: 'TLS-1' },
    });
    expect(registered).toMatchObject({
      kind: 'accepted',
      value: { thingName: 'TLS-1', deviceConfiguration: {} },
    });
    expect(sim.certificates().find((c) => c.certificateId === certificateId)).toMatchObject({
      status: 'ACTIVE',
      thingName: 'TLS-1',
    });

    const device = await connectTo(sim, { cert, key });
    expect(device.connected).toBe(true);
    await closeClients(device);
    const connects = sim.requests().filter((e) => e.type === 'connect' && e.certificateId === certificateId);
    expect(connects.map((e) => e.allowed)).toEqual([false, true]);
  });

  it('CreateCertificateFromCsr → RegisterThing: certifies the CSR key, which then connects', async () => {
    const { csrPem, privateKeyPem } = await makeCsr('ec-p384', 'CN=csr-device');
    const created = await ask(claim, 'CreateCertificateFromCsr', { certificateSigningRequest: csrPem });
    expect(created.kind).toBe('accepted');
    expect(created.value).not.toHaveProperty('privateKey');
    const cert = field(created, 'certificatePem');
    const certificate = new X509Certificate(cert);
    expect(certificate.subject).toContain('CN=csr-device');
    expect(certificate.publicKey.export({ type: 'spki', format: 'der' })).toEqual(
      createPublicKey(privateKeyPem).export({ type: 'spki', format: 'der' }),
    );
    expect(await connectOutcome(sim, { cert, key: privateKeyPem })).toBe(5);
    const registered = await ask(claim, 'RegisterThing', {
      certificateOwnershipToken: field(created, 'certificateOwnershipToken'),
      parameters: { SerialNumber: 'CSR-1' },
    });
    expect(registered.kind).toBe('accepted');
    const device = await connectTo(sim, { cert, key: privateKeyPem });
    expect(device.connected).toBe(true);
    await closeClients(device);
  });

  it('a template with certificateStatus INACTIVE leaves the certificate unable to connect', async () => {
    const created = await ask(claim, 'CreateKeysAndCertificate', {});
    const registered = await ask(
      claim,
      'RegisterThing',
      {
        certificateOwnershipToken: field(created, 'certificateOwnershipToken'),
        parameters: { SerialNumber: 'Q1' },
      },
      { templateName: 'Quarantine' },
    );
    expect(registered).toMatchObject({ kind: 'accepted', value: { thingName: 'q-Q1' } });
    const id = field(created, 'certificateId');
    expect(sim.certificates().find((c) => c.certificateId === id)?.status).toBe('INACTIVE');
    const cert = field(created, 'certificatePem');
    expect(await connectOutcome(sim, { cert, key: field(created, 'privateKey') })).toBe(5);
  });

  it('refuses a client without a certificate, and one whose certificate another CA signed', async () => {
    const refused = once(sim, 'request');
    expect(await connectOutcome(sim, null)).not.toBe('connected');
    const [entry] = await refused;
    expect(entry).toMatchObject({ type: 'connect', allowed: false, clientId: '' });

    const other = await startSimulator({ serverKeyType: 'ec-p256', tls: false });
    try {
      const outcome = await connectOutcome(sim, { cert: other.claimCertificate, key: other.claimPrivateKey });
      expect(outcome).not.toBe('connected');
      expect(
        sim
          .requests()
          .filter(
            (e) => e.type === 'connect' && e.allowed === true && e.certificateId === other.claimCertificateId,
          ),
      ).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('accepts ALPN x-amzn-mqtt-ca as AWS does on port 443, and the localhost name', async () => {
    const client = await connectTo(sim, undefined, {
      ALPNProtocols: ['x-amzn-mqtt-ca'],
      clientId: 'alpn-client',
    });
    const viaName = await connectTo(sim, undefined, {
      host: 'localhost',
      hostname: 'localhost',
      clientId: 'by-name',
    });
    await closeClients(client, viaName);
    expect(sim.requests('alpn-client')[0]).toMatchObject({
      type: 'connect',
      alpnProtocol: 'x-amzn-mqtt-ca',
      role: 'claim',
    });
    expect(sim.requests('by-name')[0]).toMatchObject({ type: 'connect', allowed: true });
  });

  it('the claim may use only the provisioning topics: SUBACK 0x80 elsewhere, and a publish elsewhere closes it', async () => {
    const client = await connectTo(sim, undefined, { clientId: 'claim-policy' });
    await expect(client.subscribeAsync('devices/telemetry', { qos: 1 })).rejects.toMatchObject({
      packet: { granted: [0x80] },
    });
    const granted = await client.subscribeAsync(topics.createKeysAndCertificate('cbor').accepted, { qos: 1 });
    expect(granted[0]?.qos).toBe(1);
    const closed = closedByServer(client);
    client.publish('devices/telemetry', 'hello', { qos: 1 });
    await closed;
    await closeClients(client);
    expect(sim.requests('claim-policy').map((e) => [e.type, e.allowed])).toEqual([
      ['connect', true],
      ['subscribe', false],
      ['subscribe', true],
      ['publish', false],
    ]);
  });

  it('a device certificate may not use the claim-only topics, but may use its own', async () => {
    const created = await ask(claim, 'CreateKeysAndCertificate', {});
    await ask(claim, 'RegisterThing', {
      certificateOwnershipToken: field(created, 'certificateOwnershipToken'),
      parameters: { SerialNumber: 'DEV-POLICY' },
    });
    const device = await connectTo(sim, {
      cert: field(created, 'certificatePem'),
      key: field(created, 'privateKey'),
    });
    await expect(
      device.subscribeAsync(topics.createKeysAndCertificate().accepted, { qos: 1 }),
    ).rejects.toMatchObject({
      packet: { granted: [0x80] },
    });
    await expect(device.subscribeAsync('$aws/#', { qos: 0 })).rejects.toMatchObject({
      packet: { granted: [0x80] },
    });
    const granted = await device.subscribeAsync('devices/DEV-POLICY/telemetry', { qos: 1 });
    expect(granted[0]?.qos).toBe(1);
    const closed = closedByServer(device);
    device.publish(topics.createKeysAndCertificate().request, '{}', { qos: 1 });
    await closed;
    await closeClients(device);
  });
});

describe('simulator identity directory', () => {
  it('saves its CA, server and claim credentials and loads them on the next start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sim-identity-'));
    try {
      const first = await startSimulator({ identityDir: dir, serverKeyType: 'ec-p256' });
      const ca = first.caCertificate;
      const claimCert = first.claimCertificate;
      await first.close();
      expect((await stat(join(dir, IDENTITY_FILES.claimPrivateKey))).mode & 0o777).toBe(0o600);
      expect((await stat(join(dir, IDENTITY_FILES.caPrivateKey))).mode & 0o777).toBe(0o600);
      expect(await readFile(join(dir, IDENTITY_FILES.caCertificate), 'utf8')).toBe(ca);

      const second = await startSimulator({ identityDir: dir, serverKeyType: 'ec-p256' });
      try {
        expect(second.caCertificate).toBe(ca);
        expect(second.claimCertificate).toBe(claimCert);
        const client = await connectTo(second);
        const created = await ask(client, 'CreateKeysAndCertificate', {});
        const issued = new X509Certificate(field(created, 'certificatePem'));
        expect(issued.verify(new X509Certificate(ca).publicKey)).toBe(true);
        await closeClients(client);
      } finally {
        await second.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('simulator default key type', () => {
  it('CreateKeysAndCertificate makes an RSA 2048 key by default, as AWS does', async () => {
    const sim = await startSimulator({ tls: false });
    const client = await connectTo(sim);
    try {
      const created = await ask(client, 'CreateKeysAndCertificate', {});
      const key = createPrivateKey(field(created, 'privateKey'));
      expect(field(created, 'privateKey')).toContain('BEGIN RSA PRIVATE KEY');
      expect(key.asymmetricKeyType).toBe('rsa');
      expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);
      expect(new X509Certificate(field(created, 'certificatePem')).checkPrivateKey(key)).toBe(true);
    } finally {
      await closeClients(client);
      await sim.close();
    }
  });
});
