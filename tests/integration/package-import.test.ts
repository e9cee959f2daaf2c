/**
 * The built package as a user imports it: a plain Node ESM script against dist/, with a resolve hook that
 * fails on the simulator's broker and on the X.509 library. `npm test` builds dist/ first.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from '@jest/globals';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const hook = fileURLToPath(new URL('../helpers/register-forbid-imports.mjs', import.meta.url));

async function importWithHook(script: string): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, ['--import', hook, '--input-type=module', '-e', script], { cwd: root });
}

describe('the built package', () => {
  it('has been built', () => {
    expect(existsSync(`${root}dist/index.js`)).toBe(true);
    expect(existsSync(`${root}dist/simulator/index.js`)).toBe(true);
  });

  it('imports by its package name without loading aedes, mqtt.js, @peculiar/x509 or cborg', async () => {
    const { stdout } = await importWithHook(
      "const m = await import('iot-fleet-provisioning'); console.log(Object.keys(m).sort().join(','));",
    );
    const names = stdout.trim().split(',');
    expect(names).toEqual(
      expect.arrayContaining(['topics', 'parseTopic', 'IotIdentityClient', 'FleetProvisioningError']),
    );
  });

  it('really refuses the forbidden modules (the check itself works)', async () => {
    await expect(importWithHook("await import('aedes');")).rejects.toMatchObject({
      stderr: expect.stringContaining('forbidden import: aedes'),
    });
  });

  it('makes and checks a CSR in a fresh process: the X.509 library loads with the polyfill it needs', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const { generateKeyPair, createCsr, checkCsr } = await import('iot-fleet-provisioning'); const pair = await generateKeyPair('ec-p256'); const csr = await createCsr({ keys: pair.keys, subject: 'CN=SN-1' }); const summary = await checkCsr(csr); console.log(csr.split('\\n')[0], summary.subject);",
      ],
      { cwd: root },
    );
    expect(stdout.trim()).toBe('-----BEGIN CERTIFICATE REQUEST----- CN=SN-1');
  });

  it('a CBOR client loads the codec by itself in a fresh process, before its first request', async () => {
    // No simulator in this process (it would load the codec for everyone): a bare transport that records
    // the request, then the client is closed.
    const script = [
      "const { FleetProvisioningClient } = await import('iot-fleet-provisioning');",
      "const { EventEmitter } = await import('node:events');",
      'const fake = Object.assign(new EventEmitter(), {',
      '  connected: true,',
      "  subscribeAsync: async (req) => Object.keys(req).filter((t) => t !== 'resubscribe').map((topic) => ({ topic, qos: 1 })),",
      '  unsubscribeAsync: async () => undefined,',
      "  publishAsync: async (topic, payload) => { console.log(topic, payload.toString('hex')); void client.close(); },",
      '});',
      "const client = new FleetProvisioningClient(fake, { format: 'cbor' });",
      'console.log(await client.createKeysAndCertificate().catch((error) => error.code));',
    ].join('\n');
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: root });
    expect(stdout.trim().split('\n')).toEqual(['$aws/certificates/create/cbor a0', 'CLIENT_CLOSED']);
  });

  it('builds topics from the package in a plain script', async () => {
    const { stdout } = await importWithHook(
      "const { topics } = await import('iot-fleet-provisioning'); console.log(topics.registerThing('T', 'cbor').accepted);",
    );
    expect(stdout.trim()).toBe('$aws/provisioning-templates/T/provision/cbor/accepted');
  });
});
