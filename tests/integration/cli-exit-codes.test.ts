import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { RequestLogEntry } from '../../src/simulator/index.js';
import { runCli, secretsIn, startCli } from '../helpers/cli-run.js';
import { type CliSimulator, startCliSimulator } from '../helpers/cli-simulator.js';
import { freePort } from '../helpers/mosquitto.js';

let env: CliSimulator;
let n = 0;
beforeAll(async () => {
  env = await startCliSimulator();
});
afterEach(() => {
  env.sim.faults.clear();
});
afterAll(async () => {
  await env.close();
});

/** The arguments to provision into a fresh directory with a fresh serial number; extra flags last. */
function provisionArgs(...extra: string[]): string[] {
  n++;
  return [
    'provision',
    ...env.connectionFlags(),
    '--param',
    `SerialNumber=SN-exit-${n}`,
    '--out',
    join(env.dir, `out-${n}`),
    ...extra,
  ];
}

/** Run provision with {@link provisionArgs}. */
function provision(...extra: string[]) {
  return runCli(provisionArgs(...extra));
}

describe('fleet-provision provision exit codes', () => {
  it('2: an unknown flag, named', async () => {
    const result = await runCli(['provision', '--endpoit', 'x']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown flag --endpoit/);
    expect(result.stdout).toBe('');
  });

  it('2: a missing required flag, named', async () => {
    const result = await runCli([
      'provision',
      '--endpoint',
      env.sim.url,
      '--claim-cert',
      'a',
      '--claim-key',
      'b',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/missing required flag --template/);
  });

  it('2: a flag without its value, a malformed --param, an unreadable claim file', async () => {
    const noValue = await provision('--timeout');
    expect(noValue.code).toBe(2);
    expect(noValue.stderr).toMatch(/--timeout needs a value/);
    const badParam = await provision('--param', 'NoEquals');
    expect(badParam.code).toBe(2);
    expect(badParam.stderr).toMatch(/--param takes KEY=VALUE/);
    const missing = await runCli([
      'provision',
      '--endpoint',
      env.sim.url,
      '--template',
      'DemoTemplate',
      '--claim-cert',
      join(env.dir, 'nope.pem'),
      '--claim-key',
      env.files.claimKey,
      '--out',
      join(env.dir, 'never'),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read the --claim-cert file .*nope\.pem.*ENOENT/);
  });

  it('2: INVALID_ARGUMENT from the library (a bad template name), before any traffic', async () => {
    const before = env.sim.requests().length;
    const result = await provision('--template', 'not a valid name!');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/Invalid template name/);
    expect(env.sim.requests().length).toBe(before);
  });

  it('3: REJECTED (400 is not retried)', async () => {
    env.sim.faults.script('CreateKeysAndCertificate', {
      type: 'reject',
      statusCode: 400,
      errorCode: 'InvalidPayload',
      errorMessage: 'Scripted rejection',
    });
    const result = await provision();
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/rejected: 400 InvalidPayload/);
    expect(result.stderr).not.toMatch(/retrying/);
  });

  it('4: TIMEOUT when the service stays silent past --timeout', async () => {
    env.sim.faults.script('CreateKeysAndCertificate', { type: 'silent' });
    const result = await provision('--timeout', '400', '--retries', '0');
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/timed out after 400 ms/);
  });

  it('0 after a timeout that a retry on a fresh connection recovers from', async () => {
    env.sim.faults.script('CreateKeysAndCertificate', { type: 'silent' });
    // Long enough that a connect on a busy machine does not time out too: only the silent call should.
    const result = await provision('--timeout', '1500');
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/retrying\s+the certificate request failed with TIMEOUT; try 2/);
    expect(result.stderr).toMatch(/connection 2/);
  });

  it('4: ABORTED on SIGINT while waiting for an answer', async () => {
    env.sim.faults.script('CreateKeysAndCertificate', { type: 'silent' });
    const published = new Promise<void>((resolve) => {
      const onRequest = (entry: RequestLogEntry) => {
        if (entry.type === 'publish' && entry.fault === 'silent') {
          env.sim.off('request', onRequest);
          resolve();
        }
      };
      env.sim.on('request', onRequest);
    });
    const cli = startCli(provisionArgs('--timeout', '60000'));
    await published;
    cli.child.kill('SIGINT');
    const result = await cli.exited;
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/aborted/);
  });

  it('5: SUBSCRIBE_FAILED when the broker refuses the subscription', async () => {
    env.sim.faults.script('CreateKeysAndCertificate', { type: 'refuseSubscribe' });
    const result = await provision();
    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(/refused the subscription/);
  });

  it('5: a connection refused (nothing listens on the port)', async () => {
    const port = await freePort();
    const result = await provision('--endpoint', `mqtts://127.0.0.1:${port}`, '--retries', '0');
    expect(result.code).toBe(5);
  });

  it('5: a TLS failure (the server certificate is not signed by --ca)', async () => {
    const result = await provision('--ca', env.files.claimCert, '--retries', '0');
    expect(result.code).toBe(5);
    expect(secretsIn(result.stdout + result.stderr, [env.sim.claimPrivateKey])).toEqual([]);
  });

  it('6: INVALID_RESPONSE when the answer has the wrong shape', async () => {
    env.sim.faults.script('CreateKeysAndCertificate', { type: 'wrongShape' });
    const result = await provision();
    expect(result.code).toBe(6);
    expect(result.stderr).toMatch(/invalid answer/);
  });

  it('7: PERSIST_FAILED when --out lies under a regular file, and RegisterThing is not sent', async () => {
    const file = join(env.dir, 'a-regular-file');
    await writeFile(file, 'not a directory');
    const registered = env.sim.things().length;
    const result = await provision('--out', join(file, 'credentials'));
    expect(result.code).toBe(7);
    expect(result.stderr).toMatch(/ENOTDIR/);
    expect(env.sim.things().length).toBe(registered);
  });

  it('3 with --json: a failure leaves stdout empty and says why on stderr', async () => {
    env.sim.faults.script('RegisterThing', { type: 'reject', statusCode: 403, errorCode: 'AccessDenied' });
    const result = await provision('--json');
    expect(result.code).toBe(3);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/RegisterThing was rejected: 403/);
  });
});
