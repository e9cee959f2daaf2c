/**
 * A progress bar on stderr: redrawn in place on a terminal (at most every 100 ms), a plain line at each
 * tenth otherwise (so a CI log stays short), nothing when quiet.
 */
import type { Output } from '../output.js';

const WIDTH = 30;
const REDRAW_MS = 100;

/** Progress of `total` units of work. */
export class ProgressBar {
  readonly #output: Output;
  readonly #total: number;
  readonly #started = performance.now();
  #lastDraw = 0;
  #lastTenth = 0;

  constructor(output: Output, total: number) {
    this.#output = output;
    this.#total = total;
  }

  /** Report `done` finished units, `failed` of them failures. */
  update(done: number, failed: number): void {
    const output = this.#output;
    if (output.mode === 'quiet') return;
    const finished = done >= this.#total;
    if (output.mode === 'live') {
      const now = performance.now();
      if (!finished && now - this.#lastDraw < REDRAW_MS) return;
      this.#lastDraw = now;
      output.status(this.#line(done, failed));
      if (finished) output.finish();
      return;
    }
    const tenth = Math.floor((done / this.#total) * 10);
    if (tenth > this.#lastTenth || finished) {
      this.#lastTenth = tenth;
      output.status(this.#line(done, failed));
    }
  }

  #line(done: number, failed: number): string {
    const fraction = this.#total === 0 ? 1 : done / this.#total;
    const filled = Math.round(fraction * WIDTH);
    const seconds = (performance.now() - this.#started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const pct = `${Math.floor(fraction * 100)}%`.padStart(4);
    return (
      `[${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}] ${pct} ${done}/${this.#total}` +
      `  ${failed} failed  ${rate.toFixed(0)}/s  ${seconds.toFixed(1)} s`
    );
  }
}
