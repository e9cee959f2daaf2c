/**
 * Flags of one command: `node:util` `parseArgs` in strict mode, with a fallback to
 * `FLEET_PROVISION_<FLAG>` environment variables (a CI secret is usually an env var), and typed readers
 * whose errors name the flag (or the variable) that was wrong.
 */
import { parseArgs } from 'node:util';
import { redact } from '../protocol/redact.js';

/** A mistake on the command line: exit code 2, with a message naming the flag. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** One flag a command accepts. */
export interface FlagSpec {
  type: 'string' | 'boolean';
  /** May be given more than once (`--param A=1 --param B=2`). */
  multiple?: boolean;
  /** Also read from `FLEET_PROVISION_<FLAG>` when not on the command line. */
  env?: boolean;
}

/** The flags of one command, by name without the dashes. */
export type FlagSpecs = Record<string, FlagSpec>;

/** `client-id` → `FLEET_PROVISION_CLIENT_ID`. */
export function envName(flag: string): string {
  return `FLEET_PROVISION_${flag.toUpperCase().replaceAll('-', '_')}`;
}

type Value = string | boolean | (string | boolean)[];

/** The parsed flags, each with where it came from (for error messages). */
export class Flags {
  readonly #command: string;
  readonly #values: Map<string, { value: Value; source: string }>;
  readonly #fromEnv: ReadonlySet<string>;

  constructor(
    command: string,
    values: Map<string, { value: Value; source: string }>,
    fromEnv: ReadonlySet<string> = new Set(),
  ) {
    this.#command = command;
    this.#values = values;
    this.#fromEnv = fromEnv;
  }

  /** `--name (or FLEET_PROVISION_NAME)` when the variable is read for this command, `--name` otherwise. */
  describe(name: string): string {
    return this.#fromEnv.has(name) ? `--${name} (or ${envName(name)})` : `--${name}`;
  }

  /** `--name` or `FLEET_PROVISION_NAME`, whichever gave the value. */
  source(name: string): string {
    return this.#values.get(name)?.source ?? `--${name}`;
  }

  /** True when the flag was given (on the command line or in the environment). */
  has(name: string): boolean {
    return this.#values.has(name);
  }

  /** A string flag, or undefined. An empty value counts as given-but-wrong. */
  string(name: string): string | undefined {
    const entry = this.#values.get(name);
    if (entry === undefined) return undefined;
    if (typeof entry.value !== 'string') return undefined;
    if (entry.value === '') throw this.usage(`${entry.source} needs a value.`);
    return entry.value;
  }

  /** A string flag that must be there. */
  required(name: string): string {
    const value = this.string(name);
    if (value === undefined) {
      throw this.usage(`missing required flag ${this.describe(name)}.`);
    }
    return value;
  }

  /** A boolean flag. */
  boolean(name: string): boolean {
    return this.#values.get(name)?.value === true;
  }

  /** Every value of a repeatable flag, in order. */
  strings(name: string): string[] {
    const value = this.#values.get(name)?.value;
    if (Array.isArray(value)) return value.filter((item) => typeof item === 'string');
    return typeof value === 'string' ? [value] : [];
  }

  /** A whole number within bounds, or undefined when absent. */
  integer(name: string, bounds: { min: number; max?: number }): number | undefined {
    const text = this.string(name);
    if (text === undefined) return undefined;
    const value = Number(text);
    const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
    if (!/^\d+$/.test(text.trim()) || value < bounds.min || value > max) {
      const range =
        bounds.max === undefined ? `${bounds.min} or more` : `from ${bounds.min} to ${bounds.max}`;
      throw this.usage(`${this.source(name)} must be a whole number ${range}, not ${shown(text)}.`);
    }
    return value;
  }

  /** One of a fixed set of words, or undefined when absent. */
  choice<T extends string>(name: string, choices: readonly T[]): T | undefined {
    const text = this.string(name);
    if (text === undefined) return undefined;
    const found = choices.find((c) => c === text);
    if (found === undefined) {
      throw this.usage(`${this.source(name)} must be one of ${choices.join(', ')}, not ${shown(text)}.`);
    }
    return found;
  }

