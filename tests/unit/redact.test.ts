import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { forTerminal, jsonDocument } from '../../src/cli/output.js';
import { InvalidResponseError, RejectedError } from '../../src/protocol/errors.js';
import { redact, redactValue, rememberSecret } from '../../src/protocol/redact.js';
import { parseEndpoint } from '../../src/provision/endpoint.js';

/** A fresh EC key as PKCS#8 PEM, never remembered unless a test says so. */
function freshKey(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();
}

const bodyOf = (pem: string) =>
  pem
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('-----'))
    .join('');

/** C0 controls but line feed, DEL, C1 controls: what a terminal acts on. */
const CONTROLS = new RegExp(
  `[${String.fromCharCode(0)}-${String.fromCharCode(9)}${String.fromCharCode(11)}-${String.fromCharCode(31)}\u007f-\u009f\u202e]`,
);

/** Every 16-character window of the secret's flat forms that shows up in `text`. */
function leaks(text: string, pem: string): string[] {
  const body = bodyOf(pem);
  const forms = [body, Buffer.from(body, 'base64').toString('hex'), Buffer.from(pem).toString('base64')];
  const found: string[] = [];
  for (const form of forms) {
    for (let i = 0; i + 16 <= form.length; i += 4) {
      if (text.includes(form.slice(i, i + 16))) found.push(form.slice(i, i + 16));
    }
  }
  return found;
}

/** The encodings people store a PEM key in. */
function encodings(pem: string): Record<string, string> {
  const body = bodyOf(pem);
  return {
    pem,
    'pem, JSON-escaped': JSON.stringify(pem),
    'pem with literal \\n': pem.replaceAll('\n', '\\n'),
    'base64 of the file, 76 columns': Buffer.from(pem).toString('base64').replace(/.{76}/g, '$&\n'),
    'base64 of the file, one line': Buffer.from(pem).toString('base64'),
    'body without header lines': pem
      .split('\n')
      .filter((l) => !l.startsWith('-----'))
      .join('\n'),
    'hex of the DER': Buffer.from(body, 'base64').toString('hex'),
    'hex of the DER, 60 columns': Buffer.from(body, 'base64').toString('hex').replace(/.{60}/g, '$&\n'),
  };
}

describe('redact() knows every encoding of a secret', () => {
  const key = freshKey();
  it.each(Object.entries(encodings(key)))('removes a key given as %s, by shape', (_name, encoded) => {
    const text = redact(`the value was ${encoded} (and more text)`);
    expect(leaks(text, key)).toEqual([]);
    expect(text).toContain('[REDACTED]');
    expect(text).toContain('(and more text)');
  });

  it('removes a 16-character piece of a remembered key, in every encoding', () => {
    const remembered = freshKey();
    rememberSecret(remembered);
    const body = bodyOf(remembered);
    const hex = Buffer.from(body, 'base64').toString('hex');
    const b64 = Buffer.from(remembered).toString('base64');
    for (const piece of [
      body.slice(20, 40),
      hex.slice(30, 50),
      hex.slice(30, 50).toUpperCase(),
      b64.slice(8, 30),
    ]) {
      expect(redact(`a piece: ${piece}.`)).toBe('a piece: [REDACTED].');
    }
  });

  it('keeps a message that quotes a PEM header without a body whole', () => {
    const message = 'caCertificate must be PEM text (-----BEGIN CERTIFICATE-----), not a path.';
    expect(redact(message)).toBe(message);
  });

  it('keeps certificate ids, paths and ordinary sentences readable', () => {
    const id = randomBytes(32).toString('hex');
    const text = `certificate ${id} saved in /tmp/fleet-provision-cli-x/out-1 for thing SN-0042`;
    expect(redact(text)).toBe(text);
  });
});

describe('values are redacted before serialisation', () => {
  it('keeps JSON valid when a value or a key looks like a PEM, whole or cut off', () => {
    const key = freshKey().trim();
    const value = {
      deviceConfiguration: {
        note: '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49',
        key,
        [key]: 'x',
        plain: 'stays',
      },
    };
    const text = jsonDocument(value);
    const parsed: unknown = JSON.parse(text);
    expect(parsed).toEqual({
      deviceConfiguration: { note: '[REDACTED]', key: '[REDACTED]', '[REDACTED]': 'x', plain: 'stays' },
    });
    expect(leaks(text, key)).toEqual([]);
    expect(redactValue(['a', 1, null])).toEqual(['a', 1, null]);
  });

  it('escapes C1 control characters that JSON.stringify leaves raw', () => {
    const text = jsonDocument({ thingName: 'a\u009b31mb\u001b[2J' });
    expect(text).not.toMatch(CONTROLS);
    expect(JSON.parse(text)).toEqual({ thingName: 'a\u009b31mb\u001b[2J' });
  });
});

