/**
 * Brokers and connections for the benches, with TCP_NODELAY on every socket: in-process aedes (plain
 * TCP) and Debian's mosquitto (`set_tcp_nodelay true`), both from the test helpers. Without it, Nagle's
 * algorithm and delayed ACKs add ~40 ms to each request-response exchange and the bench would measure
 * the kernel, not the client.
 */
import { connect as netConnect } from 'node:net';
import { MqttClient } from 'mqtt';
import { startAedes } from '../tests/helpers/aedes-broker.js';
import { startMosquitto } from '../tests/helpers/mosquitto.js';

/** A running broker. */
export interface BenchBroker {
  readonly name: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Answers a request topic with a topic and payload, or not at all. */
export type BenchAnswerer = (topic: string) => { topic: string; payload: Buffer } | undefined;

/**
 * aedes in this process, on a free loopback port. With `answer`, the broker itself plays the service
 * and, as AWS IoT does, sends each answer only to the client that asked (a responder client on a plain
 * broker would have every answer fanned out to every subscriber).
 */
export async function startBenchAedes(answer?: BenchAnswerer): Promise<BenchBroker> {
  const aedes = await startAedes();
  if (answer !== undefined) {
    aedes.broker.on('publish', (packet, client) => {
      if (client === null) return;
      const reply = answer(packet.topic);
      if (reply === undefined) return;
      client.publish(
        { cmd: 'publish', topic: reply.topic, payload: reply.payload, qos: 0, retain: false, dup: false },
        () => {},
      );
    });
  }
  return { name: 'aedes (in-process)', port: aedes.port, close: () => aedes.close() };
}

/** mosquitto with room for the concurrent runs. */
export async function startBenchMosquitto(): Promise<BenchBroker> {
  const mosquitto = await startMosquitto({ extraConfig: ['max_queued_messages 10000'] });
  return { name: 'mosquitto 2.0', port: mosquitto.port, close: () => mosquitto.close() };
}

let nextId = 0;

/**
 * An mqtt.js client on a socket with TCP_NODELAY, connected (CONNACK received): the way a user hands
 * the library a fast client (see docs/performance.md).
 */
export async function connectFast(port: number, protocolVersion: 4 | 5 = 4): Promise<MqttClient> {
  const client = new MqttClient(
    () => {
      const socket = netConnect({ host: '127.0.0.1', port });
      socket.setNoDelay(true);
      return socket;
    },
    { clientId: `bench-${process.pid}-${nextId++}`, protocolVersion, clean: true, reconnectPeriod: 0 },
  );
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}
