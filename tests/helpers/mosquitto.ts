import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
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

/** A loopback port nothing listens on right now (mosquitto has no "port 0"; a test may want a closed port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

/** Where Debian's mosquitto keeps its dynamic-security plugin. */
const DYNSEC_PLUGIN = '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so';

/**
 * Start mosquitto. `denySubscribe` lists topic filters whose SUBSCRIBE the broker refuses (SUBACK 0x80 on
 * MQTT 3.1.1, 0x87 on MQTT 5). mosquitto's plain acl_file never refuses a SUBSCRIBE (it filters on
 * delivery), so this uses its dynamic-security plugin, which does. `extraConfig` lines are appended to the
 * configuration file.
 */
export async function startMosquitto(
  options: { denySubscribe?: string[]; extraConfig?: string[] } = {},
): Promise<Mosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'mosquitto-'));
  // Started as root, mosquitto drops to its own user, which must still read its config and ACL.
  await chmod(dir, 0o755);
  const port = await freePort();
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    'set_tcp_nodelay true',
    'log_dest stderr',
  ];
  if (options.denySubscribe !== undefined) {
    const policy = {
      defaultACLAccess: {
        publishClientSend: true,
        publishClientReceive: true,
        subscribe: true,
        unsubscribe: true,
      },
      clients: [],
      groups: [{ groupname: 'anonymous', roles: [{ rolename: 'policy' }] }],
      anonymousGroup: 'anonymous',
      roles: [
        {
          rolename: 'policy',
          acls: options.denySubscribe.map((topic) => ({ acltype: 'subscribePattern', topic, allow: false })),
        },
      ],
    };
    await writeFile(join(dir, 'dynsec.json'), JSON.stringify(policy), { mode: 0o644 });
    lines.push(`plugin ${DYNSEC_PLUGIN}`, `plugin_opt_config_file ${join(dir, 'dynsec.json')}`);
  }
  lines.push(...(options.extraConfig ?? []));
  await writeFile(join(dir, 'mosquitto.conf'), `${lines.join('\n')}\n`);
  const child: ChildProcess = spawn(MOSQUITTO_BIN, ['-c', join(dir, 'mosquitto.conf')], {
    // stderr, unlike stdout, is not block-buffered when it is a pipe.
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = once(child, 'exit');
  // mosquitto logs "... running" once its listener is open: wait for that line, or for it to die.
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes(' running')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`mosquitto exited (${code}) before listening: ${seen}`)));
    child.once('error', reject);
  });
  child.stderr?.resume();
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
