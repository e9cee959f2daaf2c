/**
 * Device-side keys: a key pair made on the device, a PKCS#10 CSR for it, and the checks that a certificate
 * the service issued belongs to the key or CSR it answers.
 *
 * `@peculiar/x509` (with the `reflect-metadata` polyfill it needs, see x509.ts) costs about 130 ms
 * to import, so it is loaded with `import()` inside the functions that build or read a CSR, never at
 * module level: importing the package stays cheap, and the server-keys path never pays for it.
 * Private keys are read with Node's own `createPrivateKey`; a certificate is matched to a key by walking its
 * DER to the SubjectPublicKeyInfo and comparing bytes (see {@link certificateHoldsPublicKey}).
 */
import {
  createPrivateKey,
  createPublicKey,
  KeyObject,
  webcrypto as nodeWebcrypto,
  type webcrypto,
} from 'node:crypto';
import { InvalidArgumentError } from '../protocol/errors.js';
import { rememberSecret } from '../protocol/redact.js';

/** The key types a device can make. AWS IoT accepts each of them in a CSR. */
export type KeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-3072';

/** Every {@link KeyType}, in the order of the docs. */
export const KEY_TYPES: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072'];

/** A key pair made on the device. `privateKeyPem` is a secret: store it, never log it. */
export interface DeviceKeyPair {
  /** The algorithm and size. */
  readonly type: KeyType;
  /** The WebCrypto keys, for signing the CSR. The private key is extractable (it was exported once). */
  readonly keys: webcrypto.CryptoKeyPair;
  /** PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). */
  readonly privateKeyPem: string;
  /** SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`). */
  readonly publicKeyPem: string;
}

/** What a CSR's key is, as {@link checkCsr} found it. */
export interface CsrSummary {
  /** `'rsa'` or `'ec'`. */
  readonly keyAlgorithm: 'rsa' | 'ec';
  /** RSA modulus length in bits, or the EC curve's field size (256, 384, 521). */
  readonly keySize: number;
  /** The subject as an RFC 4514-like string (`CN=...`). */
  readonly subject: string;
  /** The CSR's public key, SubjectPublicKeyInfo DER. */
  readonly publicKeyDer: Buffer;
}

type SigningAlgorithm = webcrypto.RsaHashedImportParams | webcrypto.EcdsaParams;

const RSA_EXPONENT = new Uint8Array([1, 0, 1]);

/** WebCrypto generation parameters per key type. The CSR's signature algorithm follows from the key. */
const KEY_SPECS: Record<KeyType, webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams> = {
  'ec-p256': { name: 'ECDSA', namedCurve: 'P-256' },
  'ec-p384': { name: 'ECDSA', namedCurve: 'P-384' },
  'rsa-2048': {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: 2048,
    publicExponent: RSA_EXPONENT,
    hash: 'SHA-256',
  },
  'rsa-3072': {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: 3072,
    publicExponent: RSA_EXPONENT,
    hash: 'SHA-256',
  },
};

/** The subject a CSR gets when the caller names none. AWS IoT replaces it in the certificate anyway. */
export const DEFAULT_CSR_SUBJECT = 'CN=AWS IoT Device';

/** The largest CSR or certificate PEM we parse; real ones are a few KiB. */
const MAX_PEM_LENGTH = 64 * 1024;

/**
 * Make a key pair on the device with WebCrypto. The private key never leaves this process unless you
 * store or send it.
 * @throws {InvalidArgumentError} for an unknown key type.
 * @example
 * const device = await generateKeyPair('ec-p256');
 * const csr = await createCsr({ keys: device.keys });
 */
export async function generateKeyPair(type: KeyType = 'ec-p256'): Promise<DeviceKeyPair> {
  const spec = Object.hasOwn(KEY_SPECS, type) ? KEY_SPECS[type] : undefined;
  if (spec === undefined) {
    throw new InvalidArgumentError(
      `Unknown key type ${JSON.stringify(String(type).slice(0, 40))}: use one of ${KEY_TYPES.join(', ')}.`,
    );
  }
  // Extractable because the private key must be written to disk as PKCS#8; WebCrypto cannot export
  // a non-extractable key, and the CSR signature needs the same key.
  const keys = await nodeWebcrypto.subtle.generateKey(spec, true, ['sign', 'verify']);
  const privateKeyPem = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicKeyPem = KeyObject.from(keys.publicKey).export({ type: 'spki', format: 'pem' }).toString();
  rememberSecret(privateKeyPem);
  return { type, keys, privateKeyPem, publicKeyPem };
}

