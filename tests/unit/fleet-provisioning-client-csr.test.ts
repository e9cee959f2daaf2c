import { beforeAll, describe, expect, it } from '@jest/globals';
import { FleetProvisioningClient } from '../../src/client/fleet-provisioning-client.js';
import { createCsr, generateKeyPair } from '../../src/device/keys.js';
import { InvalidResponseError } from '../../src/protocol/errors.js';
import { answer, FakeServiceTransport, serviceTopics } from '../helpers/fake-service-transport.js';
import { issueCertificate, makeCa, type TestCa } from '../helpers/x509.js';

const T = serviceTopics();

interface Device {
  csr: string;
  certificatePem: string;
}

let ca: TestCa;
let a: Device;
let b: Device;

async function device(): Promise<Device> {
  const pair = await generateKeyPair('ec-p256');
  const csr = await createCsr({ keys: pair.keys });
  return { csr, certificatePem: await issueCertificate(ca, csr) };
}

function accepted(d: Device, n: number) {
  return answer(T.csr.accepted, {
    certificateId: `cert-${n}`,
    certificatePem: d.certificatePem,
    certificateOwnershipToken: `token-${n}-abcdefgh`,
  });
}

beforeAll(async () => {
  ca = await makeCa();
  a = await device();
  b = await device();
});

describe('CreateCertificateFromCsr recognises its own answer', () => {
  it('resolves with a certificate that carries the CSR public key', async () => {
    const fake = new FakeServiceTransport();
    fake.respond = () => [accepted(a, 1)];
    const client = new FleetProvisioningClient(fake);
    const result = await client.createCertificateFromCsr({ certificateSigningRequest: a.csr });
    expect(result.certificatePem).toBe(a.certificatePem);
    expect(JSON.parse(String(fake.sent('publish')[0]?.payload))).toEqual({
      certificateSigningRequest: a.csr,
    });
    await client.close();
  });

  it('a certificate for another key, with no late answer owed → INVALID_RESPONSE', async () => {
    const fake = new FakeServiceTransport();
    fake.respond = () => [accepted(b, 1)];
    const client = new FleetProvisioningClient(fake);
    const error = await client.createCertificateFromCsr({ certificateSigningRequest: a.csr }).catch((e) => e);
    expect(error).toBeInstanceOf(InvalidResponseError);
    expect(error).toMatchObject({ code: 'INVALID_RESPONSE', issues: [{ path: 'certificatePem' }] });
    expect(String(error)).not.toContain('BEGIN');
    await client.close();
  });

  it('drops the late answer of an earlier call even after the quarantine gave up on it', async () => {
    const fake = new FakeServiceTransport();
    const client = new FleetProvisioningClient(fake, { lateAnswerWindowMs: 1 });
    await expect(
      client.createCertificateFromCsr({ certificateSigningRequest: a.csr }, { timeoutMs: 10 }),
    ).rejects.toMatchObject({ code: 'TIMEOUT', phase: 'response' });
    const next = client.createCertificateFromCsr({ certificateSigningRequest: b.csr });
    await fake.waitFor('publish', 2);
    // The answer to the first call arrives while the second one is out: recognised and dropped.
    const late = accepted(a, 1);
    fake.deliver(late.topic, late.payload);
    const own = accepted(b, 2);
    fake.deliver(own.topic, own.payload);
    await expect(next).resolves.toMatchObject({ certificateId: 'cert-2', certificatePem: b.certificatePem });
    await client.close();
  });
});
