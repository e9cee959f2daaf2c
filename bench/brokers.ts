/**
 * Brokers and connections for the benches, with TCP_NODELAY on every socket: in-process aedes (plain
 * TCP) and Debian's mosquitto (`set_tcp_nodelay true`). Without it, Nagle's algorithm and delayed ACKs
 * add ~40 ms to each request-response exchange and the bench would measure the kernel, not the client.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import { MqttClient } from 'mqtt';
import { MOSQUITTO_BIN } from '../tests/helpers/mosquitto.js';

/** A running broker. */
export interface BenchBroker {
  readonly name: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Answers a request topic with a topic and payload, or not at all. */
export type BenchAnswerer = (topic: string) => { topic: string; payload: Buffer } | undefined;

/**
 * aedes in this process, on a free loopback port, TCP_NODELAY on accepted sockets. With `answer`, the
 * broker itself plays the service and, as AWS IoT does, sends each answer only to the client that asked
 * (a responder client on a plain broker would have every answer fanned out to every subscriber).
 */
export async function startBenchAedes(answer?: BenchAnswerer): Promise<BenchBroker> {
  const broker = await Aedes.createBroker();
  if (answer !== undefined) {
    broker.on('publish', (packet, client) => {
      if (client === null) return;
      const reply = answer(packet.topic);
      if (reply === undefined) return;
      client.publish(
        { cmd: 'publish', topic: reply.topic, payload: reply.payload, qos: 0, retain: false, dup: false },
        () => {},
      );
    });
  }
  const sockets = new Set<Socket>();
  const server: Server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return {
    name: 'aedes (in-process)',
    port: address.port,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

/** mosquitto with TCP_NODELAY and room for the concurrent runs. */
export async function startBenchMosquitto(): Promise<BenchBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-mosquitto-'));
  await chmod(dir, 0o755);
  const port = await freePort();
  const config = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    'set_tcp_nodelay true',
    'max_queued_messages 10000',
    'log_dest stderr',
    'log_type error',
  ];
  await writeFile(join(dir, 'mosquitto.conf'), `${config.join('\n')}\n`);
  const child: ChildProcess = spawn(MOSQUITTO_BIN, ['-c', join(dir, 'mosquitto.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = once(child, 'exit');
  // Wait until the port takes connections.
  for (let attempt = 0; ; attempt++) {
    const ok = await new Promise<boolean>((resolve) => {
      const probe = netConnect({ host: '127.0.0.1', port });
      probe.once('connect', () => {
        probe.destroy();
        resolve(true);
      });
      probe.once('error', () => resolve(false));
    });
    if (ok) break;
    if (child.exitCode !== null || attempt > 200) throw new Error('mosquitto did not start');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return {
    name: 'mosquitto 2.0',
    port,
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

let nextId = 0;

/**
 * An mqtt.js client on a socket with TCP_NODELAY, connected (CONNACK received): the way a user hands
 * the library a fast client (see docs/performance.md).
 */
export async function connectFast(port: number): Promise<MqttClient> {
  const client = new MqttClient(
    () => {
      const socket = netConnect({ host: '127.0.0.1', port });
      socket.setNoDelay(true);
      return socket;
    },
    { clientId: `bench-${process.pid}-${nextId++}`, protocolVersion: 4, clean: true, reconnectPeriod: 0 },
  );
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}
