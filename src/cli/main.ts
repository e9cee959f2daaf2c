#!/usr/bin/env node
/**
 * `fleet-provision`: the command line. Commands arrive with later issues; for now `--help` and
 * `--version`.
 */
import { readFileSync } from 'node:fs';

const USAGE = `Usage: fleet-provision <command> [options]

Provision devices on AWS IoT through Fleet Provisioning over MQTT.

Options:
  --help       show this help
  --version    print the version`;

function version(): string {
  const raw: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  return typeof raw === 'object' && raw !== null && 'version' in raw ? String(raw.version) : 'unknown';
}

const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write(`${version()}\n`);
} else if (args.length === 0 || args.includes('--help')) {
  process.stdout.write(`${USAGE}\n`);
} else {
  process.stderr.write(`fleet-provision: unknown command "${args[0]}"\n\n${USAGE}\n`);
  process.exitCode = 2;
}
