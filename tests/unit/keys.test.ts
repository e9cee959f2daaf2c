import { createPrivateKey, createPublicKey, generateKeyPairSync, webcrypto } from 'node:crypto';
import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  certificateMatchesCsr,
  certificateMatchesPrivateKey,
  checkCsr,
  createCsr,
  csrPublicKey,
  DEFAULT_CSR_SUBJECT,
  type DeviceKeyPair,
  generateKeyPair,
  KEY_TYPES,
  type KeyType,
  privateKeyPublicDer,
} from '../../src/device/keys.js';
import * as x509 from '../../src/device/x509.js';
import { FleetProvisioningError, InvalidArgumentError } from '../../src/protocol/errors.js';
import { issueCertificate, makeCa, type TestCa } from '../helpers/x509.js';

const EXPECTED: Record<KeyType, { type: 'ec' | 'rsa'; curve?: string; bits?: number; hash: string }> = {
  'ec-p256': { type: 'ec', curve: 'prime256v1', hash: 'SHA-256' },
  'ec-p384': { type: 'ec', curve: 'secp384r1', hash: 'SHA-384' },
  'rsa-2048': { type: 'rsa', bits: 2048, hash: 'SHA-256' },
  'rsa-3072': { type: 'rsa', bits: 3072, hash: 'SHA-256' },
};

const GARBAGE = [
  '',
  'not a pem',
  '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
  '-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n',
  `-----BEGIN CERTIFICATE-----\n${'A'.repeat(70_000)}\n-----END CERTIFICATE-----\n`,
];

let ca: TestCa;
const pairs = new Map<KeyType, DeviceKeyPair>();
const csrs = new Map<KeyType, string>();
const certificates = new Map<KeyType, string>();

function get<T>(map: Map<KeyType, T>, type: KeyType): T {
  const value = map.get(type);
  if (value === undefined) throw new Error(`no fixture for ${type}`);
  return value;
}

beforeAll(async () => {
  ca = await makeCa();
  for (const type of KEY_TYPES) {
    const pair = await generateKeyPair(type);
    pairs.set(type, pair);
    const csr = await createCsr({ keys: pair.keys });
    csrs.set(type, csr);
    certificates.set(type, await issueCertificate(ca, csr));
  }
});

