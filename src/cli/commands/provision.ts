/**
 * `fleet-provision provision`: onboard this device once. Idempotent: a complete set in `--out` made for
 * the same endpoint, template and parameters means it is done (exit 0, no network) unless `--force`; a
 * set made for something else is an error naming what differs. Decided as provision() decides it.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { type CredentialFiles, credentialFiles } from '../../device/credentials.js';
import { inspectExistingSet } from '../../device/existing-set.js';
import { hasUnfinishedSets } from '../../device/unfinished-sets.js';
import { optional } from '../../internal/optional.js';
import { endpointUrl, parseEndpoint } from '../../provision/endpoint.js';
import { provision } from '../../provision/provision.js';
import { parseFlags } from '../args.js';
import type { CommandContext } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { Output } from '../output.js';
import { progressLine } from '../progress-text.js';
import {
  CONNECTION_FLAGS_HELP,
  connectionFlagSpecs,
  connectionOptionsFrom,
  requestOptionsFrom,
  usesTls,
} from '../provision-flags.js';
import { SYSTEM_PARAM_FLAGS, SYSTEM_PARAM_HELP, systemParametersFrom } from '../system-params.js';

/** `--help` of `provision`. */
export const help = `Usage: fleet-provision provision --endpoint <host|url> --template <name>
         --claim-cert <file> --claim-key <file> [options]

Provision this device: get its own certificate (and key), register it with the template, and write
the credentials to --out. If --out already holds a complete set made for the same endpoint,
template and parameters, exit 0 without connecting; a set made for anything else is an error
(exit 2) that names what differs. An unfinished set left by an interrupted run is finished first.

Options:
${CONNECTION_FLAGS_HELP}
${SYSTEM_PARAM_HELP}
  --out <dir>             where to write the credentials (default ./credentials)
  --force                 provision again even if --out already holds a set (the old
                          certificate stays ACTIVE in AWS: deactivate it)
  --verify                reconnect with the new certificate afterwards (needs a key: not with --csr)
  --json                  print one JSON object on stdout (thingName, certificateId,
                          deviceConfiguration, files); progress stays on stderr
  --quiet                 no progress on stderr (errors still show)
  --help                  show this help

Every flag can also come from the environment: FLEET_PROVISION_ENDPOINT, FLEET_PROVISION_TEMPLATE,
FLEET_PROVISION_CLAIM_CERT, FLEET_PROVISION_CLAIM_KEY, FLEET_PROVISION_CA (a path, or the PEM text
itself), FLEET_PROVISION_PARAM (one KEY=VALUE per line), FLEET_PROVISION_PARAMS_JSON,
FLEET_PROVISION_OUT, FLEET_PROVISION_FORCE=1, … The command line wins.

Exit codes: 0 done (or already provisioned); 1 unexpected; 2 usage or invalid argument; 3 rejected;
4 timeout or aborted; 5 connection, subscribe, publish or TLS failure; 6 invalid response;
7 credentials could not be written.

Example:
  fleet-provision provision \\
    --endpoint abc123-ats.iot.eu-west-1.amazonaws.com \\
    --template FactoryTemplate --param SerialNumber=SN-0042 \\
    --claim-cert claim.pem.crt --claim-key claim.private.pem.key --ca AmazonRootCA1.pem \\
    --keys generate --out /etc/device/credentials --json`;

const FLAGS = {
  ...connectionFlagSpecs(true),
  ...SYSTEM_PARAM_FLAGS,
  out: { type: 'string', env: true },
  force: { type: 'boolean', env: true },
  verify: { type: 'boolean', env: true },
  json: { type: 'boolean', env: true },
  quiet: { type: 'boolean', env: true },
} as const;

/** What `--json` prints: never the private key, the certificate PEM or the ownership token. */
interface JsonResult {
  thingName?: string | undefined;
  certificateId: string;
  deviceConfiguration: Record<string, string>;
  files: CredentialFiles;
  alreadyProvisioned: boolean;
  verified?: boolean;
}