/** The signature algorithm that goes with a WebCrypto key: SHA-384 for P-384, SHA-512 for P-521, else SHA-256. */
function signingAlgorithmFor(key: webcrypto.CryptoKey): SigningAlgorithm {
  const { algorithm } = key;
  if (algorithm.name === 'ECDSA' && 'namedCurve' in algorithm) {
    const curve = algorithm.namedCurve;
    return { name: 'ECDSA', hash: curve === 'P-384' ? 'SHA-384' : curve === 'P-521' ? 'SHA-512' : 'SHA-256' };
  }
  if (algorithm.name === 'RSASSA-PKCS1-v1_5') return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  throw new InvalidArgumentError(
    `Cannot sign a CSR with a ${algorithm.name} key: use an ECDSA or RSASSA-PKCS1-v1_5 key (see generateKeyPair).`,
  );
}

/**
 * Build a PKCS#10 certificate signing request for `keys`, signed with its private key (ECDSA with
 * SHA-256 on P-256 and SHA-384 on P-384; RSA PKCS#1 v1.5 with SHA-256). Loads `@peculiar/x509` on
 * first use.
 * @param options.keys the pair from {@link generateKeyPair} (its `keys` field).
 * @param options.subject an X.500 name such as `CN=SN-0042, O=Acme`; default `CN=AWS IoT Device`.
 * @returns the CSR as PEM (`-----BEGIN CERTIFICATE REQUEST-----`).
 * @throws {InvalidArgumentError} when the subject cannot be parsed or the key cannot sign.
 */
export async function createCsr(options: {
  keys: webcrypto.CryptoKeyPair;
  subject?: string;
}): Promise<string> {
  const signingAlgorithm = signingAlgorithmFor(options.keys.privateKey);
  const x509 = await import('./x509.js');
  const subject = options.subject ?? DEFAULT_CSR_SUBJECT;
  const invalid = 'The CSR subject is not a valid X.500 name: write it as "CN=name, O=organisation".';
  let name: InstanceType<typeof x509.Name>;
  try {
    name = new x509.Name(subject);
  } catch (error) {
    throw new InvalidArgumentError(invalid, { cause: error });
  }
  // The parser skips what it does not understand ("CN=a, junk" becomes "CN=a"), so compare the round trip.
  if (
    name.toString() !==
    subject
      .trim()
      .split(/\s*,\s*/)
      .join(', ')
  )
    throw new InvalidArgumentError(invalid);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    { name, keys: options.keys, signingAlgorithm },
    nodeWebcrypto,
  );
  return csr.toString('pem');
}

/**
 * Check a CSR the caller supplied before it is sent: it parses, its signature verifies with its own key
 * (proof that the caller holds the private key), and its key is one AWS IoT signs: RSA of 2048 bits or
 * more, or EC on P-256, P-384 or P-521. Loads `@peculiar/x509` on first use.
 * @throws {InvalidArgumentError} saying what is wrong with the CSR (never echoing it).
 */
