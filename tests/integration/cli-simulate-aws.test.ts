/**
 * `fleet-provision simulate --templates` with AWS's own files: the guide's template body, served under its
 * file name, and its claim policy enforced; then a real `fleet-provision provision` against it.
 */
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runCli, startCli } from '../helpers/cli-run.js';

const examples = fileURLToPath(new URL('../../examples/aws/', import.meta.url));
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'simulate-aws-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('fleet-provision simulate --templates <AWS template>', () => {
  it('serves the template under its file name with AWS semantics, and exits 0 on SIGTERM', async () => {
    const template = join(dir, 'FactoryTemplate.json');
    await copyFile(join(examples, 'provisioning-template.json'), template);
    const simDir = join(dir, 'sim');
    const sim = startCli([
      'simulate',
      '--port',
      '0',
      '--out',
      simDir,
      '--server-key',
      'ec-p256',
      '--templates',
      template,
      '--claim-policy',
      join(examples, 'claim-policy.json'),
    ]);
    try {
      const endpoint = (await sim.line(/^endpoint: /)).replace('endpoint: ', '').trim();
      expect(await sim.line(/^template: /)).toBe('template: FactoryTemplate (parameters: SerialNumber)');
      const flags = [
        'provision',
        '--endpoint',
        endpoint,
        '--ca',
        join(simDir, 'ca.pem.crt'),
        '--claim-cert',
        join(simDir, 'claim.pem.crt'),
        '--claim-key',
        join(simDir, 'claim.private.pem.key'),
        '--template',
        'FactoryTemplate',
        '--json',
      ];
      const missing = await runCli([...flags, '--out', join(dir, 'missing')]);
      expect(missing.code).toBe(3);
      expect(missing.stderr).toMatch(/InvalidParameters/);
      const done = await runCli([...flags, '--param', 'SerialNumber=SN-7', '--out', join(dir, 'device')]);
      expect(done.code).toBe(0);
      expect(JSON.parse(done.stdout)).toMatchObject({
        thingName: 'sensor-SN-7',
        deviceConfiguration: { Fleet: 'factory' },
      });
    } finally {
      sim.child.kill('SIGTERM');
    }
    expect((await sim.exited).code).toBe(0);
  });

  it('refuses a template AWS would not create (exit 2, naming the problem)', async () => {
    const bad = join(dir, 'Bad.json');
    await writeFile(
      bad,
      JSON.stringify({
        Resources: { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'Serial' } } } },
      }),
    );
    const result = await runCli(['simulate', '--port', '0', '--out', join(dir, 'sim2'), '--templates', bad]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/Unresolved reference: Ref Serial/);
  });
});
