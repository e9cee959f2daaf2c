/**
 * `fleet-provision export`: copy the live credentials of `--out` as three plain files into `--to`, for
 * packaging (container images, Kubernetes secrets, archives) where the symlink layout of a credentials
 * directory would not survive the copy.
 */
import { resolve } from 'node:path';
import { CREDENTIAL_FILES, credentialFiles, readCurrentCredentials } from '../../device/credentials.js';
import {
  ensurePrivateDirectory,
  persisting,
  syncDirectory,
  writeFileAtomic,
} from '../../device/durable-files.js';
import { PersistFailedError } from '../../protocol/errors.js';
import { parseFlags } from '../args.js';
import type { CommandContext } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { Output } from '../output.js';

/** `--help` of `export`. */
export const help = `Usage: fleet-provision export --out <dir> --to <dir> [--json]

Write the live credentials of --out (certificate.pem.crt, private.pem.key, device.json) into --to as
plain files: no symlinks, certificate and device.json 0644, key 0600, directory 0700. Use it to package
the credentials with tools that do not follow the symlinks of a credentials directory
(kubectl create secret --from-file=DIR keeps only regular files; Node's fs.cp rewrites relative links).

Options:
  --out <dir>   the credentials directory (default ./credentials)
  --to <dir>    where to write the plain files (created 0700 if missing)
  --json        print the written paths as one JSON object on stdout
  --help        show this help

Exit codes: 0 done; 2 usage; 7 nothing complete to export, or the files could not be written.

Example:
  fleet-provision export --out /etc/device/credentials --to ./package/credentials`;

const FLAGS = {
  out: { type: 'string', env: true },
  to: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** Run `export`; resolves with the exit code. */
export async function run(argv: string[], context: CommandContext): Promise<number> {
  const flags = parseFlags('export', argv, FLAGS, context.env);
  const output = new Output({ stdout: context.stdout, stderr: context.stderr });
  const from = resolve(flags.string('out') ?? 'credentials');
  const to = resolve(flags.required('to'));
  if (to === from) throw flags.usage('--to must be another directory than --out.');
  const { certificatePem, privateKeyPem, device } = await readCurrentCredentials(from);
  if (certificatePem === undefined || device === undefined || device === null) {
    throw new PersistFailedError(
      `${from} holds no complete set of credentials to export (certificate.pem.crt and device.json are needed). ` +
        'Provision first: fleet-provision provision --out …',
    );
  }
  await persisting('write the exported credentials', to, async () => {
    await ensurePrivateDirectory(to);
    await writeFileAtomic(to, CREDENTIAL_FILES.certificate, certificatePem, 0o644);
    if (privateKeyPem !== undefined)
      await writeFileAtomic(to, CREDENTIAL_FILES.privateKey, privateKeyPem, 0o600);
    await writeFileAtomic(to, CREDENTIAL_FILES.deviceJson, `${JSON.stringify(device, null, 2)}\n`, 0o644);
    await syncDirectory(to);
  });
  const files = credentialFiles(to, privateKeyPem !== undefined);
  if (flags.boolean('json')) output.printJson({ certificateId: device.certificateId, files });
  else output.print(`exported certificate ${device.certificateId} to ${to} as plain files`);
  return EXIT.ok;
}