describe('errors never hold a secret', () => {
  it('redacts InvalidResponseError issue paths that are payload keys', () => {
    const key = freshKey();
    const error = new InvalidResponseError({
      operation: 'RegisterThing',
      issues: [
        { path: `deviceConfiguration.${key}`, problem: 'expected string' },
        {
          path: `deviceConfiguration.${Buffer.from(key).toString('base64').replace(/.{76}/g, '$&\n')}`,
          problem: 'x',
        },
      ],
    });
    for (const issue of error.issues) expect(leaks(issue.path, key)).toEqual([]);
    expect(leaks(error.message, key)).toEqual([]);
    expect(error.issues[0]?.path.startsWith('deviceConfiguration.')).toBe(true);
  });

  it('redacts errorCode and errorMessage of a rejection', () => {
    const key = freshKey();
    const error = new RejectedError({
      operation: 'RegisterThing',
      statusCode: 400,
      errorCode: Buffer.from(key).toString('base64'),
      errorMessage: `bad ${JSON.stringify(key)}`,
    });
    expect(leaks(`${error.errorCode} ${error.errorMessage} ${error.message}`, key)).toEqual([]);
  });

  it('redacts a cause that quotes a secret, keeping its name and code', () => {
    const key = freshKey();
    const cause = Object.assign(new SyntaxError(`Unexpected token in ${key}`), { code: 'E_PARSE' });
    const error = new InvalidResponseError(
      { issues: [{ path: '(root)', problem: 'malformed json' }] },
      { cause },
    );
    expect(error.cause).toBeInstanceOf(Error);
    if (!(error.cause instanceof Error)) throw new Error('unreachable');
    expect(leaks(`${error.cause.message} ${error.cause.stack}`, key)).toEqual([]);
    expect(error.cause.name).toBe('SyntaxError');
    expect(error.cause).toHaveProperty('code', 'E_PARSE');
    const harmless = new Error('socket hang up');
    expect(new InvalidResponseError({ issues: [] }, { cause: harmless }).cause).toBe(harmless);
  });

  it('never repeats a password given in an endpoint URL', () => {
    for (const endpoint of [
      'mqtts://admin:hunter2-secret@host:8883',
      'mqtts://admin:hunter2-secret@host/path',
      'ftp://u:hunter2-secret@h',
    ]) {
      let message = '';
      try {
        parseEndpoint(endpoint);
      } catch (error) {
        message = error instanceof Error ? error.message : String(error);
      }
      expect(message).not.toBe('');
      expect(message).not.toContain('hunter2');
    }
  });
});

describe('terminal output', () => {
  it('shows control characters and escape sequences instead of acting on them', () => {
    const text = forTerminal('thing \u001b]0;owned\u0007 \u001b[2J\r\u009b31m \u202eevil\nnext');
    expect(text).not.toMatch(CONTROLS);
    expect(text).toContain('\\x1b]0;owned\\x07');
    expect(text).toContain('\nnext');
  });
});

describe('redact() property: random secrets in random encodings', () => {
  const wrap = (text: string, width: number, separator: string) =>
    text.replace(new RegExp(`.{${width}}`, 'g'), `$&${separator}`);

  it('leaves no 16-character piece of a secret of 80 bytes or more, however it is encoded and wrapped', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 80, maxLength: 700 }),
        fc.constantFrom('base64', 'base64url', 'hex', 'pem', 'pem-body'),
        fc.integer({ min: 4, max: 120 }),
        fc.constantFrom('\n', '\r\n', '\\n', '\\r\\n'),
        fc.lorem({ maxCount: 5 }),
        fc.lorem({ maxCount: 5 }),
        (bytes, encoding, width, separator, before, after) => {
          const data = Buffer.from(bytes);
          const flat =
            encoding === 'hex'
              ? data.toString('hex')
              : encoding === 'base64url'
                ? data.toString('base64url')
                : data.toString('base64');
          const encoded =
            encoding === 'pem'
              ? `-----BEGIN PRIVATE KEY-----${separator}${wrap(flat, 64, separator)}-----END PRIVATE KEY-----`
              : wrap(flat, width, separator);
          const text = redact(`${before} ${encoded} ${after}`);
          for (let i = 0; i + 16 <= flat.length; i += 5) {
            expect(text).not.toContain(flat.slice(i, i + 16));
          }
          expect(text).toContain(after.slice(-3));
        },
      ),
      { numRuns: 300 },
    );
  });
});