export async function checkCsr(csrPem: string): Promise<CsrSummary> {
  if (typeof csrPem !== 'string' || !csrPem.includes('-----BEGIN') || csrPem.length > MAX_PEM_LENGTH) {
    throw new InvalidArgumentError(
      'The CSR is not PEM text: pass the content of the .csr file (a certificate request block between lines of dashes).',
    );
  }
  const x509 = await import('./x509.js');
  let csr: InstanceType<typeof x509.Pkcs10CertificateRequest>;
  let publicKey: KeyObject;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
    publicKey = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch (error) {
    throw new InvalidArgumentError(
      'The CSR cannot be parsed as a PKCS#10 certificate request: check that it is a complete PEM file.',
      { cause: error },
    );
  }
  const summary = describeKey(publicKey);
  if (summary === undefined) {
    throw new InvalidArgumentError(
      `The CSR holds a ${publicKey.asymmetricKeyType ?? 'unknown'} key, which AWS IoT does not sign: ` +
        'use RSA (2048 bits or more) or EC (P-256, P-384 or P-521).',
    );
  }
  if (summary.keyAlgorithm === 'rsa' && summary.keySize < 2048) {
    throw new InvalidArgumentError(
      `The CSR holds a ${summary.keySize}-bit RSA key: AWS IoT needs 2048 bits or more.`,
    );
  }
  let verified: boolean;
  try {
    verified = await csr.verify(nodeWebcrypto);
  } catch (error) {
    throw new InvalidArgumentError('The CSR signature cannot be checked: make a new CSR.', { cause: error });
  }
  if (!verified) {
    throw new InvalidArgumentError(
      'The CSR signature does not match its public key: sign it with the private key it names.',
    );
  }
  return {
    ...summary,
    subject: csr.subject,
    publicKeyDer: publicKey.export({ type: 'spki', format: 'der' }),
  };
}

const EC_CURVE_SIZES: Readonly<Record<string, number>> = { prime256v1: 256, secp384r1: 384, secp521r1: 521 };

function describeKey(key: KeyObject): Pick<CsrSummary, 'keyAlgorithm' | 'keySize'> | undefined {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'rsa' && details?.modulusLength !== undefined) {
    return { keyAlgorithm: 'rsa', keySize: details.modulusLength };
  }
  const curveSize = details?.namedCurve === undefined ? undefined : EC_CURVE_SIZES[details.namedCurve];
  if (key.asymmetricKeyType === 'ec' && curveSize !== undefined)
    return { keyAlgorithm: 'ec', keySize: curveSize };
  return undefined;
}

/** A single unencrypted PEM private key: its label and base64 body. */
const PLAIN_KEY_PEM =
  /^-----BEGIN (RSA |EC )?PRIVATE KEY-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END (RSA |EC )?PRIVATE KEY-----\s*$/;

/**
 * Parse a private key. When the PEM label names its format (AWS hands out PKCS#1 `RSA PRIVATE KEY`), the
 * DER goes to OpenSSL with that format, which skips trying every decoder in turn: for an RSA 2048 key
 * about 0.25 ms instead of 0.65 ms, on the path between the certificate and RegisterThing.
 */
function privateKeyObject(pem: string): KeyObject {
  const match = PLAIN_KEY_PEM.exec(pem.trim());
  if (match === null || match[1] !== match[3]) return createPrivateKey(pem);
  const type = match[1] === 'RSA ' ? 'pkcs1' : match[1] === 'EC ' ? 'sec1' : 'pkcs8';
  return createPrivateKey({ key: Buffer.from(match[2] ?? '', 'base64'), format: 'der', type });
}

/**
 * True when `certificatePem` certifies the public half of `privateKeyPem` (PEM, PKCS#8 or PKCS#1/SEC1).
 * Returns false, never throws, for anything that does not parse: a garbled answer simply does not match.
 * Callers turn `false` into `INVALID_RESPONSE`.
 */
export function certificateMatchesPrivateKey(certificatePem: string, privateKeyPem: string): boolean {
  const publicKeyDer = privateKeyPublicDer(privateKeyPem);
  return publicKeyDer !== undefined && certificateHoldsPublicKey(certificatePem, publicKeyDer);
}

/**
 * The public half of a private key, SubjectPublicKeyInfo DER, or undefined when the key does not parse.
 * Derive it once and check any number of certificates against it with {@link certificateHoldsPublicKey}.
 */
export function privateKeyPublicDer(privateKeyPem: string): Buffer | undefined {
  try {
    if (typeof privateKeyPem !== 'string' || privateKeyPem.length > MAX_PEM_LENGTH) return undefined;
    const match = PLAIN_KEY_PEM.exec(privateKeyPem.trim());
    if (match !== null && match[1] === match[3]) {
      const der = Buffer.from(match[2] ?? '', 'base64');
      const read =
        match[1] === 'RSA ' ? rsaPublicDer(der) : match[1] === 'EC ' ? ecPublicDer(der) : pkcs8PublicDer(der);
      if (read !== undefined) return read;
    }
    return createPublicKey(privateKeyObject(privateKeyPem)).export({ type: 'spki', format: 'der' });
  } catch {
    return undefined;
  }
}

