/**
 * A TCP proxy between MQTT clients and a broker that cuts the byte streams at packet boundaries, logs
 * every packet in the order it is forwarded (SUBSCRIBE topics, PUBLISH topic, SUBACK codes), can hold
 * SUBACKs from the broker until a test lets them go, and can drop every connection. Written for the
 * wire-order tests: "was the request published after the SUBACK reached the client?".
 */
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

/** One packet as it passed the proxy. */
export interface ProxiedPacket {
  /** `out`: client to broker; `in`: broker to client. */
  direction: 'out' | 'in';
  /** Which client connection (1 for the first accepted, and so on). */
  connection: number;
  /** `connect`, `subscribe`, `suback`, `publish`, … */
  cmd: string;
  /** SUBSCRIBE: the topic filters. */
  topics?: string[];
  /** PUBLISH: the topic. */
  topic?: string;
  /** SUBACK: the reason codes. */
  codes?: number[];
  /** SUBSCRIBE and SUBACK: the packet identifier. */
  messageId?: number;
  /** Total packet length in bytes. */
  length: number;
}

const COMMANDS = [
  'reserved',
  'connect',
  'connack',
  'publish',
  'puback',
  'pubrec',
  'pubrel',
  'pubcomp',
  'subscribe',
  'suback',
  'unsubscribe',
  'unsuback',
  'pingreq',
  'pingresp',
  'disconnect',
  'auth',
] as const;

export interface MqttProxy {
  readonly url: string;
  /** Every packet forwarded so far, in order. */
  readonly log: ProxiedPacket[];
  /**
   * Hold SUBACKs from the broker (and, to keep order, whatever follows them on that connection) until
   * `until` returns true for the log, checked on every packet. Holds until {@link MqttProxy.release}
   * when `until` is omitted.
   */
  holdSubacks(until?: (log: readonly ProxiedPacket[]) => boolean): void;
  /** As {@link MqttProxy.holdSubacks}, for PUBACKs. */
  holdPubacks(until?: (log: readonly ProxiedPacket[]) => boolean): void;
  /** Let held packets go. */
  release(): void;
  /** Resolves once a logged packet matches. */
  waitFor(match: (p: ProxiedPacket) => boolean): Promise<ProxiedPacket>;
  /** Destroy every client connection (and its broker side). */
  dropAll(): void;
  close(): Promise<void>;
}

/** Reads one varint (MQTT "variable byte integer") at `offset`; undefined when incomplete. */
function varint(buf: Buffer, offset: number): { value: number; size: number } | undefined {
  let value = 0;
  let multiplier = 1;
  for (let i = 0; i < 4; i++) {
    const byte = buf[offset + i];
    if (byte === undefined) return undefined;
    value += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return { value, size: i + 1 };
    multiplier *= 128;
  }
  throw new Error('malformed MQTT length');
}

function str(buf: Buffer, offset: number): { value: string; end: number } {
  const length = buf.readUInt16BE(offset);
  return { value: buf.subarray(offset + 2, offset + 2 + length).toString('utf8'), end: offset + 2 + length };
}

