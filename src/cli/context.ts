/**
 * What a command gets from main: its environment, its two streams and the signal that SIGINT/SIGTERM
 * fire. Commands take these instead of reaching for `process`, so each reads as a function of its inputs.
 */
import type { OutputStream } from './output.js';

/** The world a command runs in. */
export interface CommandContext {
  env: NodeJS.ProcessEnv;
  stdout: OutputStream;
  stderr: OutputStream;
  /** Aborted on the first SIGINT or SIGTERM; long-running commands stop cleanly on it. */
  signal: AbortSignal;
}

/** A command module: its help text and its entry point, which resolves with the exit code. */
export interface Command {
  help: string;
  run(argv: string[], context: CommandContext): Promise<number>;
}
