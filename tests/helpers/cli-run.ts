/**
 * Run the BUILT command line (`node dist/cli/main.js …`) as a child process, as a user or a CI job
 * would, and collect its exit code and output. `npm test` builds dist/ first.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built bin. */
export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** How a run ended. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options of a run. */
export interface CliOptions {
  /** Added to a copy of this process's environment, from which every FLEET_PROVISION_* is removed. */
  env?: Record<string, string>;
  cwd?: string;
  /** Node flags before the script (e.g. `--import` a resolve hook). */
  nodeArgs?: string[];
}

/** A running CLI process. */
export interface CliProcess {
  child: ChildProcess;
  /** Resolves with the first stdout line matching `pattern` (already printed or still to come). */
  line(pattern: RegExp): Promise<string>;
  /** Resolves when the process has exited, with everything it printed. */
  exited: Promise<CliResult>;
}

function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('FLEET_PROVISION_')) env[key] = value;
  }
  return { ...env, ...extra };
}

/** Start `fleet-provision …args`. */
export function startCli(args: string[], options: CliOptions = {}): CliProcess {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, ...args], {
    env: childEnv(options.env),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  const check = () => {
    for (const waiter of [...waiters]) {
      const found = stdout.split('\n').find((l) => waiter.pattern.test(l));
      if (found !== undefined) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(found);
      }
    }
  };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    check();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    child,
    exited,
    line: (pattern) =>
      new Promise((resolve, reject) => {
        waiters.push({ pattern, resolve });
        check();
        exited.then(
          (result) =>
            reject(
              new Error(
                `exited (${result.code}) before printing ${pattern}:\n${result.stdout}\n${result.stderr}`,
              ),
            ),
          reject,
        );
      }),
  };
}

/** Run `fleet-provision …args` to the end. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).exited;
}

/**
 * Everything a run printed must be free of secrets: no PEM block (key or certificate body), no long
 * opaque base64 run (an ownership token), and none of the given secret texts.
 */
export function secretsIn(text: string, secrets: readonly string[] = []): string[] {
  const found: string[] = [];
  if (text.includes('-----BEGIN') || text.includes('PRIVATE KEY')) found.push('PEM block');
  if (/[A-Za-z0-9+/_-]{100,}/.test(text)) found.push('long opaque run (token or PEM body)');
  for (const secret of secrets) {
    // A PEM's body lines (64 base64 characters each) are what must never show, whatever wraps them.
    for (const line of secret.split('\n')) {
      if (line.length >= 40 && !line.startsWith('-----') && text.includes(line))
        found.push('secret body line');
    }
  }
  return found;
}
