/**
 * Secrets and mistakes through the built CLI, as a CI job runs it: `DEBUG=*` on, the claim key in the
 * environment in each encoding people store it in. No 16-character piece of a key, token or
 * certificate body may reach stdout or stderr, `--json` stdout always parses, every mistake is a coded
 * error with its next step (never "please report this"), and text from the network cannot drive the
 * terminal.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { encodePayload } from '../../src/protocol/payload.js';
import { startAedes, type TestBroker } from '../helpers/aedes-broker.js';
import { type BrokerResponder, startResponder } from '../helpers/broker-responder.js';
import { type CliResult, runCli, secretsIn, startCli } from '../helpers/cli-run.js';
import { type CliSimulator, startCliSimulator } from '../helpers/cli-simulator.js';
import { issueCertificate, makeCa } from '../helpers/x509.js';

/** What the simulator's PemConfig template puts in deviceConfiguration: PEM-looking, cut off. */
const PEM_LOOKING = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49';

let env: CliSimulator;
let n = 0;
beforeAll(async () => {
  env = await startCliSimulator({
    templates: {
      DemoTemplate: { thingName: '{{SerialNumber}}', requiredParameters: ['SerialNumber'] },
      PemConfig: {
        thingName: '{{SerialNumber}}',
        requiredParameters: ['SerialNumber'],
        deviceConfiguration: { note: PEM_LOOKING, plain: 'stays' },
      },
    },
  });
});
afterAll(async () => {
  await env.close();
});

/** BEL, ESC and CSI: what an escape sequence needs to act on a terminal. */
const TERMINAL_CONTROLS = new RegExp(`[${String.fromCharCode(7)}${String.fromCharCode(27)}\u009b]`);

const body = (pem: string) =>
  pem
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('-----'))
    .join('');

/** The flat forms of a PEM that could be printed: its base64 body, the hex of its DER, base64 of the file. */
function formsOf(pem: string): string[] {
  const flat = body(pem);
  return [flat, Buffer.from(flat, 'base64').toString('hex'), Buffer.from(pem).toString('base64')];
}

/** Every 16-character window of `secrets` (flat forms) found in `text`. */
function fragmentsIn(text: string, secrets: readonly string[]): string[] {
  const windows = new Set<string>();
  for (const secret of secrets) {
    const flat = secret.replace(/\s+|\\n/g, '');
    for (let i = 0; i + 16 <= flat.length; i++) windows.add(flat.slice(i, i + 16));
  }
  const found: string[] = [];
  for (let i = 0; i + 16 <= text.length; i++) {
    const window = text.slice(i, i + 16);
    if (windows.has(window)) found.push(window);
  }
  return found;
}

/** The run leaked nothing, and with --json its stdout is empty (an error) or one parseable object. */
function expectClean(result: CliResult, secrets: readonly string[], json = true): void {
  const all = `${result.stdout}\n${result.stderr}`;
  expect(fragmentsIn(all, secrets)).toEqual([]);
  expect(secretsIn(all)).toEqual([]);
  expect(all).not.toContain('certificateOwnershipToken');
  if (json && result.stdout !== '') expect(() => JSON.parse(result.stdout)).not.toThrow();
  expect(result.stderr).not.toMatch(/please report this/);
}

function provisionArgs(...extra: string[]): string[] {
  n++;
  return [
    'provision',
    '--endpoint',
    env.sim.url,
    '--ca',
    env.files.ca,
    '--claim-cert',
    env.files.claimCert,
    '--template',
    'DemoTemplate',
    '--param',
    `SerialNumber=SN-secret-${n}`,
    '--out',
    join(env.dir, `out-${n}`),
    '--json',
    ...extra,
  ];
}

const claimSecrets = () => [...formsOf(env.sim.claimPrivateKey), body(env.sim.claimCertificate)];

describe('DEBUG=* prints no secret', () => {
  it('server keys: no piece of the device key, its certificate, the token or the claim key', async () => {
    const args = provisionArgs('--keys', 'server', '--claim-key', env.files.claimKey);
    const result = await runCli(args, { env: { DEBUG: '*', DEBUG_COLORS: '0' } });
    expect(result.code).toBe(0);
    // DEBUG=* is on: mqtt.js does log, only never a payload.
    expect(result.stderr).toMatch(/mqttjs:client/);
    const out = args[args.indexOf('--out') + 1] ?? '';
    const deviceKey = await readFile(join(out, 'private.pem.key'), 'utf8');
    const deviceCertificate = await readFile(join(out, 'certificate.pem.crt'), 'utf8');
    expectClean(result, [...formsOf(deviceKey), body(deviceCertificate), ...claimSecrets()]);
    expect(JSON.parse(result.stdout)).toHaveProperty('certificateId');
  });
});

