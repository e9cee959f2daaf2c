/**
 * The single redaction path. Every error message, every value the CLI prints and every JSON document it
 * writes passes through {@link redact} (or {@link redactValue}, which works on values before they are
 * serialised, so that the output stays valid). A private key, a certificate body or an ownership token
 * is removed in every encoding the library has met:
 * - PEM, with or without its header lines, with real line breaks or JSON-escaped `\n`;
 * - base64 or base64url at any line length (76-column lines as `base64 key.pem` writes them), hex;
 * - any secret the library was handed ({@link rememberSecret}), down to a 16-character fragment of it,
 *   in whichever of those encodings it shows up.
 */

const REDACTED = '[REDACTED]';

/** A line break inside an encoded secret: a real one, or the `\n` / `\r\n` a JSON string or a CI secret holds. */
const BREAK = String.raw`(?:\r?\n|\\r\\n|\\n|\\r)`;

/**
 * A PEM block with a body, complete or cut off: from a BEGIN line followed by base64 (or the
 * `Proc-Type` header of an encrypted key) to its END line, or to the end of the text. A BEGIN line
 * followed by anything else (a message quoting the expected header) is left alone.
 */
const PEM_BLOCK =
  /-----BEGIN [A-Z0-9 ]+-----(?=(?:\s|\\[rn])*(?:[A-Za-z0-9+/=]|Proc-Type))[\s\S]*?(?:-----END [A-Z0-9 ]+-----|$)/g;

/** The END line of a PEM block. */
const PEM_END = /-----END [A-Z0-9 ]+-----/g;
/** What the body of a PEM block is made of, read backwards from its END line. */
const BODY_CHARACTER = /[A-Za-z0-9+/=\s]/;

/**
 * Remove the tail of each PEM block whose beginning was cut off: the END line and the body lines before
 * it. Walks back from each END line by hand, in linear time: a regular expression that looks backwards
 * over a long run would retry from every position of it.
 */
function removePemTails(text: string): string {
  let out = '';
  let from = 0;
  for (const match of text.matchAll(PEM_END)) {
    let start = match.index;
    while (start > from) {
      const previous = text[start - 1] ?? '';
      // A JSON-escaped line break (`\n`) first: its letter is also a body character.
      if ((previous === 'n' || previous === 'r') && text[start - 2] === '\\' && start - 2 >= from) start -= 2;
      else if (BODY_CHARACTER.test(previous)) start--;
      else break;
    }
    out += `${text.slice(from, start)}${REDACTED}`;
    from = match.index + match[0].length;
  }
  return from === 0 ? text : out + text.slice(from);
}

/**
 * A run of base64, base64url or hex characters, possibly broken into lines. Spaces do not join runs,
 * so that ordinary words never add up to one.
 */
const RUN = new RegExp(`[A-Za-z0-9+/_-]+={0,2}(?:${BREAK}+[A-Za-z0-9+/_-]+={0,2})*`, 'g');
const BREAKS = new RegExp(BREAK, 'g');

/**
 * A run this long is opaque data whatever it is. An ownership token is several hundred characters, a
 * key or certificate body more; a certificate id is 64 hex characters and stays readable.
 */
const OPAQUE_LENGTH = 100;
/** A run at least this long that is part of a remembered secret (in any encoding) is removed. */
const FRAGMENT_LENGTH = 16;

/** Each remembered secret, in the flat forms it may be printed in (no line breaks). */
const known = new Map<string, readonly string[]>();
const KNOWN_LIMIT = 512;
/** Shorter values are not remembered: replacing them would mangle ordinary words. */
const KNOWN_MIN_LENGTH = 8;

/**
 * Remember a value the library handled as a secret (a private key, an ownership token, a secret from
 * the environment in whatever encoding) so that {@link redact} removes it, or any 16-character piece
 * of it, wherever it appears: as given, as the base64 body of its PEM, as the hex of its DER, or as the
 * base64 of the whole PEM text. Bounded: the oldest are forgotten first.
 * @internal
 */
export function rememberSecret(value: string): void {
  if (typeof value !== 'string' || value.length < KNOWN_MIN_LENGTH) return;
  known.delete(value);
  known.set(value, encodingsOf(value));
  if (known.size > KNOWN_LIMIT) {
    const oldest = known.keys().next();
    if (oldest.done !== true) known.delete(oldest.value);
  }
}

/** The flat forms a secret may be printed in. */
function encodingsOf(value: string): string[] {
  const forms = new Set<string>();
  const flat = value.replace(/\s+|\\[rn]/g, '');
  if (flat.length >= FRAGMENT_LENGTH) forms.add(flat);
  const text = value.replace(/\\r\\n|\\n/g, '\n');
  for (const match of text.matchAll(/-----BEGIN [A-Z0-9 ]+-----([\s\S]*?)-----END [A-Z0-9 ]+-----/g)) {
    const body = (match[1] ?? '').replace(/^[A-Za-z-]+:.*$/gm, '').replace(/\s+/g, '');
    if (body.length < FRAGMENT_LENGTH) continue;
    forms.add(body);
    forms.add(Buffer.from(body, 'base64').toString('hex'));
    forms.add(Buffer.from(body, 'base64').toString('base64url'));
  }
  if (text.includes('-----BEGIN ')) {
    forms.add(Buffer.from(text).toString('base64'));
    forms.add(Buffer.from(text).toString('hex'));
  }
  return [...forms];
}

function isKnownFragment(run: string): boolean {
  if (run.length < FRAGMENT_LENGTH) return false;
  const lower = run.toLowerCase();
  for (const forms of known.values()) {
    for (const form of forms) {
      if (form.includes(run) || (/^[0-9a-f]+$/i.test(run) && form.includes(lower))) return true;
    }
  }
  return false;
}

/**
 * Remove every secret from `text`: PEM blocks (whole, cut, or without their header lines), long runs
 * of base64 or hex at any line length, and any piece of a value passed to `rememberSecret()` (the
 * library does that for every key and token it handles).
 */
export function redact(text: string): string {
  if (typeof text !== 'string') return text;
  let out = removePemTails(text.replace(PEM_BLOCK, REDACTED));
  out = out.replace(RUN, (run) => {
    const body = run.replace(BREAKS, '');
    return body.length >= OPAQUE_LENGTH || isKnownFragment(body) ? REDACTED : run;
  });
  for (const secret of known.keys()) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out;
}

/**
 * {@link redact} applied to every string inside `value` (object keys included), before it is
 * serialised: `JSON.stringify(redactValue(x))` is always valid JSON and never holds a secret.
 * Returns a copy; `value` is not changed.
 */
export function redactValue(value: unknown): unknown {
  return redactDeep(value, 0);
}

function redactDeep(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redact(value);
  if (typeof value !== 'object' || value === null || depth > 32) return value;
  if (Array.isArray(value)) return value.map((item) => redactDeep(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[redact(key)] = redactDeep(item, depth + 1);
  return out;
}
