/**
 * The single redaction path. Every error message (and every line the CLI prints) passes through
 * {@link redact} so that a private key, a certificate body or an ownership token can never be echoed,
 * even when it arrives inside text we did not write (a service `errorMessage`, a library's error).
 */

const REDACTED = '[REDACTED]';

/** A PEM block, complete or cut off: everything from a BEGIN line to its END line, or to the end of the text. */
const PEM_BLOCK = /-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(?:-----END [A-Z0-9 ]+-----|$)/g;

/**
 * Long opaque runs of base64 or base64url. Ownership tokens are several hundred such characters; a
 * certificate id is 64 hex characters and stays readable, so the floor sits well above it.
 */
const OPAQUE_RUN = /[A-Za-z0-9+/_-]{100,}={0,2}/g;

/** Secrets seen at run time that are too short to be caught by shape, most recent last. */
const known = new Set<string>();
const KNOWN_LIMIT = 512;
/** Shorter values are not remembered: replacing them would mangle ordinary words. */
const KNOWN_MIN_LENGTH = 8;

/**
 * Remember a value the library handled as a secret (a private key, an ownership token) so that
 * {@link redact} removes it wherever it appears. Bounded: the oldest are forgotten first.
 * @internal
 */
export function rememberSecret(value: string): void {
  if (value.length < KNOWN_MIN_LENGTH) return;
  known.delete(value);
  known.add(value);
  if (known.size > KNOWN_LIMIT) {
    const oldest = known.values().next();
    if (oldest.done !== true) known.delete(oldest.value);
  }
}

/**
 * Remove every secret from `text`: PEM blocks, long opaque tokens, and values passed to
 * `rememberSecret()` (the library does that for every key and token it handles).
 */
export function redact(text: string): string {
  let out = text.replace(PEM_BLOCK, REDACTED).replace(OPAQUE_RUN, REDACTED);
  for (const secret of known) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out;
}
