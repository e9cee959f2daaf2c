/**
 * The simulator's certificate authority: real X.509 made with `@peculiar/x509` over WebCrypto. One CA
 * signs the TLS server certificate, the claim certificate and every device certificate, so one PEM is all
 * a client needs to trust the server and all the server needs to check a client.
 */
import {
  createHash,
  createPrivateKey,
  generateKeyPair,
  type KeyObject,
  randomBytes,
  webcrypto,
} from 'node:crypto';
import { promisify } from 'node:util';
import * as x509 from '../device/x509.js';

const generateKeyPairAsync = promisify(generateKeyPair);
const subtle = webcrypto.subtle;
const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** AWS's own device certificates run to the end of 2049. */
const DEVICE_NOT_AFTER = new Date('2049-12-31T23:59:59Z');

/** Key types the simulator makes for CreateKeysAndCertificate. */
export type ServerKeyType = 'rsa-2048' | 'ec-p256';

/** A certificate with its private key, as PEM text. */
export interface PemPair {
  certificatePem: string;
  privateKeyPem: string;
}

/** The CA: its certificate, and a signing key that stays in WebCrypto. */
export interface CertificateAuthority {
  readonly certificatePem: string;
  /** PKCS#8 PEM of the CA key, for saving to an identity directory. */
  readonly privateKeyPem: string;
  readonly name: string;
  readonly signingKey: webcrypto.CryptoKey;
  readonly signingAlgorithm: webcrypto.Algorithm | webcrypto.EcdsaParams;
}

/** The id AWS gives a certificate: SHA-256 of its DER, in lowercase hex. */
export function certificateIdOf(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/** The id of a PEM certificate. */
export function certificateIdOfPem(pem: string): string {
  return certificateIdOf(new Uint8Array(new x509.X509Certificate(pem).rawData));
}

/** Make a new self-signed CA (EC P-256: quick to sign with, quick to verify). */
export async function createCertificateAuthority(): Promise<CertificateAuthority> {
  const keys = await subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
  const name = `CN=iot-fleet-provisioning simulator CA ${randomBytes(4).toString('hex')}, O=iot-fleet-provisioning`;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name,
    notBefore: backdated(),
    notAfter: new Date('2049-12-31T23:59:59Z'),
    keys,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await subtle.exportKey('pkcs8', keys.privateKey);
  return {
    certificatePem: certificate.toString('pem'),
    privateKeyPem: toPem(new Uint8Array(pkcs8), 'PRIVATE KEY'),
    name,
    signingKey: keys.privateKey,
    signingAlgorithm: SIGNING,
  };
}

/** Load a CA from its PEM certificate and PKCS#8 (or any Node-readable) private key. */
export async function loadCertificateAuthority(
  certificatePem: string,
  privateKeyPem: string,
): Promise<CertificateAuthority> {
  const certificate = new x509.X509Certificate(certificatePem);
  const key = createPrivateKey(privateKeyPem);
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  const details = key.asymmetricKeyDetails ?? {};
  let importAlgorithm: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams;
  let signingAlgorithm: webcrypto.Algorithm | webcrypto.EcdsaParams;
  if (key.asymmetricKeyType === 'rsa') {
    importAlgorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    signingAlgorithm = { name: 'RSASSA-PKCS1-v1_5' };
  } else if (key.asymmetricKeyType === 'ec') {
    const curve = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' }[String(details.namedCurve)];
    if (curve === undefined) throw new Error('The CA key must be RSA or EC P-256/384/521.');
    importAlgorithm = { name: 'ECDSA', namedCurve: curve };
    signingAlgorithm = SIGNING;
  } else {
    throw new Error('The CA key must be RSA or EC P-256/384/521.');
  }
  const signingKey = await subtle.importKey('pkcs8', pkcs8, importAlgorithm, false, ['sign']);
  return {
    certificatePem: certificate.toString('pem'),
    privateKeyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    name: certificate.subject,
    signingKey,
    signingAlgorithm,
  };
}

/** What kind of leaf certificate to issue. */
export interface IssueOptions {
  /** The subject's public key: SPKI DER, or a parsed public key (a CSR's). */
  publicKey: Uint8Array | x509.PublicKey;
  subject: string;
  usage: 'server' | 'client';
  /** For a server certificate: the DNS names and IP addresses it answers for. */
  altNames?: { dns?: string[]; ip?: string[] };
  notAfter?: Date;
}

/** A certificate the CA issued, with its id. */
export interface IssuedCertificate {
  certificatePem: string;
  certificateId: string;
}

/**
 * Issue a certificate signed by `ca`. A device certificate with the default validity is cut from a
 * template made once per CA, subject and usage (only its serial number and public key change) and signed
 * with WebCrypto: about 0.2 ms of CPU, where building it with `@peculiar/x509` costs about 2 ms, which
 * was the largest single cost of the simulator under load.
 */
export async function issueCertificate(
  ca: CertificateAuthority,
  options: IssueOptions,
): Promise<IssuedCertificate> {
  if (options.notAfter === undefined && options.altNames === undefined) {
    const key = `${options.subject}\0${options.usage}`;
    let templates = TEMPLATES.get(ca);
    if (templates === undefined) {
      templates = new Map();
      TEMPLATES.set(ca, templates);
    }
    let template = templates.get(key);
    if (template === undefined) {
      template = templateOf((await issueWithPeculiar(ca, options)).der);
      if (templates.size < 64) templates.set(key, template);
    }
    if (template !== undefined) return fromTemplate(ca, template, options.publicKey);
  }
  const { der, pem } = await issueWithPeculiar(ca, options);
  return { certificatePem: pem, certificateId: certificateIdOf(der) };
}

async function issueWithPeculiar(
  ca: CertificateAuthority,
  options: IssueOptions,
): Promise<{ der: Uint8Array; pem: string }> {
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
      true,
    ),
    new x509.ExtendedKeyUsageExtension(
      [options.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth],
      false,
    ),
  ];
  const alt = options.altNames;
  if (alt !== undefined) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension([
        ...(alt.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
        ...(alt.ip ?? []).map((value) => ({ type: 'ip' as const, value })),
      ]),
    );
  }
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: options.subject,
    issuer: ca.name,
    notBefore: backdated(),
    notAfter: options.notAfter ?? DEVICE_NOT_AFTER,
    publicKey: options.publicKey,
    signingKey: ca.signingKey,
    signingAlgorithm: ca.signingAlgorithm,
    extensions,
  });
  return { der: new Uint8Array(certificate.rawData), pem: certificate.toString('pem') };
}

