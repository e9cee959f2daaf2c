/**
 * `fleet-provision status`: what a credentials directory holds and whether it is fit to use. Reads only;
 * never prints a secret.
 */
import { resolve } from 'node:path';
import { parseFlags } from '../args.js';
import type { CommandContext } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { Output } from '../output.js';
import { readSetStatus } from '../set-status.js';

/** `--help` of `status`. */
export const help = `Usage: fleet-provision status --out <dir> [--json]

Show what the credentials directory holds: the thing, the certificate id, its issuer, when it
expires (and the days left), the key type, whether key and certificate match, and whether the files
have safe modes (directory 0700 and key 0600 or stricter; certificate and device.json writable only
by their owner). Reads only; connects to nothing.

Options:
  --out <dir>   the credentials directory (required)
  --json        print one JSON object on stdout
  --help        show this help

Exit codes: 0 the set is complete, consistent, unexpired and safely stored; 2 usage; 7 anything
wrong (each problem is listed: missing or unreadable files, a torn set whose device.json names
another certificate, a key that does not match, an expired certificate, files too open).`;

const FLAGS = {
  out: { type: 'string', env: true },
  json: { type: 'boolean', env: true },
} as const;

/** Run `status`; resolves with the exit code. */
export async function run(argv: string[], context: CommandContext): Promise<number> {
  const flags = parseFlags('status', argv, FLAGS, context.env);
  const output = new Output({ stdout: context.stdout, stderr: context.stderr });
  const status = await readSetStatus(resolve(flags.required('out')));
  const ok = status.problems.length === 0;
  if (flags.boolean('json')) {
    // In reading order; never a key or a PEM body.
    const shown = {
      ok,
      directory: status.directory,
      thingName: status.thingName,
      certificateId: status.certificateId,
      issuer: status.issuer,
      notAfter: status.notAfter,
      daysLeft: status.daysLeft,
      keyType: status.keyType,
      keyMatchesCertificate: status.keyMatchesCertificate,
      modes: status.modes,
      modesOk: status.modesOk,
      unfinished: status.unfinished,
      problems: status.problems,
    };
    output.printJson(shown);
  } else {
    const modes = status.modes;
    const rows: Array<[string, string | undefined]> = [
      ['directory', status.directory],
      ['thing', status.thingName],
      ['certificate', status.certificateId],
      ['issuer', status.issuer],
      [
        'not after',
        status.notAfter === undefined ? undefined : `${status.notAfter} (${status.daysLeft} days left)`,
      ],
      [
        'key',
        status.keyType === undefined
          ? undefined
          : `${status.keyType}, ${status.keyMatchesCertificate === true ? 'matches the certificate' : 'does NOT match the certificate'}`,
      ],
      [
        'modes',
        `directory ${modes.directory ?? '-'}, certificate ${modes.certificate ?? '-'}, key ${modes.privateKey ?? '-'}, device.json ${modes.deviceJson ?? '-'}${status.modesOk ? ' (ok)' : ''}`,
      ],
      ['unfinished', status.unfinished ? 'a staged set waits for the next provision or rotate' : undefined],
    ];
    for (const [label, value] of rows) if (value !== undefined) output.print(`${label.padEnd(12)}${value}`);
    output.print(`${'status'.padEnd(12)}${ok ? 'ok' : 'PROBLEMS'}`);
    for (const problem of status.problems) output.print(`  - ${problem}`);
  }
  return ok ? EXIT.ok : EXIT.persist;
}
