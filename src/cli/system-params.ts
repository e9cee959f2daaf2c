/**
 * `--param-from-system KEY=FACT`: template parameters read from the machine (hostname, mac, ip, serial,
 * interface, certificate-id), so a factory image runs the same command on every device.
 */
import { SYSTEM_FACT_NAMES, systemFacts } from '../device/system-facts.js';
import { optional } from '../internal/optional.js';
import type { FlagSpecs, Flags } from './args.js';
import { readPem } from './provision-flags.js';

/** The flags: repeatable `--param-from-system` and `--system-root`. */
export const SYSTEM_PARAM_FLAGS = {
  'param-from-system': { type: 'string', multiple: true, env: true },
  'system-root': { type: 'string', env: true },
} as const satisfies FlagSpecs;

/** The help lines of the flags. */
export const SYSTEM_PARAM_HELP = `  --param-from-system KEY=FACT
                          a template parameter read from this machine; FACT is one of
                          ${Object.keys(SYSTEM_FACT_NAMES).join(', ')} (e.g. SerialNumber=serial); --param wins
  --system-root <dir>     read /proc, /sys and /etc under <dir> (an image being prepared)`;

/**
 * The parameters `--param-from-system` asks for, or undefined when it was not given.
 * @throws {UsageError} on an unknown fact, or a fact this machine does not have.
 */
export async function systemParametersFrom(flags: Flags): Promise<Record<string, string> | undefined> {
  const pairs = flags.strings('param-from-system');
  if (pairs.length === 0) return undefined;
  const wanted: Array<[string, keyof typeof SYSTEM_FACT_NAMES]> = [];
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    const fact = pair.slice(at + 1);
    if (at <= 0 || !Object.hasOwn(SYSTEM_FACT_NAMES, fact)) {
      throw flags.usage(
        `${flags.source('param-from-system')} takes KEY=FACT with FACT one of ${Object.keys(SYSTEM_FACT_NAMES).join(', ')}, not ${JSON.stringify(pair)}.`,
      );
    }
    wanted.push([pair.slice(0, at), fact as keyof typeof SYSTEM_FACT_NAMES]);
  }
  const root = flags.string('system-root');
  const needsCertificate = wanted.some(([, fact]) => fact === 'certificate-id');
  const facts = await systemFacts({
    ...optional('root', root),
    ...(needsCertificate ? { claimCertificate: await readPem(flags, 'claim-cert', 'certificate') } : {}),
  });
  const out: Record<string, string> = {};
  for (const [key, fact] of wanted) {
    const value = facts[SYSTEM_FACT_NAMES[fact]];
    if (value === undefined || value === '') {
      throw flags.usage(`${flags.source('param-from-system')}: this machine has no ${fact} to give ${key}.`);
    }
    out[key] = value;
  }
  return out;
}
