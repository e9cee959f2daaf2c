/**
 * What `fleet-provision status` finds in a credentials directory, on real files: a good set, an expired
 * certificate, an unreadable certificate, a key of another certificate, an invalid device.json.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readSetStatus } from '../../src/cli/set-status.js';
import { stageCredentials } from '../../src/device/staged-set.js';
import { tempDir } from '../helpers/provision-fixtures.js';
import { certificateIdOf, issueCertificate, makeCa, type TestCa } from '../helpers/x509.js';

const DAY_MS = 24 * 60 * 60 * 1000;
let ca: TestCa;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  ca = await makeCa('CN=Status Test CA');
});
afterAll(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function rsaKey(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048 })
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();
}

/** A committed set in a fresh directory; returns the directory, its live set directory and the certificate. */
async function set(privateKeyPem = rsaKey(), certifiedKey = privateKeyPem) {
  const temp = await tempDir('set-status-');
  cleanups.push(temp.remove);
  const dir = join(temp.path, 'credentials');
  const certificatePem = await issueCertificate(ca, certifiedKey);
  const staged = await stageCredentials(dir, { certificatePem, privateKeyPem });
  await staged.commit({
    thingName: 'status-thing',
    certificateId: certificateIdOf(certificatePem),
    deviceConfiguration: {},
    templateName: 'T',
    endpoint: 'mqtts://127.0.0.1:8883',
    provisionedAt: new Date().toISOString(),
  });
  return { dir, live: join(dir, await readlink(join(dir, '.current'))), certificatePem };
}

describe('readSetStatus', () => {
  it('a good set: everything known, no problems', async () => {
    const { dir, certificatePem } = await set();
    const status = await readSetStatus(dir);
    expect(status).toMatchObject({
      thingName: 'status-thing',
      certificateId: certificateIdOf(certificatePem),
      issuer: 'CN=Status Test CA',
      daysLeft: 364,
      keyType: 'rsa-2048',
      keyMatchesCertificate: true,
      modesOk: true,
      problems: [],
    });
  });

  it('an expired certificate is a problem, with negative days left', async () => {
    const { dir } = await set();
    const status = await readSetStatus(dir, Date.now() + 400 * DAY_MS);
    expect(status.daysLeft).toBeLessThan(0);
    expect(status.problems).toEqual([expect.stringMatching(/^the certificate expired on \d{4}-/)]);
  });

  it('a key of another certificate, an unreadable certificate, an invalid device.json', async () => {
    const mismatched = await set(rsaKey(), rsaKey());
    expect((await readSetStatus(mismatched.dir)).problems).toEqual([
      'the private key does not match the certificate',
    ]);

    const garbled = await set();
    await writeFile(join(garbled.live, 'certificate.pem.crt'), 'not a certificate');
    await writeFile(join(garbled.live, 'device.json'), '{');
    const status = await readSetStatus(garbled.dir);
    expect(status.problems).toEqual([
      'device.json is not valid',
      'the certificate is not a readable X.509 certificate',
    ]);
    expect(status.certificateId).toBeUndefined();
  });
});