/** Splits a byte stream into whole MQTT packets. */
class PacketSplitter {
  #buffer = Buffer.alloc(0);
  push(chunk: Buffer): Buffer[] {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    const packets: Buffer[] = [];
    for (;;) {
      const length = varint(this.#buffer, 1);
      if (length === undefined) break;
      const total = 1 + length.size + length.value;
      if (this.#buffer.length < total) break;
      packets.push(this.#buffer.subarray(0, total));
      this.#buffer = this.#buffer.subarray(total);
    }
    return packets;
  }
}

function describePacket(
  packet: Buffer,
  direction: 'out' | 'in',
  connection: number,
  version: { level: number },
): ProxiedPacket {
  const type = (packet[0] ?? 0) >> 4;
  const cmd = COMMANDS[type] ?? 'reserved';
  const length = varint(packet, 1);
  const start = 1 + (length?.size ?? 1);
  const entry: ProxiedPacket = { direction, connection, cmd, length: packet.length };
  if (cmd === 'connect') {
    const name = str(packet, start);
    version.level = packet[name.end] ?? 4;
  } else if (cmd === 'publish') {
    entry.topic = str(packet, start).value;
  } else if (cmd === 'subscribe' || cmd === 'suback') {
    entry.messageId = packet.readUInt16BE(start);
    let offset = start + 2;
    if (version.level === 5) {
      const props = varint(packet, offset);
      offset += (props?.size ?? 1) + (props?.value ?? 0);
    }
    if (cmd === 'subscribe') {
      const topics: string[] = [];
      while (offset < packet.length) {
        const topic = str(packet, offset);
        topics.push(topic.value);
        offset = topic.end + 1;
      }
      entry.topics = topics;
    } else {
      entry.codes = [...packet.subarray(offset)];
    }
  }
  return entry;
}

/**
 * The topics the broker had acknowledged to the client on `connection` before the packet at `index`
 * of `log` (SUBACK codes below 0x80, matched to their SUBSCRIBE by packet identifier).
 */
export function acknowledgedBefore(
  log: readonly ProxiedPacket[],
  connection: number,
  index: number,
): string[] {
  const asked = new Map<number, string[]>();
  const acknowledged: string[] = [];
  for (const packet of log.slice(0, index)) {
    if (packet.connection !== connection || packet.messageId === undefined) continue;
    if (packet.cmd === 'subscribe') asked.set(packet.messageId, packet.topics ?? []);
    if (packet.cmd === 'suback') {
      const topics = asked.get(packet.messageId) ?? [];
      topics.forEach((topic, i) => {
        if ((packet.codes?.[i] ?? 0x80) < 0x80) acknowledged.push(topic);
      });
    }
  }
  return acknowledged;
}

/** What the proxy does to packets a client sends, beyond forwarding them. */
export interface ProxyRules {
  /** Packets that never reach the broker (an UNSUBSCRIBE that is never acknowledged). */
  drop?: (packet: ProxiedPacket) => boolean;
  /**
   * The first packet (of any connection) that matches sends its connection half-open: that packet and
   * everything after it, both ways, is swallowed, and nobody closes anything.
   */
  freeze?: (packet: ProxiedPacket) => boolean;
}

/** Start a proxy on 127.0.0.1 (port 0) to the broker at `target` (`mqtt://host:port`). */
export async function startMqttProxy(target: string, rules: ProxyRules = {}): Promise<MqttProxy> {
  const { hostname, port } = new URL(target);
  const log: ProxiedPacket[] = [];
  const sockets = new Set<Socket>();
  const watchers = new Set<() => void>();
  /** The packet type held (9 SUBACK, 4 PUBACK), or undefined. */
  let holding: number | undefined;
  let until: ((log: readonly ProxiedPacket[]) => boolean) | undefined;
  const held = new Set<() => void>();
  let connections = 0;
  let froze = false;

  const notify = () => {
    if (holding !== undefined && until?.(log) === true) proxy.release();
    for (const watcher of [...watchers]) watcher();
  };

  const server: Server = createServer({ noDelay: true }, (client) => {
    const connection = ++connections;
    const version = { level: 4 };
    const broker = connect({ host: hostname, port: Number(port), noDelay: true });
    sockets.add(client);
    sockets.add(broker);
    const end = () => {
      client.destroy();
      broker.destroy();
      sockets.delete(client);
      sockets.delete(broker);
    };
    client.on('error', end);
    broker.on('error', end);
    client.on('close', end);
    broker.on('close', end);

    let halfOpen = false;
    const outgoing = new PacketSplitter();
    client.on('data', (chunk: Buffer) => {
      for (const packet of outgoing.push(chunk)) {
        if (halfOpen) return;
        const described = describePacket(packet, 'out', connection, version);
        if (!froze && rules.freeze?.(described) === true) {
          froze = true;
          halfOpen = true;
          return;
        }
        if (rules.drop?.(described) === true) continue;
        log.push(described);
        broker.write(packet);
        notify();
      }
    });

    // Broker to client: one queue, so that holding a SUBACK holds what follows it too.
    const incoming = new PacketSplitter();
    const queue: Buffer[] = [];
    let blocked = false;
    const pump = () => {
      while (!blocked && queue.length > 0) {
        const packet = queue[0];
        if (packet === undefined) break;
        if (holding !== undefined && (packet[0] ?? 0) >> 4 === holding) {
          blocked = true;
          const resume = () => {
            held.delete(resume);
            blocked = false;
            pump();
          };
          held.add(resume);
          return;
        }
        queue.shift();
        if (client.destroyed || halfOpen) continue;
        log.push(describePacket(packet, 'in', connection, version));
        client.write(packet);
        notify();
      }
    };
    broker.on('data', (chunk: Buffer) => {
      queue.push(...incoming.push(chunk));
      pump();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');

  const proxy: MqttProxy = {
    url: `mqtt://127.0.0.1:${address.port}`,
    log,
    holdSubacks(condition) {
      holding = 9;
      until = condition;
    },
    holdPubacks(condition) {
      holding = 4;
      until = condition;
    },
    release() {
      holding = undefined;
      until = undefined;
      for (const resume of [...held]) resume();
    },
    waitFor(match) {
      return new Promise((resolve) => {
        const check = () => {
          const found = log.find(match);
          if (found === undefined) return;
          watchers.delete(check);
          resolve(found);
        };
        watchers.add(check);
        check();
      });
    },
    dropAll() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    async close() {
      proxy.release();
      proxy.dropAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}