/** The parts of an issued certificate that every certificate cut from it shares. */
interface Template {
  /** The TBSCertificate's version, up to (not including) its serial number. */
  readonly head: Uint8Array;
  /** signature algorithm, issuer, validity and subject, as DER. */
  readonly middle: Uint8Array;
  /** The extensions ([3]), as DER. */
  readonly tail: Uint8Array;
  /** The certificate's signatureAlgorithm element. */
  readonly algorithm: Uint8Array;
}

const TEMPLATES = new WeakMap<CertificateAuthority, Map<string, Template | undefined>>();

/** One DER element's header and extent. */
function element(der: Uint8Array, at: number): { tag: number; content: number; end: number } {
  const tag = der[at] ?? 0;
  let length = der[at + 1] ?? 0;
  let content = at + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + (der[content + i] ?? 0);
    content += bytes;
  }
  return { tag, content, end: content + length };
}

/** A DER element of `tag` around `parts`. */
function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  const length = parts.reduce((sum, part) => sum + part.length, 0);
  const size: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) size.unshift(rest & 0xff);
  const header = length < 0x80 ? [tag, length] : [tag, 0x80 | size.length, ...size];
  return Buffer.concat([Buffer.from(header), ...parts]);
}

/** A DER INTEGER of the unsigned big-endian `bytes` (leading zeros dropped, a sign byte added). */
function unsignedInteger(bytes: Uint8Array): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const body = bytes.subarray(start);
  return tlv(0x02, ...((body[0] ?? 0) & 0x80 ? [Buffer.of(0)] : []), body);
}