describe('generateKeyPair', () => {
  it.each(KEY_TYPES)('makes a %s pair whose PEMs hold the same key', (type) => {
    const pair = get(pairs, type);
    expect(pair.type).toBe(type);
    expect(pair.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    expect(pair.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
    const privateKey = createPrivateKey(pair.privateKeyPem);
    const expected = EXPECTED[type];
    expect(privateKey.asymmetricKeyType).toBe(expected.type);
    if (expected.curve !== undefined)
      expect(privateKey.asymmetricKeyDetails?.namedCurve).toBe(expected.curve);
    if (expected.bits !== undefined)
      expect(privateKey.asymmetricKeyDetails?.modulusLength).toBe(expected.bits);
    expect(createPublicKey(privateKey).equals(createPublicKey(pair.publicKeyPem))).toBe(true);
    expect(pair.keys.privateKey.type).toBe('private');
    expect(pair.keys.privateKey.usages).toEqual(['sign']);
  });

  it('defaults to EC P-256 and makes a fresh key every time', async () => {
    const a = await generateKeyPair();
    const b = await generateKeyPair();
    expect(a.type).toBe('ec-p256');
    expect(createPrivateKey(a.privateKeyPem).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(a.privateKeyPem).not.toBe(b.privateKeyPem);
  });

  it.each(['ec-p521', 'rsa-1024', '', 'constructor'])('rejects the key type %p', async (type) => {
    // Reflect.apply: the point is a value the type does not allow, as plain JavaScript callers can pass.
    const attempt: Promise<unknown> = Reflect.apply(generateKeyPair, undefined, [type]);
    await expect(attempt).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(attempt).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('createCsr', () => {
  it.each(KEY_TYPES)('builds a %s CSR signed with the matching algorithm', async (type) => {
    const csrPem = get(csrs, type);
    expect(csrPem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----\n/);
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    expect(await csr.verify(webcrypto)).toBe(true);
    expect(csr.subject).toBe(DEFAULT_CSR_SUBJECT);
    const algorithm = csr.signatureAlgorithm as { name: string; hash?: { name: string } };
    expect(algorithm.hash?.name).toBe(EXPECTED[type].hash);
    const pair = get(pairs, type);
    const key = await csrPublicKey(csrPem);
    expect(key?.equals(createPublicKey(pair.publicKeyPem))).toBe(true);
  });

  it('puts the subject in the CSR', async () => {
    const pair = get(pairs, 'ec-p256');
    for (const subject of ['CN=SN-0042, O=Acme', 'CN=SN-0042,O=Acme']) {
      const csr = new x509.Pkcs10CertificateRequest(await createCsr({ keys: pair.keys, subject }));
      expect(csr.subject).toBe('CN=SN-0042, O=Acme');
    }
  });

  it.each(['no equals sign', 'CN=a, junk', 'XX=1', '=x'])('rejects the subject %p', async (subject) => {
    const pair = get(pairs, 'ec-p256');
    await expect(createCsr({ keys: pair.keys, subject })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('rejects a key that cannot sign a CSR', async () => {
    const hmac = await webcrypto.subtle.generateKey({ name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
    const pair = get(pairs, 'ec-p256');
    const attempt = createCsr({ keys: { publicKey: pair.keys.publicKey, privateKey: hmac } });
    await expect(attempt).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('certificateMatchesPrivateKey', () => {
  it.each(KEY_TYPES)('is true for a %s certificate and its key', (type) => {
    expect(certificateMatchesPrivateKey(get(certificates, type), get(pairs, type).privateKeyPem)).toBe(true);
  });

  it.each(KEY_TYPES)('is false for a %s certificate and any other key', (type) => {
    for (const other of KEY_TYPES) {
      if (other === type) continue;
      expect(certificateMatchesPrivateKey(get(certificates, type), get(pairs, other).privateKeyPem)).toBe(
        false,
      );
    }
  });

  it.each([
    ['rsa-2048', 'pkcs1', 'RSA PRIVATE KEY'],
    ['ec-p256', 'sec1', 'EC PRIVATE KEY'],
  ] as const)('reads a %s key as AWS hands it out (%s)', (type, format, label) => {
    const pem = createPrivateKey(get(pairs, type).privateKeyPem)
      .export({ type: format, format: 'pem' })
      .toString();
    expect(pem).toContain(`-----BEGIN ${label}-----`);
    expect(certificateMatchesPrivateKey(get(certificates, type), pem)).toBe(true);
    const other = type === 'rsa-2048' ? 'rsa-3072' : 'ec-p384';
    expect(certificateMatchesPrivateKey(get(certificates, other), pem)).toBe(false);
    // A label that does not match the body is no key at all.
    expect(certificateMatchesPrivateKey(get(certificates, type), pem.replaceAll(label, 'PRIVATE KEY'))).toBe(
      false,
    );
  });

  it('is false for another key of the same type', async () => {
    const stranger = await generateKeyPair('ec-p256');
    expect(certificateMatchesPrivateKey(get(certificates, 'ec-p256'), stranger.privateKeyPem)).toBe(false);
  });

  it('is false for the CA certificate', () => {
    expect(certificateMatchesPrivateKey(ca.certificatePem, get(pairs, 'ec-p256').privateKeyPem)).toBe(false);
  });

  it('is false, not an exception, for garbage on either side', () => {
    const certificate = get(certificates, 'ec-p256');
    const key = get(pairs, 'ec-p256').privateKeyPem;
    for (const junk of GARBAGE) {
      expect(certificateMatchesPrivateKey(junk, key)).toBe(false);
      expect(certificateMatchesPrivateKey(certificate, junk)).toBe(false);
    }
    expect(certificateMatchesPrivateKey(certificate.slice(0, certificate.length / 2), key)).toBe(false);
    expect(certificateMatchesPrivateKey(certificate, get(pairs, 'ec-p256').publicKeyPem)).toBe(false);
  });
});

describe('certificateMatchesCsr', () => {
  it.each(KEY_TYPES)('is true for a %s certificate issued for the CSR', async (type) => {
    expect(await certificateMatchesCsr(get(certificates, type), get(csrs, type))).toBe(true);
  });

  it('is false for a certificate of another key', async () => {
    for (const type of KEY_TYPES) {
      for (const other of KEY_TYPES) {
        if (other === type) continue;
        expect(await certificateMatchesCsr(get(certificates, type), get(csrs, other))).toBe(false);
      }
    }
    const stranger = await generateKeyPair('ec-p256');
    const strangerCertificate = await issueCertificate(ca, stranger.keys.publicKey);
    expect(await certificateMatchesCsr(strangerCertificate, get(csrs, 'ec-p256'))).toBe(false);
  });

  it('is false, not an exception, for garbage on either side', async () => {
    for (const junk of GARBAGE) {
      expect(await certificateMatchesCsr(junk, get(csrs, 'ec-p256'))).toBe(false);
      expect(await certificateMatchesCsr(get(certificates, 'ec-p256'), junk)).toBe(false);
    }
    expect(await csrPublicKey('junk')).toBeUndefined();
  });
});

describe('checkCsr', () => {
  it.each(KEY_TYPES)('accepts a %s CSR and describes its key', async (type) => {
    const summary = await checkCsr(get(csrs, type));
    const expected = EXPECTED[type];
    expect(summary.keyAlgorithm).toBe(expected.type);
    expect(summary.keySize).toBe(expected.bits ?? Number(type.slice(4)));
    expect(summary.subject).toBe(DEFAULT_CSR_SUBJECT);
    expect(
      createPublicKey({ key: summary.publicKeyDer, format: 'der', type: 'spki' }).equals(
        createPublicKey(get(pairs, type).publicKeyPem),
      ),
    ).toBe(true);
  });

  it('accepts an EC P-521 CSR made elsewhere', async () => {
    const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-521' }, true, [
      'sign',
      'verify',
    ]);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create(
      { name: 'CN=p521', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-512' } },
      webcrypto,
    );
    expect(await checkCsr(csr.toString('pem'))).toMatchObject({ keyAlgorithm: 'ec', keySize: 521 });
  });

  async function rejection(csrPem: string): Promise<FleetProvisioningError> {
    const error = await checkCsr(csrPem).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InvalidArgumentError);
    if (!(error instanceof FleetProvisioningError)) throw new Error('expected a FleetProvisioningError');
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).not.toContain('-----BEGIN');
    expect(error.message).not.toContain(csrPem.split('\n')[1] ?? 'unreachable');
    return error;
  }

  it('rejects a 1024-bit RSA key', async () => {
    const keys = await webcrypto.subtle.generateKey(
      {
        name: 'RSASSA-PKCS1-v1_5',
        modulusLength: 1024,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: 'SHA-256',
      },
      true,
      ['sign', 'verify'],
    );
    const csr = await x509.Pkcs10CertificateRequestGenerator.create(
      { name: 'CN=weak', keys, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } },
      webcrypto,
    );
    expect((await rejection(csr.toString('pem'))).message).toContain('1024-bit RSA key');
  });

  it('rejects an Ed25519 key', async () => {
    const keys = await webcrypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
    if (!('privateKey' in keys)) throw new Error('expected a key pair');
    const csr = await x509.Pkcs10CertificateRequestGenerator.create(
      { name: 'CN=ed', keys, signingAlgorithm: { name: 'Ed25519' } },
      webcrypto,
    );
    expect((await rejection(csr.toString('pem'))).message).toContain('ed25519 key');
  });

  it('rejects a CSR whose signature was not made by its key', async () => {
    const a = get(pairs, 'ec-p256');
    const b = await generateKeyPair('ec-p256');
    const forged = await createCsr({ keys: { publicKey: b.keys.publicKey, privateKey: a.keys.privateKey } });
    expect((await rejection(forged)).message).toContain('signature');
  });

  it.each(GARBAGE)('rejects garbage %#', async (junk) => {
    await rejection(junk);
  });

  it('rejects a truncated CSR and a certificate passed as a CSR', async () => {
    const csr = get(csrs, 'rsa-2048');
    await rejection(csr.slice(0, csr.length - 120));
    await rejection(get(certificates, 'ec-p256'));
  });
});

describe('the certificate check leaves OpenSSL clean', () => {
  /** A fresh EC P-256 private key imported through WebCrypto: fails when a stale OpenSSL error is queued. */
  async function importEcKey(): Promise<void> {
    const fresh = await generateKeyPair('ec-p256');
    const der = createPrivateKey(fresh.privateKeyPem).export({ type: 'pkcs8', format: 'der' });
    const key = await webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
    ]);
    expect(key.type).toBe('private');
  }

  it('an RSA certificate checked against an EC CSR, then a WebCrypto importKey, succeeds', async () => {
    expect(await certificateMatchesCsr(get(certificates, 'rsa-2048'), get(csrs, 'ec-p256'))).toBe(false);
    await importEcKey();
    expect(await certificateMatchesCsr(get(certificates, 'ec-p384'), get(csrs, 'rsa-3072'))).toBe(false);
    await importEcKey();
  });

  it('an RSA certificate checked against an EC private key, then a WebCrypto importKey, succeeds', async () => {
    expect(
      certificateMatchesPrivateKey(get(certificates, 'rsa-2048'), get(pairs, 'ec-p256').privateKeyPem),
    ).toBe(false);
    await importEcKey();
    expect(
      certificateMatchesPrivateKey(get(certificates, 'ec-p256'), get(pairs, 'rsa-2048').privateKeyPem),
    ).toBe(false);
    await importEcKey();
  });
});

describe('privateKeyPublicDer', () => {
  it.each(KEY_TYPES)('gives the public key OpenSSL derives from a %s key, in every PEM format', (type) => {
    const key = createPrivateKey(get(pairs, type).privateKeyPem);
    const expected = createPublicKey(key).export({ type: 'spki', format: 'der' });
    const formats = type.startsWith('rsa') ? (['pkcs8', 'pkcs1'] as const) : (['pkcs8', 'sec1'] as const);
    for (const format of formats) {
      const pem = key.export({ type: format, format: 'pem' }).toString();
      expect(privateKeyPublicDer(pem)?.toString('hex')).toBe(expected.toString('hex'));
    }
  });

  it('reads an EC P-521 key and an Ed25519 key through OpenSSL when it cannot read them itself', () => {
    for (const key of [
      generateKeyPairSync('ec', { namedCurve: 'secp521r1' }).privateKey,
      generateKeyPairSync('ed25519').privateKey,
    ]) {
      const expected = createPublicKey(key).export({ type: 'spki', format: 'der' });
      const pem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
      expect(privateKeyPublicDer(pem)?.toString('hex')).toBe(expected.toString('hex'));
    }
  });

  it('is undefined for a key whose DER was cut or altered, and for a public key', () => {
    const der = createPrivateKey(get(pairs, 'rsa-2048').privateKeyPem).export({
      type: 'pkcs1',
      format: 'der',
    });
    const pem = (body: Buffer) =>
      `-----BEGIN RSA PRIVATE KEY-----\n${body.toString('base64')}\n-----END RSA PRIVATE KEY-----\n`;
    expect(privateKeyPublicDer(pem(der))).toBeDefined();
    expect(privateKeyPublicDer(pem(der.subarray(0, der.length - 20)))).toBeUndefined();
    const altered = Buffer.from(der);
    altered[1] = 0x83; // a length field that runs past the end
    expect(privateKeyPublicDer(pem(altered))).toBeUndefined();
    expect(privateKeyPublicDer(get(pairs, 'rsa-2048').publicKeyPem)).toBeUndefined();
  });
});
