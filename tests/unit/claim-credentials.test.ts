import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { describeProgress } from '../../src/cli/progress-text.js';
import { FleetProvisioningError } from '../../src/protocol/errors.js';
import { planProvision } from '../../src/provision/plan.js';
import { provision } from '../../src/provision/provision.js';
import { issueCertificate, makeCa } from '../helpers/x509.js';

let claimCertificate: string;
let claimPrivateKey: string;
let otherKey: string;
let caCertificate: string;

beforeAll(async () => {
  const ca = await makeCa();
  caCertificate = ca.certificatePem;
  const pair = () =>
    generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
  claimPrivateKey = pair();
  otherKey = pair();
  claimCertificate = await issueCertificate(ca, claimPrivateKey);
});

/** Nothing listens on port 1: a mistake not caught before traffic shows up as a connection failure. */
const ENDPOINT = 'mqtts://127.0.0.1:1';

async function failure(options: Record<string, unknown>): Promise<FleetProvisioningError> {
  const error: unknown = await provision({
    endpoint: ENDPOINT,
    claimCertificate,
    claimPrivateKey,
    caCertificate,
    templateName: 'T',
    retry: false,
    timeoutMs: 2_000,
    ...options,
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof FleetProvisioningError))
    throw new Error(`expected a FleetProvisioningError, got ${String(error)}`);
  return error;
}

const body = (pem: string) =>
  pem
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('-----'))
    .join('');

/** No 16-character piece of the key's body in the message. */
function expectNoKey(message: string, pem: string): void {
  const flat = body(pem);
  for (let i = 0; i + 16 <= flat.length; i += 8) expect(message).not.toContain(flat.slice(i, i + 16));
}

describe('claim credentials that look like PEM but are not usable: INVALID_ARGUMENT before any traffic', () => {
  it('a key that does not belong to the certificate', async () => {
    const error = await failure({ claimPrivateKey: otherKey });
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(
      /claimPrivateKey does not belong to claimCertificate.*Use the key file that came with/,
    );
    expectNoKey(error.message, otherKey);
  });

  it('certificate and key swapped', async () => {
    const error = await failure({ claimCertificate: claimPrivateKey, claimPrivateKey: claimCertificate });
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/claimCertificate and claimPrivateKey are swapped.*Exchange them/);
    expectNoKey(error.message, claimPrivateKey);
  });

  it('a truncated key', async () => {
    const lines = claimPrivateKey.trim().split('\n');
    const error = await failure({ claimPrivateKey: `${lines.slice(0, 2).join('\n')}\n` });
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/claimPrivateKey is not a readable private key: it may be cut short/);
  });

  it('bad base64 inside the PEM', async () => {
    const lines = claimPrivateKey.trim().split('\n');
    const broken = [
      lines[0],
      `${(lines[1] ?? '').slice(0, 10)}!!**${(lines[1] ?? '').slice(14)}`,
      ...lines.slice(2),
    ];
    const error = await failure({ claimPrivateKey: `${broken.join('\n')}\n` });
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/claimPrivateKey is not a readable private key/);
  });

  it('a damaged certificate', async () => {
    const error = await failure({ claimCertificate: claimCertificate.replace(/\n[A-Za-z0-9+/]{20}/, '\n') });
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/claimCertificate is not a readable certificate/);
  });

  it('accepts a one-line secret with literal \\n sequences (it gets as far as connecting)', async () => {
    const error = await failure({
      claimCertificate: claimCertificate.replaceAll('\n', '\\n'),
      claimPrivateKey: claimPrivateKey.trim().replaceAll('\n', '\\n'),
      caCertificate: caCertificate.replaceAll('\n', '\\n'),
    });
    expect(error.code).toBe('CONNECTION_LOST');
  });
});

