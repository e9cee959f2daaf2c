/**
 * Where the CLI's words go. Results on stdout; progress on stderr as one live line on a terminal, as
 * plain lines otherwise, and not at all with `--quiet`. Every line passes through `redact()`: text from
 * elsewhere (a service message, a library error) can never carry a key, a PEM body or a token out. And
 * every line passes through {@link forTerminal}: a thing name, a service message or a client id that
 * came off the network cannot move the cursor, recolour the screen or rewrite the title.
 */
import { redact, redactValue } from '../protocol/redact.js';

/** C0 and C1 control characters (line feed apart), DEL, and the bidirectional overrides. */
const UNSAFE = new RegExp(
  `[${String.fromCharCode(0)}-${String.fromCharCode(9)}${String.fromCharCode(11)}-${String.fromCharCode(31)}\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]`,
  'g',
);

/**
 * Text made safe to print on a terminal: redacted, and every control character (an escape sequence's
 * ESC, a carriage return, a bell, C1 controls, bidirectional overrides) shown as a visible `\xHH` /
 * `\uHHHH` instead of acted on. Line feeds stay.
 */
export function forTerminal(text: string): string {
  return redact(text).replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * `value` as one JSON document: every string redacted before serialisation (so the document always
 * parses), and C1 controls, which JSON.stringify leaves as they are, escaped.
 */
export function jsonDocument(value: unknown): string {
  return `${JSON.stringify(redactValue(value), null, 2).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`;
}

/** The part of a stream the CLI writes to. */
export interface OutputStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** How progress shows. */
export type ProgressMode = 'live' | 'lines' | 'quiet';

/** The CLI's output: stdout for results, stderr for everything people read while it runs. */
export class Output {
  readonly mode: ProgressMode;
  readonly #stdout: OutputStream;
  readonly #stderr: OutputStream;
  #live = false;

  constructor(options: { stdout: OutputStream; stderr: OutputStream; quiet?: boolean }) {
    this.#stdout = options.stdout;
    this.#stderr = options.stderr;
    this.mode = options.quiet === true ? 'quiet' : options.stderr.isTTY === true ? 'live' : 'lines';
  }

  /** A result line on stdout. */
  print(line: string): void {
    this.#endLive();
    this.#stdout.write(`${forTerminal(line)}\n`);
  }

  /** One JSON document on stdout, redacted value by value before serialisation: it always parses. */
  printJson(value: unknown): void {
    this.#endLive();
    this.#stdout.write(jsonDocument(value));
  }

  /** A line on stderr for people, unless quiet. */
  note(line: string): void {
    if (this.mode === 'quiet') return;
    this.#endLive();
    this.#stderr.write(`${forTerminal(line)}\n`);
  }

  /** A progress step: replaces the live line on a terminal, a plain line otherwise. */
  status(line: string): void {
    if (this.mode === 'quiet') return;
    if (this.mode === 'lines') {
      this.#stderr.write(`${forTerminal(line)}\n`);
      return;
    }
    // A terminal without a size (a pipe through `script`, some CI runners) reports 0 columns.
    const columns = this.#stderr.columns ?? 0;
    const width = (columns >= 20 ? columns : 80) - 1;
    const text = forTerminal(line);
    this.#stderr.write(`\r\x1b[2K${text.length > width ? `${text.slice(0, width - 1)}…` : text}`);
    this.#live = true;
  }

  /** A warning on stderr, shown even when quiet: it is about something the user may not want. */
  warn(line: string): void {
    this.#endLive();
    this.#stderr.write(`${forTerminal(`warning: ${line}`)}\n`);
  }

  /** An error on stderr, always shown. */
  error(line: string): void {
    this.#endLive();
    this.#stderr.write(`${forTerminal(`error: ${line}`)}\n`);
  }

  /** Leave the live line (if any) so that the next output starts on a clean line. */
  finish(): void {
    this.#endLive();
  }

  #endLive(): void {
    if (!this.#live) return;
    this.#stderr.write('\r\x1b[2K');
    this.#live = false;
  }
}