/**
 * The public half of a private key, read from its DER without OpenSSL: an RSA key (PKCS#1) carries its
 * modulus and exponent, an EC key (SEC1) its curve and public point. OpenSSL's own key comparison looks
 * at exactly these. Parsing the key with OpenSSL instead costs about 0.3 ms for RSA 2048, on the path
 * between the certificate and RegisterThing. Undefined when the DER is not that structure in full, or
 * holds what this reader does not handle (then OpenSSL decides).
 */
function rsaPublicDer(der: Buffer): Buffer | undefined {
  // RSAPrivateKey ::= SEQUENCE { version 0, n, e, d, p, q, dp, dq, qinv } (RFC 8017), two-prime only.
  const outer = derAt(der, 0, der.length);
  if (outer === undefined || outer.tag !== SEQUENCE || outer.end !== der.length) return undefined;
  const fields: DerElement[] = [];
  for (let at = outer.contentStart; at < outer.end; ) {
    const field = derAt(der, at, outer.end);
    if (field === undefined || field.tag !== INTEGER || field.end === field.contentStart) return undefined;
    fields.push(field);
    at = field.end;
  }
  const [version, n, e] = fields;
  if (fields.length !== 9 || version === undefined || n === undefined || e === undefined) return undefined;
  if (version.end - version.contentStart !== 1 || der[version.contentStart] !== 0) return undefined;
  const key = derTlv(SEQUENCE, der.subarray(n.start, e.end));
  return derTlv(SEQUENCE, RSA_ALGORITHM, derTlv(BIT_STRING, Buffer.of(0), key));
}

function ecPublicDer(der: Buffer, curveFromPkcs8?: Buffer): Buffer | undefined {
  // ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING, [0] curve OID, [1] public key } (RFC 5915).
  const outer = derAt(der, 0, der.length);
  if (outer === undefined || outer.tag !== SEQUENCE || outer.end !== der.length) return undefined;
  const version = derAt(der, outer.contentStart, outer.end);
  if (version?.tag !== INTEGER || version.end - version.contentStart !== 1 || der[version.contentStart] !== 1)
    return undefined;
  const secret = derAt(der, version.end, outer.end);
  if (secret?.tag !== OCTET_STRING) return undefined;
  let next = derAt(der, secret.end, outer.end);
  let curve = curveFromPkcs8;
  if (next?.tag === EXPLICIT_0) {
    const oid = derAt(der, next.contentStart, next.end);
    if (oid?.tag !== OID || oid.end !== next.end) return undefined;
    const named = der.subarray(oid.start, oid.end);
    if (curve !== undefined && Buffer.compare(curve, named) !== 0) return undefined;
    curve = named;
    next = derAt(der, next.end, outer.end);
  }
  if (next?.tag !== EXPLICIT_1 || next.end !== outer.end || curve === undefined) return undefined;
  const point = derAt(der, next.contentStart, next.end);
  // An uncompressed point (0x04), as OpenSSL writes it; anything else is left to OpenSSL.
  if (point?.tag !== BIT_STRING || point.end !== next.end || der[point.contentStart] !== 0) return undefined;
  if (der[point.contentStart + 1] !== 0x04) return undefined;
  return derTlv(SEQUENCE, derTlv(SEQUENCE, EC_PUBLIC_KEY_OID, curve), der.subarray(point.start, point.end));
}