/** Run `provision`; resolves with the exit code. Errors propagate to main's exit-code table. */
export async function run(argv: string[], context: CommandContext): Promise<number> {
  const flags = parseFlags('provision', argv, FLAGS, context.env);
  const json = flags.boolean('json');
  const output = new Output({
    stdout: context.stdout,
    stderr: context.stderr,
    quiet: flags.boolean('quiet'),
  });
  const outDir = resolve(flags.string('out') ?? 'credentials');
  // The flags must make sense even when there is nothing to do, so a broken script fails the first time.
  // Only the claim files are left unread: a provisioned device may have deleted them.
  const endpoint = flags.required('endpoint');
  const fromSystem = await systemParametersFrom(flags);
  const requested = await requestOptionsFrom(flags);
  const request =
    fromSystem === undefined
      ? requested
      : { ...requested, parameters: { ...fromSystem, ...requested.parameters } };
  const verify = flags.boolean('verify');
  if (verify && typeof request.keys === 'object' && 'csr' in request.keys) {
    throw flags.usage('--verify needs the private key, which stays with your CSR: drop --verify or --csr.');
  }
  if (usesTls(endpoint)) {
    flags.required('claim-cert');
    flags.required('claim-key');
  }

  const force = flags.boolean('force');
  // A rotation's unfinished set is rotate's to finish: it does not stop the "already provisioned" answer.
  if (!force && !(await hasUnfinishedSets(outDir, 'provision'))) {
    // The library's own decision, made here before the claim files are read.
    const existing = await inspectExistingSet(outDir, {
      endpoint: endpointUrl(parseEndpoint(endpoint)),
      templateName: request.templateName,
      parameters: request.parameters,
      ...(typeof request.keys === 'object' && 'csr' in request.keys ? { csr: request.keys.csr } : {}),
    });
    if (existing.kind === 'match') {
      const files = filesIn(outDir);
      output.note(
        `already provisioned: ${existing.thingName === undefined ? 'no thing' : `thing ${existing.thingName}`}, ` +
          `certificate ${existing.certificateId}, in ${outDir} (use --force to provision again)`,
      );
      if (json) emitJson(output, { ...existing, files, alreadyProvisioned: true });
      return EXIT.ok;
    }
  }

  const device = await provision({
    ...request,
    ...(await connectionOptionsFrom(flags, (line) => output.warn(line))),
    outDir,
    existing: force ? 'replace' : 'reuse',
    verify,
    signal: context.signal,
    onProgress: (event) => output.status(progressLine(event)),
  });
  output.finish();
  const files = device.files ?? filesIn(outDir);
  for (const id of device.abandonedCertificateIds) {
    output.note(
      `certificate ${id} may be ACTIVE but was not kept: deactivate it (aws iot update-certificate --certificate-id ${id} --new-status INACTIVE)`,
    );
  }
  if (device.reused === true) {
    output.note(
      `already provisioned: ${device.thingName === undefined ? 'no thing' : `thing ${device.thingName}`}, ` +
        `certificate ${device.certificateId}, in ${outDir} (use --force to provision again)`,
    );
  }
  if (json) {
    emitJson(output, {
      ...optional('thingName', device.thingName),
      certificateId: device.certificateId,
      deviceConfiguration: device.deviceConfiguration,
      files,
      alreadyProvisioned: device.reused === true,
      ...optional('verified', device.verified),
    });
  } else if (output.mode !== 'quiet') {
    output.print(
      `provisioned ${device.thingName === undefined ? '(no thing)' : `thing ${device.thingName}`}`,
    );
    output.print(`  certificate id  ${device.certificateId}`);
    output.print(`  certificate     ${files.certificate}`);
    if (files.privateKey !== undefined) output.print(`  private key     ${files.privateKey} (mode 0600)`);
    output.print(`  device.json     ${files.deviceJson}`);
    if (device.verified !== undefined) output.print(`  verified        ${device.verified ? 'yes' : 'NO'}`);
  }
  return verify && device.verified === false ? EXIT.connection : EXIT.ok;
}

function emitJson(output: Output, result: JsonResult): void {
  const { thingName, certificateId, deviceConfiguration, files, alreadyProvisioned, verified } = result;
  // Fields picked one by one: whatever else a result may carry never reaches stdout.
  const picked = {
    ...optional('thingName', thingName),
    certificateId,
    deviceConfiguration,
    files,
    alreadyProvisioned,
    ...optional('verified', verified),
  };
  output.printJson(picked);
}

/** The set's paths as the library lays them out, with the key's when there is one. */
function filesIn(directory: string): CredentialFiles {
  return credentialFiles(directory, existsSync(credentialFiles(directory, true).privateKey ?? ''));
}
