/**
 * Pre-provisioning hooks run as a program: the simulator writes AWS's Lambda event (JSON) to its stdin and
 * reads the Lambda's response (JSON) from its stdout, so the same handler logic can be tried locally.
 */
import { spawn } from 'node:child_process';
import type { PreProvisioningHook, PreProvisioningHookInput, PreProvisioningHookResult } from './types.js';

/** The most a hook may print: a Lambda response is a few hundred bytes. */
const MAX_OUTPUT = 256 * 1024;

/**
 * A hook that runs `command` (no shell) once per RegisterThing. The program gets the event on stdin and
 * must print `{ "allowProvisioning": …, "parameterOverrides"?: {…} }` and exit 0; anything else fails
 * the hook (403 `AccessDenied`, as a failing Lambda does). It is killed after `timeoutMs`, or when
 * `signal` fires.
 */
export function commandHook(
  command: readonly string[],
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): PreProvisioningHook {
  const [program, ...args] = command;
  if (program === undefined) throw new TypeError('A command hook needs a program to run.');
  const timeoutMs = options.timeoutMs ?? 10_000;
  return (input: PreProvisioningHookInput) =>
    new Promise<PreProvisioningHookResult>((resolve, reject) => {
      const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'ignore'] });
      let output = '';
      let settled = false;
      const fail = (reason: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        reject(new Error(reason));
      };
      const timer = setTimeout(() => fail('the hook command did not finish in time'), timeoutMs);
      // The simulator closing ends the program too: nothing it started outlives it.
      const onAbort = () => fail('the simulator closed');
      options.signal?.addEventListener('abort', onAbort, { once: true });
      child.once('close', () => options.signal?.removeEventListener('abort', onAbort));
      child.on('error', (error) => fail(`the hook command could not run (${error.message})`));
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
        if (output.length > MAX_OUTPUT) fail('the hook command printed too much');
      });
      child.stdin.on('error', () => {
        // A program that exits without reading its input is judged by its exit code and output.
      });
      child.on('close', (code) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (code !== 0) {
          reject(new Error(`the hook command exited with ${String(code)}`));
          return;
        }
        try {
          const parsed: unknown = JSON.parse(output);
          if (typeof parsed !== 'object' || parsed === null || !('allowProvisioning' in parsed)) {
            reject(new Error('the hook command printed no allowProvisioning'));
            return;
          }
          const result: PreProvisioningHookResult = { allowProvisioning: parsed.allowProvisioning === true };
          if ('parameterOverrides' in parsed) {
            Object.assign(result, { parameterOverrides: parsed.parameterOverrides });
          }
          resolve(result);
        } catch {
          reject(new Error('the hook command printed no JSON'));
        }
      });
      child.stdin.end(JSON.stringify(input));
    });
}