/** Split a certificate issued by `@peculiar/x509` into a template; undefined when it has another shape. */
function templateOf(der: Uint8Array): Template | undefined {
  const certificate = element(der, 0);
  const tbs = element(der, certificate.content);
  const algorithm = element(der, tbs.end);
  const parts: { start: number; tag: number; end: number }[] = [];
  for (let at = tbs.content; at < tbs.end; ) {
    const part = element(der, at);
    parts.push({ start: at, tag: part.tag, end: part.end });
    at = part.end;
  }
  // version, serial, signature, issuer, validity, subject, key, extensions
  const tags = parts.map((p) => p.tag);
  if (tags.join() !== [0xa0, 0x02, 0x30, 0x30, 0x30, 0x30, 0x30, 0xa3].join()) return undefined;
  const [version, serial, signature, , , subject, key, extensions] = parts;
  if (!version || !serial || !signature || !subject || !key || !extensions) return undefined;
  return {
    head: der.slice(version.start, version.end),
    middle: der.slice(signature.start, subject.end),
    tail: der.slice(extensions.start, extensions.end),
    algorithm: der.slice(tbs.end, algorithm.end),
  };
}

/** A certificate cut from `template` for `publicKey`, with a fresh serial number, signed by `ca`. */
async function fromTemplate(
  ca: CertificateAuthority,
  template: Template,
  publicKey: Uint8Array | x509.PublicKey,
): Promise<IssuedCertificate> {
  const spki = publicKey instanceof Uint8Array ? publicKey : new Uint8Array(publicKey.rawData);
  const tbs = tlv(
    0x30,
    template.head,
    unsignedInteger(Buffer.from(serialNumber(), 'hex')),
    template.middle,
    spki,
    template.tail,
  );
  let signature: Uint8Array = new Uint8Array(await subtle.sign(ca.signingAlgorithm, ca.signingKey, tbs));
  if (ca.signingAlgorithm.name === 'ECDSA') {
    // WebCrypto gives r and s side by side; X.509 wants ECDSA-Sig-Value, a SEQUENCE of two INTEGERs.
    const half = signature.length / 2;
    signature = tlv(
      0x30,
      unsignedInteger(signature.subarray(0, half)),
      unsignedInteger(signature.subarray(half)),
    );
  }
  const der = tlv(0x30, tbs, template.algorithm, tlv(0x03, Buffer.of(0), signature));
  return { certificatePem: toPem(der, 'CERTIFICATE'), certificateId: certificateIdOf(der) };
}

/** A fresh key pair: its SPKI DER for the certificate and its private key as PEM for the device. */
export async function generateDeviceKey(
  type: ServerKeyType,
): Promise<{ publicKeyDer: Uint8Array; privateKeyPem: string }> {
  const { publicKey, privateKey } =
    type === 'rsa-2048'
      ? await generateKeyPairAsync('rsa', { modulusLength: 2048 })
      : await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
  return { publicKeyDer: spkiOf(publicKey), privateKeyPem: traditionalPem(privateKey) };
}

/** Issue a TLS certificate with its own EC P-256 key (the server's, the claim's). */
export async function issueKeyPair(
  ca: CertificateAuthority,
  options: Omit<IssueOptions, 'publicKey'>,
): Promise<PemPair> {
  const { publicKeyDer, privateKeyPem } = await generateDeviceKey('ec-p256');
  const { certificatePem } = await issueCertificate(ca, { ...options, publicKey: publicKeyDer });
  return { certificatePem, privateKeyPem };
}

function spkiOf(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ type: 'spki', format: 'der' }));
}

/** AWS hands out `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1); EC keys go out in their SEC 1 form alike. */
function traditionalPem(key: KeyObject): string {
  const type = key.asymmetricKeyType === 'rsa' ? 'pkcs1' : 'sec1';
  return key.export({ type, format: 'pem' }).toString();
}

function toPem(der: Uint8Array, label: string): string {
  const body = Buffer.from(der)
    .toString('base64')
    .replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

/** A positive 16-byte serial number (the top bit cleared, so DER needs no sign byte). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

/** Start of validity a minute ago, so a client whose clock lags a little still accepts the certificate. */
function backdated(): Date {
  return new Date(Date.now() - 60_000);
}