  /** A usage error prefixed with the command. */
  usage(message: string): UsageError {
    return new UsageError(`${this.#command}: ${message}`);
  }
}

/**
 * Parse `argv` against `specs` (strict: unknown flags and stray arguments are usage errors), then fill
 * in flags marked `env` from `env`. The command line wins over the environment.
 * @throws {UsageError} naming the flag or variable.
 */
export function parseFlags(
  command: string,
  argv: string[],
  specs: FlagSpecs,
  env: NodeJS.ProcessEnv = {},
): Flags {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = { type: spec.type, ...(spec.multiple === true ? { multiple: true } : {}) };
  }
  const pem = pemArgument(argv);
  if (pem !== undefined) throw new UsageError(`${command}: ${pem}`);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new UsageError(`${command}: ${describeParseError(error)} See fleet-provision ${command} --help.`);
  }
  const values = new Map<string, { value: Value; source: string }>();
  for (const [name, value] of Object.entries(parsed.values)) {
    if (value !== undefined) values.set(name, { value, source: `--${name}` });
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.env !== true || values.has(name)) continue;
    const variable = envName(name);
    const text = env[variable];
    if (text === undefined || text === '') continue;
    values.set(name, { value: fromEnv(command, variable, text, spec), source: variable });
  }
  const envFlags = new Set(
    Object.entries(specs).flatMap(([name, spec]) => (spec.env === true ? [name] : [])),
  );
  return new Flags(command, values, envFlags);
}

/** A value as a message may repeat it: short, redacted, one line. */
export function shown(text: string): string {
  const clean = redact(text);
  return JSON.stringify(clean.length > 40 ? `${clean.slice(0, 40)}…` : clean);
}

/**
 * PEM text on the command line (`--claim-key "$(cat key.pem)"`): parseArgs would call it a flag
 * without its value, or an unknown flag. Say what it is instead, without repeating it.
 */
function pemArgument(argv: string[]): string | undefined {
  for (const [index, arg] of argv.entries()) {
    const inline = /^(--[a-z-]+)=[\s\S]*-----BEGIN /.exec(arg);
    const flag = inline?.[1] ?? (arg.includes('-----BEGIN ') ? argv[index - 1] : undefined);
    if (inline === null && !arg.includes('-----BEGIN ')) continue;
    const named = flag !== undefined && /^--[a-z-]+$/.test(flag) ? flag : 'an argument';
    const variable = named === 'an argument' ? 'its FLEET_PROVISION_* variable' : envName(named.slice(2));
    return (
      `${named} holds PEM text, but flags take the path of a file (text on the command line shows in ps ` +
      `and shell history): save it to a file and pass the path, or put the text in ${variable}.`
    );
  }
  return undefined;
}

function fromEnv(command: string, variable: string, text: string, spec: FlagSpec): Value {
  if (spec.type === 'boolean') {
    if (/^(1|true|yes|on)$/i.test(text)) return true;
    if (/^(0|false|no|off)$/i.test(text)) return false;
    throw new UsageError(`${command}: ${variable} must be true or false, not ${JSON.stringify(text)}.`);
  }
  // Several values of a repeatable flag: one per line, as a multi-line CI secret holds them.
  if (spec.multiple === true) return text.split(/\r?\n/).filter((line) => line.trim() !== '');
  return text;
}

/** parseArgs' messages are long and suggest `--`; say which flag and what is wrong instead. */
function describeParseError(error: unknown): string {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  const message = error instanceof Error ? error.message : String(error);
  const quoted = /'([^']+)'/.exec(message)?.[1];
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown flag ${quoted ?? message}.`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${JSON.stringify(quoted ?? message)}.`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const flag = quoted?.split(' ')[0] ?? 'a flag';
      return message.includes('does not take')
        ? `flag ${flag} takes no value.`
        : `flag ${flag} needs a value.`;
    }
    default:
      return message;
  }
}
