/**
 * Where the CLI's words go. Results on stdout; progress on stderr as one live line on a terminal, as
 * plain lines otherwise, and not at all with `--quiet`. Every line passes through `redact()`: text from
 * elsewhere (a service message, a library error) can never carry a key, a PEM body or a token out.
 */
import { redact } from '../redact.js';

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
    this.#stdout.write(`${redact(line)}\n`);
  }

  /** Raw text on stdout (one JSON document); redacted like everything else. */
  printRaw(text: string): void {
    this.#endLive();
    this.#stdout.write(redact(text));
  }

  /** A line on stderr for people, unless quiet. */
  note(line: string): void {
    if (this.mode === 'quiet') return;
    this.#endLive();
    this.#stderr.write(`${redact(line)}\n`);
  }

  /** A progress step: replaces the live line on a terminal, a plain line otherwise. */
  status(line: string): void {
    if (this.mode === 'quiet') return;
    if (this.mode === 'lines') {
      this.#stderr.write(`${redact(line)}\n`);
      return;
    }
    // A terminal without a size (a pipe through `script`, some CI runners) reports 0 columns.
    const columns = this.#stderr.columns ?? 0;
    const width = (columns >= 20 ? columns : 80) - 1;
    const text = redact(line);
    this.#stderr.write(`\r\x1b[2K${text.length > width ? `${text.slice(0, width - 1)}…` : text}`);
    this.#live = true;
  }

  /** A warning on stderr, shown even when quiet: it is about something the user may not want. */
  warn(line: string): void {
    this.#endLive();
    this.#stderr.write(`${redact(`warning: ${line}`)}\n`);
  }

  /** An error on stderr, always shown. */
  error(line: string): void {
    this.#endLive();
    this.#stderr.write(`${redact(`error: ${line}`)}\n`);
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