function pkcs8PublicDer(der: Buffer): Buffer | undefined {
  // PrivateKeyInfo ::= SEQUENCE { version 0, AlgorithmIdentifier, privateKey OCTET STRING, ... } (RFC 5208).
  const outer = derAt(der, 0, der.length);
  if (outer === undefined || outer.tag !== SEQUENCE || outer.end !== der.length) return undefined;
  const version = derAt(der, outer.contentStart, outer.end);
  if (version?.tag !== INTEGER || version.end - version.contentStart !== 1 || der[version.contentStart] !== 0)
    return undefined;
  const algorithm = derAt(der, version.end, outer.end);
  if (algorithm?.tag !== SEQUENCE) return undefined;
  const key = derAt(der, algorithm.end, outer.end);
  // Attributes after the key are allowed by the format but never written by Node or OpenSSL.
  if (key?.tag !== OCTET_STRING || key.end !== outer.end) return undefined;
  const inner = der.subarray(key.contentStart, key.end);
  const identifier = der.subarray(algorithm.start, algorithm.end);
  if (Buffer.compare(identifier, RSA_ALGORITHM) === 0) return rsaPublicDer(inner);
  const oid = derAt(der, algorithm.contentStart, algorithm.end);
  if (oid === undefined || Buffer.compare(der.subarray(oid.start, oid.end), EC_PUBLIC_KEY_OID) !== 0)
    return undefined;
  const curve = derAt(der, oid.end, algorithm.end);
  if (curve?.tag !== OID || curve.end !== algorithm.end) return undefined;
  return ecPublicDer(inner, der.subarray(curve.start, curve.end));
}

/** A DER element of `tag` around `parts`. */
function derTlv(tag: number, ...parts: Uint8Array[]): Buffer {
  const length = parts.reduce((sum, part) => sum + part.length, 0);
  const header =
    length < 0x80
      ? [tag, length]
      : length < 0x100
        ? [tag, 0x81, length]
        : length < 0x10000
          ? [tag, 0x82, length >> 8, length & 0xff]
          : [tag, 0x83, length >> 16, (length >> 8) & 0xff, length & 0xff];
  return Buffer.concat([Buffer.from(header), ...parts]);
}

/**
 * True when `certificatePem` certifies the public key inside `csrPem`. Returns false, never throws, for
 * anything that does not parse. Callers turn `false` into `INVALID_RESPONSE`.
 */
export async function certificateMatchesCsr(certificatePem: string, csrPem: string): Promise<boolean> {
  const publicKeyDer = csrPublicKeyDer(csrPem);
  return publicKeyDer !== undefined && certificateHoldsPublicKey(certificatePem, publicKeyDer);
}

/**
 * The one check that a certificate belongs to a key: true when the SubjectPublicKeyInfo inside
 * `certificatePem` is `publicKeyDer` (SPKI DER, as {@link privateKeyPublicDer}, {@link csrPublicKeyDer} or
 * `KeyObject.export({ type: 'spki', format: 'der' })` give it). The certificate's DER structure is walked
 * to its SubjectPublicKeyInfo and the bytes compared: a few microseconds, where parsing the certificate
 * and comparing key objects with OpenSSL costs a quarter of a millisecond and, between keys of different
 * types, leaves an error on OpenSSL's queue that breaks the next WebCrypto import in the process. A key
 * written in another (valid) encoding, such as a compressed EC point, is compared in OpenSSL's canonical
 * form. Returns false, never throws, for anything that does not parse.
 */
export function certificateHoldsPublicKey(certificatePem: string, publicKeyDer: Uint8Array): boolean {
  const spki = spkiOf(pemBody(certificatePem, 'CERTIFICATE'), 'certificate');
  if (spki === undefined) return false;
  if (Buffer.compare(spki, publicKeyDer) === 0) return true;
  const canonical = canonicalSpki(spki);
  return canonical !== undefined && Buffer.compare(canonical, publicKeyDer) === 0;
}

/**
 * The public key inside a CSR, SubjectPublicKeyInfo DER in OpenSSL's canonical form, or undefined when
 * the CSR does not parse. Reads the DER structure only: the CSR's signature is not checked here (see
 * {@link checkCsr}).
 */
export function csrPublicKeyDer(csrPem: string): Buffer | undefined {
  const spki = spkiOf(pemBody(csrPem, 'CERTIFICATE REQUEST'), 'csr');
  return spki === undefined ? undefined : canonicalSpki(spki);
}

/** The public key inside a CSR, or undefined when it does not parse. */
export async function csrPublicKey(csrPem: string): Promise<KeyObject | undefined> {
  const der = csrPublicKeyDer(csrPem);
  return der === undefined ? undefined : createPublicKey({ key: der, format: 'der', type: 'spki' });
}

