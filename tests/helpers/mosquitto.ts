import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian's mosquitto, started by hand on a loopback port with its own config. */
export interface Mosquitto {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';

/** mosquitto has no "port 0": ask the kernel for a free port, then hand it over. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

/**
 * Start mosquitto. `acl` is the text of an ACL file for anonymous clients (e.g. `topic readwrite a/#`);
 * without it every topic is allowed.
 */
export async function startMosquitto(options: { acl?: string } = {}): Promise<Mosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'mosquitto-'));
  const port = await freePort();
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    'log_dest stdout',
  ];
  if (options.acl !== undefined) {
    await writeFile(join(dir, 'acl'), `${options.acl}\n`);
    lines.push(`acl_file ${join(dir, 'acl')}`);
  }
  await writeFile(join(dir, 'mosquitto.conf'), `${lines.join('\n')}\n`);
  const child: ChildProcess = spawn(MOSQUITTO_BIN, ['-c', join(dir, 'mosquitto.conf')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  // mosquitto logs "... running" once its listener is open: wait for that line, or for it to die.
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes(' running')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`mosquitto exited (${code}) before listening: ${seen}`)));
    child.once('error', reject);
  });
  child.stdout?.resume();
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