describe('the claim key in the environment, in each encoding, with DEBUG=*', () => {
  const key = () => env.sim.claimPrivateKey;
  const cases: Array<[string, () => string, number, RegExp]> = [
    ['PEM', () => key(), 0, /^$/],
    ['PEM on one line with literal \\n (a CI secret)', () => key().trim().replaceAll('\n', '\\n'), 0, /^$/],
    ['PEM on one line, quoted', () => JSON.stringify(key()), 0, /^$/],
    [
      'base64 of the file in 76-column lines',
      () => Buffer.from(key()).toString('base64').replace(/.{76}/g, '$&\n'),
      2,
      /FLEET_PROVISION_CLAIM_KEY holds base64 of a PEM file .*decode it first/,
    ],
    [
      'base64 of the file on one line',
      () => Buffer.from(key()).toString('base64'),
      2,
      /FLEET_PROVISION_CLAIM_KEY holds base64 of a PEM file/,
    ],
    [
      'hex of the DER',
      () => Buffer.from(body(key()), 'base64').toString('hex'),
      2,
      /FLEET_PROVISION_CLAIM_KEY looks like hex/,
    ],
    [
      'the PEM body without its header lines',
      () =>
        key()
          .split('\n')
          .filter((l) => !l.startsWith('-----'))
          .join('\n'),
      2,
      /FLEET_PROVISION_CLAIM_KEY looks like the body of a PEM file without its first and last lines/,
    ],
  ];
  it.each(cases)('%s', async (_name, encode, code, message) => {
    const encoded = encode();
    const result = await runCli(provisionArgs(), {
      env: { DEBUG: '*', DEBUG_COLORS: '0', FLEET_PROVISION_CLAIM_KEY: encoded },
    });
    expect({ code: result.code, stderr: result.stderr }).toEqual({
      code,
      stderr: expect.stringMatching(/[\s\S]*/),
    });
    expectClean(result, [...claimSecrets(), encoded]);
    if (code === 0) expect(JSON.parse(result.stdout)).toHaveProperty('thingName');
    else expect(result.stderr).toMatch(message);
  });
});

describe('--json always parses', () => {
  it('when deviceConfiguration holds PEM-looking text (redacted as a value, not after serialising)', async () => {
    const args = provisionArgs('--claim-key', env.files.claimKey);
    args[args.indexOf('DemoTemplate')] = 'PemConfig';
    const result = await runCli(args);
    expect(result.code).toBe(0);
    const parsed: unknown = JSON.parse(result.stdout);
    expect(parsed).toMatchObject({ deviceConfiguration: { note: '[REDACTED]', plain: 'stays' } });
    expect(parsed).toHaveProperty('files');
  });
});

describe('claim credential mistakes are usage errors with a next step (exit 2)', () => {
  let otherKeyFile: string;
  let truncatedKeyFile: string;
  beforeAll(async () => {
    otherKeyFile = join(env.dir, 'other.key');
    await writeFile(
      otherKeyFile,
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
      { mode: 0o600 },
    );
    truncatedKeyFile = join(env.dir, 'truncated.key');
    const lines = env.sim.claimPrivateKey.trim().split('\n');
    await writeFile(truncatedKeyFile, `${lines.slice(0, 2).join('\n')}\n`, { mode: 0o600 });
  });

  it.each([
    [
      'a key that is not the certificate’s',
      () => ['--claim-key', otherKeyFile],
      /--claim-key does not belong to --claim-cert/,
    ],
    [
      'certificate and key swapped',
      () => ['--claim-key', env.files.claimCert, '--claim-cert', env.files.claimKey],
      /--claim-cert and --claim-key are swapped/,
    ],
    [
      'a truncated key',
      () => ['--claim-key', truncatedKeyFile],
      /--claim-key is not a readable private key: it may be cut short/,
    ],
    [
      'PEM text where a path belongs',
      () => ['--claim-key', env.sim.claimPrivateKey],
      /--claim-key holds PEM text, but flags take the path of a file.*FLEET_PROVISION_CLAIM_KEY/,
    ],
  ])('%s', async (_name, flags, message) => {
    const result = await runCli(provisionArgs(...flags()));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/needs a value/);
    expectClean(result, claimSecrets());
  });

  it('connects to nothing when the credentials are wrong', async () => {
    const before = env.sim.requests().filter((e) => e.type === 'connect').length;
    const result = await runCli(provisionArgs('--claim-key', otherKeyFile));
    expect(result.code).toBe(2);
    expect(env.sim.requests().filter((e) => e.type === 'connect').length).toBe(before);
  });
});