describe('inputs that are not PEM at all', () => {
  it('a file path where the content is expected is named as the mistake', async () => {
    const error = await failure({ claimPrivateKey: './certs/claim.private.pem.key' });
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(
      /claimPrivateKey looks like a file path \("\.\/certs\/claim\.private\.pem\.key"\).*file's content/,
    );
  });

  it('a missing key says which and why', async () => {
    const error = await failure({ claimPrivateKey: undefined });
    expect(error.message).toMatch(
      /claimPrivateKey is missing: connecting to mqtts:\/\/127\.0\.0\.1:1 needs the private key/,
    );
  });

  it.each([
    [
      'base64 of the file',
      (pem: string) => Buffer.from(pem).toString('base64').replace(/.{76}/g, '$&\n'),
      /base64 of a PEM file/,
    ],
    [
      'the body without its header lines',
      (pem: string) =>
        pem
          .split('\n')
          .filter((l) => !l.startsWith('-----'))
          .join('\n'),
      /body of a PEM file without its first and last lines/,
    ],
    ['hex', (pem: string) => Buffer.from(body(pem), 'base64').toString('hex'), /looks like hex/],
  ])('a key given as %s is described, never repeated', async (_name, encode, expected) => {
    const encoded = encode(claimPrivateKey);
    const error = await failure({ claimPrivateKey: encoded });
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(expected);
    expectNoKey(error.message, claimPrivateKey);
    expect(error.message).not.toContain(encoded.slice(20, 36));
  });

  it('a CA that is not PEM gets a complete message', async () => {
    const error = await failure({ caCertificate: 'AmazonRootCA1' });
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(
      /^caCertificate must be the CA certificate as PEM text \(.*\); what it holds is not PEM\.$/,
    );
    expect(error.message).not.toContain('[REDACTED]');
  });
});

describe('provision() options', () => {
  it('a misspelled option is INVALID_ARGUMENT with a suggestion', async () => {
    const error = await failure({ outdir: './credentials' });
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/Unknown option "outdir" in provision\(\): did you mean "outDir"\?/);
    const other = await failure({ timeout: 5 });
    expect(other.message).toMatch(/did you mean "timeoutMs"\?/);
  });

  it('plain mqtt:// to another machine needs insecure: true; loopback does not', async () => {
    const error = await failure({ endpoint: 'mqtt://192.0.2.10:1883' });
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/plain MQTT to another machine.*insecure: true \(CLI: --insecure\)/);
    expect(() => planProvision({ endpoint: 'mqtt://localhost:1883', templateName: 'T' })).not.toThrow();
    expect(() => planProvision({ endpoint: 'mqtt://127.0.0.2:1883', templateName: 'T' })).not.toThrow();
    expect(() => planProvision({ endpoint: 'mqtt://[::1]:1883', templateName: 'T' })).not.toThrow();
  });

  it('the progress line does not claim a certificate on plaintext', () => {
    const text = describeProgress({ step: 'connecting', endpoint: 'mqtt://127.0.0.1:1883', attempt: 1 }).text;
    expect(text).not.toMatch(/claim certificate/);
    expect(text).toMatch(/plain MQTT/);
    expect(describeProgress({ step: 'connecting', endpoint: 'mqtts://h:8883', attempt: 1 }).text).toMatch(
      /with the claim certificate/,
    );
  });
});

describe('docs/troubleshooting.md', () => {
  it('quotes each of these messages as the library produces it', async () => {
    const doc = (await readFile(new URL('../../docs/troubleshooting.md', import.meta.url), 'utf8')).replace(
      /\s+/g,
      ' ',
    );
    const lines = claimPrivateKey.trim().split('\n');
    const encrypted = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' })
      .toString();
    const cases: Array<Record<string, unknown>> = [
      { claimPrivateKey: otherKey },
      { claimCertificate: claimPrivateKey, claimPrivateKey: claimCertificate },
      { claimPrivateKey: `${lines.slice(0, 2).join('\n')}\n` },
      { claimPrivateKey: encrypted },
      { claimPrivateKey: './claim.private.pem.key' },
      { caCertificate: 'hello' },
      { endpoint: 'mqtt://192.0.2.10:1883' },
      { endpoint: 'mqtts://user:s3cret@host:8883' },
    ];
    for (const options of cases) {
      const error = await failure(options);
      expect(doc).toContain(error.message);
    }
  });
});

describe('a path without the usual look', () => {
  it('is recognised when it names an existing file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'claim-path-'));
    const cwd = process.cwd();
    try {
      await writeFile(join(dir, 'claimkey'), claimPrivateKey, { mode: 0o600 });
      process.chdir(dir);
      const error = await failure({ claimPrivateKey: 'claimkey' });
      expect(error.message).toMatch(/claimPrivateKey looks like a file path \("claimkey"\)/);
    } finally {
      process.chdir(cwd);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
