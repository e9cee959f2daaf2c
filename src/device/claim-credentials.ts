/**
 * The claim credentials checked before any traffic: each is PEM of the right kind, complete, and the key
 * belongs to the certificate. Every mistake people make with them (a path instead of the content, the
 * two swapped, a truncated or damaged file, base64 of the file, a key that is not this certificate's)
 * is an `INVALID_ARGUMENT` that names the input and says what to do, and never repeats the value.
 *
 * A one-line CI secret with literal `\n` sequences (how many CI systems store a PEM) is accepted.
 */
import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { statSync } from 'node:fs';
import { InvalidArgumentError } from '../protocol/errors.js';
import { redact, rememberSecret } from '../protocol/redact.js';
import { certificateHoldsPublicKey } from './keys.js';

/** What each input is called in messages: option names for the library, flags or variables for the CLI. */
export interface ClaimCredentialNames {
  certificate: string;
  privateKey: string;
  ca: string;
}

/** The names provision() uses. */
export const OPTION_NAMES: ClaimCredentialNames = {
  certificate: 'claimCertificate',
  privateKey: 'claimPrivateKey',
  ca: 'caCertificate',
};

/** What a PEM input should hold, for messages. */
export type PemKind = 'certificate' | 'private key' | 'CA certificate' | 'CSR';

/** What the PEM looks like, in words: messages never quote a PEM header, as tests and log scanners look for one. */
const EXPECTED_HEADER: Record<PemKind, string> = {
  certificate: 'the text of a .pem.crt file, a certificate block between lines of dashes',
  'private key': 'the text of a .pem.key file, a private key block between lines of dashes',
  'CA certificate':
    'the text of a CA file such as AmazonRootCA1.pem, a certificate block between lines of dashes',
  CSR: 'the text of a .csr file, a certificate request block between lines of dashes',
};

/**
 * PEM text as people store it, made usable: a value whose line breaks are literal `\n` (or `\r\n`)
 * sequences (a one-line CI secret) gets real ones, and surrounding quotes are dropped. Anything else is
 * returned unchanged.
 */