describe('plain MQTT', () => {
  let broker: TestBroker;
  let responder: BrokerResponder;
  let deviceKey: string;
  let deviceCertificate: string;
  const token = `tok-${'Z'.repeat(40)}-${Date.now()}`;
  const evilThing = 'evil\u001b]0;owned\u0007\u001b[2J\u009b31m';
  beforeAll(async () => {
    broker = await startAedes();
    responder = await startResponder(broker.url);
    const ca = await makeCa();
    deviceKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    deviceCertificate = await issueCertificate(ca, deviceKey);
    responder.answerer = (request) => {
      const answer =
        request.operation === 'RegisterThing'
          ? { thingName: evilThing, deviceConfiguration: { hint: '\u001b[31mred' } }
          : {
              certificateId: 'c'.repeat(64),
              certificatePem: deviceCertificate,
              privateKey: deviceKey,
              certificateOwnershipToken: token,
            };
      return [{ topic: `${request.topic}/accepted`, payload: encodePayload(answer, 'json') }];
    };
  });
  afterAll(async () => {
    await responder.close();
    await broker.close();
  });

  it('to loopback: says so honestly, ignores the claim flags with a warning, prints no terminal escapes', async () => {
    n++;
    const result = await runCli(
      [
        'provision',
        '--endpoint',
        broker.url,
        '--template',
        'T',
        '--claim-cert',
        env.files.claimCert,
        '--ca',
        env.files.ca,
        '--out',
        join(env.dir, `plain-${n}`),
      ],
      { env: { DEBUG: '*', DEBUG_COLORS: '0' } },
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/warning: --claim-cert, --ca are not used: plain mqtt:\/\/ has no TLS/);
    expect(result.stderr).toMatch(/connecting to mqtt:\/\/127\.0\.0\.1:\d+ over plain MQTT/);
    expect(result.stderr).not.toMatch(/with the claim certificate/);
    // The thing name came off the network: its escapes are shown, not acted on.
    expect(`${result.stdout}${result.stderr}`).not.toMatch(TERMINAL_CONTROLS);
    expect(result.stdout).toContain('provisioned thing evil\\x1b]0;owned\\x07');
    expectClean(result, [...formsOf(deviceKey), body(deviceCertificate), token], false);
  });

  it('to another machine: refused without --insecure, before any traffic', async () => {
    const result = await runCli(['provision', '--endpoint', 'mqtt://192.0.2.10:1883', '--template', 'T']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/plain MQTT to another machine.*--insecure/);
  });

  it('to another machine with --insecure: a warning first', async () => {
    const result = await runCli([
      'provision',
      '--endpoint',
      'mqtt://192.0.2.10:1883',
      '--template',
      'T',
      '--insecure',
      '--timeout',
      '300',
      '--retries',
      '0',
      '--out',
      join(env.dir, 'insecure'),
    ]);
    expect(result.stderr).toMatch(
      /^warning: provisioning over plain MQTT to mqtt:\/\/192\.0\.2\.10:1883 \(insecure: true\)/m,
    );
    expect([4, 5]).toContain(result.code);
  });
});

describe('terminal escapes in a rejection', () => {
  it('errorCode and errorMessage from the service are shown, not acted on', async () => {
    env.sim.faults.script('RegisterThing', {
      type: 'reject',
      statusCode: 400,
      errorCode: 'Bad\u001b[2J',
      errorMessage: 'no \u001b]0;owned\u0007 way \u009b31m',
    });
    try {
      const result = await runCli(provisionArgs('--claim-key', env.files.claimKey));
      expect(result.code).toBe(3);
      expect(result.stderr).not.toMatch(TERMINAL_CONTROLS);
      expect(result.stderr).toMatch(/Bad\\x1b\[2J/);
    } finally {
      env.sim.faults.clear();
    }
  });
});

describe('load', () => {
  it('a missing --template with --endpoint names --template only, and the help says when DemoTemplate applies', async () => {
    const result = await runCli(['load', '--devices', '1', '--endpoint', 'mqtt://127.0.0.1:1']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/missing required flag --template\./);
    expect(result.stderr).not.toMatch(/FLEET_PROVISION_TEMPLATE/);
    const help = await runCli(['load', '--help']);
    expect(help.stdout).toMatch(/Without --endpoint, --template defaults to DemoTemplate/);
    expect(help.stdout).toMatch(/with --endpoint it is required/);
  });
});

describe('terminal escapes in a client id', () => {
  it('the simulator prints a hostile client id shown, not acted on', async () => {
    const simDir = join(env.dir, 'sim-escapes');
    const sim = startCli(['simulate', '--port', '0', '--no-tls', '--out', simDir]);
    try {
      const endpoint = (await sim.line(/^endpoint: /)).replace('endpoint: ', '').trim();
      const provisioned = await runCli([
        'provision',
        '--endpoint',
        endpoint,
        '--template',
        'DemoTemplate',
        '--param',
        'SerialNumber=SN-esc',
        '--client-id',
        'dev\u001b]0;owned\u0007\u001b[2J',
        '--out',
        join(env.dir, 'escapes'),
      ]);
      expect(provisioned.code).toBe(0);
      await sim.line(/ RegisterThing json accepted client=/);
    } finally {
      sim.child.kill('SIGINT');
    }
    const result = await sim.exited;
    expect(result.stdout).toContain('client=dev\\x1b]0;owned\\x07\\x1b[2J');
    expect(`${result.stdout}${result.stderr}`).not.toMatch(TERMINAL_CONTROLS);
  });
});