/** `spki` re-encoded by OpenSSL (named curve, uncompressed point), or undefined when it is no key. */
function canonicalSpki(spki: Buffer): Buffer | undefined {
  try {
    return createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({
      type: 'spki',
      format: 'der',
    });
  } catch {
    return undefined;
  }
}

/** The DER inside the one PEM block labelled `label`, or undefined when the text is not exactly that. */
function pemBody(pem: string, label: string): Buffer | undefined {
  if (typeof pem !== 'string' || pem.length > MAX_PEM_LENGTH) return undefined;
  const begin = `-----BEGIN ${label}-----`;
  const end = `-----END ${label}-----`;
  const text = pem.trim();
  if (!text.startsWith(begin) || !text.endsWith(end)) return undefined;
  const body = text.slice(begin.length, text.length - end.length).replace(/\s+/g, '');
  if (body.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0) return undefined;
  return Buffer.from(body, 'base64');
}

/** One DER element: its tag, where its content starts, and where it ends. */
interface DerElement {
  readonly tag: number;
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
}

/** Read the DER element at `offset`, inside `limit`; undefined when its header or length is malformed. */
function derAt(der: Uint8Array, offset: number, limit: number): DerElement | undefined {
  if (offset + 2 > limit) return undefined;
  const tag = der[offset] ?? 0;
  // Multi-byte tags never occur in the structures walked here.
  if ((tag & 0x1f) === 0x1f) return undefined;
  let length = der[offset + 1] ?? 0;
  let contentStart = offset + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    // Indefinite lengths are BER, not DER; four length bytes are far more than a certificate needs.
    if (bytes === 0 || bytes > 4 || contentStart + bytes > limit) return undefined;
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + (der[contentStart + i] ?? 0);
    contentStart += bytes;
  }
  const end = contentStart + length;
  if (end > limit) return undefined;
  return { tag, start: offset, contentStart, end };
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const BIT_STRING = 0x03;
const OCTET_STRING = 0x04;
const OID = 0x06;
const EXPLICIT_0 = 0xa0;
const EXPLICIT_1 = 0xa1;
/** AlgorithmIdentifier { rsaEncryption, NULL }, as certificates and OpenSSL write it. */
const RSA_ALGORITHM = Buffer.from('300d06092a864886f70d0101010500', 'hex');
/** The OID id-ecPublicKey (1.2.840.10045.2.1), whole element. */
const EC_PUBLIC_KEY_OID = Buffer.from('06072a8648ce3d0201', 'hex');

/**
 * The SubjectPublicKeyInfo element of a certificate (RFC 5280: Certificate, TBSCertificate with an
 * optional version, serialNumber, signature, issuer, validity, subject, then the key) or of a PKCS#10
 * request (RFC 2986: CertificationRequest, CertificationRequestInfo with version, subject, then the key).
 */
function spkiOf(der: Buffer | undefined, kind: 'certificate' | 'csr'): Buffer | undefined {
  if (der === undefined) return undefined;
  const outer = derAt(der, 0, der.length);
  if (outer === undefined || outer.tag !== SEQUENCE || outer.end !== der.length) return undefined;
  const info = derAt(der, outer.contentStart, outer.end);
  if (info === undefined || info.tag !== SEQUENCE) return undefined;
  const expected =
    kind === 'certificate'
      ? [INTEGER, SEQUENCE, SEQUENCE, SEQUENCE, SEQUENCE, SEQUENCE]
      : [INTEGER, SEQUENCE, SEQUENCE];
  let offset = info.contentStart;
  let element = derAt(der, offset, info.end);
  if (kind === 'certificate' && element?.tag === EXPLICIT_0) element = derAt(der, element.end, info.end);
  for (const [index, tag] of expected.entries()) {
    if (element === undefined || element.tag !== tag) return undefined;
    if (index === expected.length - 1) break;
    offset = element.end;
    element = derAt(der, offset, info.end);
  }
  return element === undefined ? undefined : der.subarray(element.start, element.end);
}
