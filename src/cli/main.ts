#!/usr/bin/env node
/**
 * `fleet-provision`: the command line. Each command lives in its own module and is loaded only when
 * asked for, so `fleet-provision provision` never loads the simulator or its broker.
 */
import { readFileSync } from 'node:fs';
import type { Command, CommandContext } from './context.js';
import { EXIT, exitCodeOf } from './exit-codes.js';
import { forTerminal } from './output.js';

const COMMANDS: Record<string, () => Promise<Command>> = {
  provision: () => import('./commands/provision.js'),
  rotate: () => import('./commands/rotate.js'),
  status: () => import('./commands/status.js'),
  simulate: () => import('./commands/simulate.js'),
  demo: () => import('./commands/demo.js'),
  load: () => import('./commands/load.js'),
  doctor: () => import('./commands/doctor.js'),
  export: () => import('./commands/export.js'),
};

const USAGE = `Usage: fleet-provision <command> [options]

Provision devices on AWS IoT through Fleet Provisioning over MQTT.

Commands:
  provision   provision this device and write its credentials (idempotent)
  rotate      replace this device's certificate (--if-expires-within for timers)
  status      show the credentials: thing, certificate, expiry, key, file modes
  simulate    run a local AWS IoT Fleet Provisioning simulator until Ctrl-C
  demo        provision one device end to end against an in-process simulator
  load        provision many devices at once and report latency and throughput
  doctor      check a template, policies or an endpoint before a factory run
  export      copy the live credentials as plain files, for packaging

Options:
  --help      show this help (or a command's: fleet-provision provision --help)
  --version   print the version

Example:
  fleet-provision demo`;

function version(): string {
  const raw: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  return typeof raw === 'object' && raw !== null && 'version' in raw ? String(raw.version) : 'unknown';
}

/** Flags before a `--` terminator: `--help` after it is an argument, not a request for help. */
function wants(args: string[], ...flags: string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((arg) => flags.includes(arg));
}

async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (wants(args, '--version', '-v')) {
    process.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const load = COMMANDS[name];
  if (load === undefined) {
    process.stderr.write(`error: unknown command ${forTerminal(JSON.stringify(name))}\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  const command = await load();
  if (wants(rest, '--help', '-h')) {
    process.stdout.write(`${command.help}\n`);
    return EXIT.ok;
  }

  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130); // a second Ctrl-C: stop now
    controller.abort(new Error(`received ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const context: CommandContext = {
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    signal: controller.signal,
  };
  try {
    return await command.run(rest, context);
  } catch (error) {
    const code = exitCodeOf(error);
    const message = error instanceof Error ? error.message : String(error);
    const detail =
      code === EXIT.unexpected && error instanceof Error ? ` (${error.name}; please report this)` : '';
    // On a terminal, wipe the live progress line the error interrupts.
    const lead = process.stderr.isTTY ? '\r\x1b[2K' : '';
    process.stderr.write(`${lead}error: ${forTerminal(message)}${detail}\n`);
    return code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

// Warnings (the library's plaintext warning with --insecure among them) as the CLI's own "warning:"
// lines, redacted and terminal-safe, instead of Node's "(node:PID) Warning: …" with a trace hint.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  const lead = process.stderr.isTTY ? '\r\x1b[2K' : '';
  process.stderr.write(`${lead}warning: ${forTerminal(warning.message)}\n`);
});

// A reader that went away (`fleet-provision load … | head`) is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

process.exitCode = await main(process.argv.slice(2));