export function normalizePem(value: string): string {
  let text = value.trim();
  if (/^(["']).*\1$/s.test(text) && text.includes('-----BEGIN ')) text = text.slice(1, -1).trim();
  if (text.includes('-----BEGIN ') && !/\r?\n/.test(text) && /\\r\\n|\\n/.test(text)) {
    text = text.replace(/\\r\\n|\\n/g, '\n');
  }
  return text.includes('-----BEGIN ') ? `${text}\n` : value;
}

/** True for what is plainly a file path (and safe to repeat in a message), not file content. */
export function looksLikePath(value: string): boolean {
  const text = value.trim();
  if (text === '' || text.length > 255 || /[\r\n]|\\n|-----/.test(text) || redact(text) !== text)
    return false;
  return (
    /^(?:~|\.{1,2})?[/\\]/.test(text) ||
    /^[A-Za-z]:[/\\]/.test(text) ||
    /\.(?:pem|crt|cer|key|der|csr|p8|txt)$/i.test(text)
  );
}

/** True when `text` is the path of an existing file (and short and plain enough to be one). */
function namesAFile(text: string): boolean {
  if (text.length > 255 || /[\r\n]/.test(text) || redact(text) !== text) return false;
  try {
    return statSync(text).isFile();
  } catch {
    return false;
  }
}

/**
 * Why `value` is not PEM text, in words that say what to do, without repeating it (a path excepted).
 * `name` is the option, flag or variable it came from.
 */
export function notPemMessage(value: string, name: string, kind: PemKind): string {
  const header = EXPECTED_HEADER[kind];
  const text = value.trim();
  if (text === '') return `${name} is empty: it must hold the ${kind} as PEM text (${header}).`;
  if (looksLikePath(text) || namesAFile(text)) {
    return (
      `${name} looks like a file path (${JSON.stringify(text)}), but it must hold the file's content: ` +
      `read the file and pass its text (${header}).`
    );
  }
  const flat = text.replace(/\s+|\\n|\\r/g, '');
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(flat) && flat.length >= 32) {
    const decoded = Buffer.from(flat, 'base64');
    if (decoded.toString('latin1').startsWith('-----BEGIN ')) {
      return (
        `${name} holds base64 of a PEM file (what \`base64 file.pem\` makes), not the PEM text: decode it ` +
        `first (base64 -d), or store the file's text itself (${header}).`
      );
    }
    if (/^[0-9a-fA-F]+$/.test(flat)) {
      return `${name} looks like hex, not PEM text: convert it to PEM (${header}).`;
    }
    if (decoded[0] === 0x30) {
      return (
        `${name} looks like the body of a PEM file without its first and last lines (the lines of ` +
        `dashes): keep the whole file (${header}).`
      );
    }
  }
  return `${name} must be the ${kind} as PEM text (${header}); what it holds is not PEM.`;
}

/** The PEM labels in `text`, in order. */
function labels(text: string): string[] {
  return [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((m) => m[1] ?? '');
}

const isKeyLabel = (label: string) => label.endsWith('PRIVATE KEY');

/** A PEM input, normalized; throws the message for a missing or non-PEM value. */
function pemInput(value: unknown, name: string, kind: PemKind, context: string): string {
  if (value === undefined || value === null) {
    throw new InvalidArgumentError(`${name} is missing: ${context} needs the ${kind} (PEM text).`);
  }
  if (typeof value !== 'string') {
    throw new InvalidArgumentError(`${name} must be a string of PEM text, not ${typeof value}.`);
  }
  const text = normalizePem(value);
  if (!text.includes('-----BEGIN ')) throw new InvalidArgumentError(notPemMessage(value, name, kind));
  return text;
}

const DAMAGED =
  'it may be cut short or damaged (a line missing, characters changed): copy the whole file again, ' +
  'from its first line of dashes to its last.';

/**
 * A single CA certificate or a bundle, each certificate readable.
 * @throws {InvalidArgumentError} naming `name`.
 */
export function checkCaCertificate(value: unknown, name = OPTION_NAMES.ca): string {
  const text = pemInput(value, name, 'CA certificate', 'verifying the server');
  const found = labels(text);
  if (found.some(isKeyLabel)) {
    throw new InvalidArgumentError(
      `${name} holds a private key: it must hold the CA certificate that signs the server's certificate ` +
        '(for AWS IoT, Amazon Root CA 1).',
    );
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    throw new InvalidArgumentError(
      `${name} holds no complete certificate: it must hold the CA certificate as PEM text ` +
        `(${EXPECTED_HEADER['CA certificate']}); ${DAMAGED}`,
    );
  }
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch {
      throw new InvalidArgumentError(`${name} holds a certificate that cannot be read: ${DAMAGED}`);
    }
  }
  return text;
}

let lastChecked: { certificate: string; privateKey: string } | undefined;

/**
 * Check the claim certificate and key before any traffic, and return them normalized (literal `\n`
 * turned into line breaks). The private key is remembered for redaction.
 * @param context how the connection is described in "is missing" messages (`connecting to mqtts://…`).
 * @throws {InvalidArgumentError} for each mistake, naming the input and the next step.
 */
export function checkClaimCredentials(
  input: { certificate: unknown; privateKey: unknown },
  names: ClaimCredentialNames = OPTION_NAMES,
  context = 'a TLS connection',
): { certificate: string; privateKey: string } {
  // The key first: a key passed as the certificate is a swap, whichever input it shows up in.
  const certText =
    typeof input.certificate === 'string' ? normalizePem(input.certificate) : input.certificate;
  const keyText = typeof input.privateKey === 'string' ? normalizePem(input.privateKey) : input.privateKey;
  // The key, in whatever form it came, is redacted from every message from now on (a path is not a secret).
  for (const form of [keyText, input.privateKey]) {
    if (typeof form === 'string' && !looksLikePath(form) && !namesAFile(form)) rememberSecret(form);
  }
  const certLabels = typeof certText === 'string' ? labels(certText) : [];
  const keyLabels = typeof keyText === 'string' ? labels(keyText) : [];
  if (certLabels.some(isKeyLabel) && keyLabels.includes('CERTIFICATE')) {
    throw new InvalidArgumentError(
      `${names.certificate} and ${names.privateKey} are swapped: ${names.certificate} holds a private key ` +
        `and ${names.privateKey} a certificate. Exchange them.`,
    );
  }
  if (certLabels.some(isKeyLabel)) {
    throw new InvalidArgumentError(
      `${names.certificate} holds a private key: it must hold the claim certificate ` +
        `(${EXPECTED_HEADER.certificate}), and ${names.privateKey} the key.`,
    );
  }
  const privateKey = pemInput(keyText, names.privateKey, 'private key', context);
  const certificate = pemInput(certText, names.certificate, 'certificate', context);
  if (lastChecked?.certificate === certificate && lastChecked.privateKey === privateKey) {
    return { certificate, privateKey };
  }
  if (keyLabels.includes('CERTIFICATE') || !keyLabels.some(isKeyLabel)) {
    throw new InvalidArgumentError(
      `${names.privateKey} holds ${keyLabels.includes('CERTIFICATE') ? 'a certificate' : `a ${(keyLabels[0] ?? 'PEM block').toLowerCase()}`}, ` +
        `not a private key: it must hold the claim certificate's key (${EXPECTED_HEADER['private key']}).`,
    );
  }
  if (keyLabels.includes('ENCRYPTED PRIVATE KEY') || /Proc-Type:\s*4,ENCRYPTED/.test(privateKey)) {
    throw new InvalidArgumentError(
      `${names.privateKey} is encrypted with a passphrase: decrypt it first ` +
        '(openssl pkey -in encrypted.key -out claim.private.pem.key) and keep the result mode 0600.',
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKey);
  } catch {
    throw new InvalidArgumentError(`${names.privateKey} is not a readable private key: ${DAMAGED}`);
  }
  if (!certLabels.includes('CERTIFICATE')) {
    throw new InvalidArgumentError(
      `${names.certificate} holds a ${(certLabels[0] ?? 'PEM block').toLowerCase()}, not a certificate: it ` +
        `must hold the claim certificate (${EXPECTED_HEADER.certificate}).`,
    );
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certificate);
  } catch {
    throw new InvalidArgumentError(`${names.certificate} is not a readable certificate: ${DAMAGED}`);
  }
  // The one certificate/key check of the package, on the first certificate of the file.
  const publicKeyDer = createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (!certificateHoldsPublicKey(x509.toString(), publicKeyDer)) {
    throw new InvalidArgumentError(
      `${names.privateKey} does not belong to ${names.certificate}: the key is not the one the certificate ` +
        'was issued for. Use the key file that came with this claim certificate (AWS: the private.pem.key ' +
        'downloaded with it).',
    );
  }
  lastChecked = { certificate, privateKey };
  return { certificate, privateKey };
}
