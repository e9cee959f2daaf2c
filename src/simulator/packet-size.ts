/**
 * The largest MQTT packet a client may send to the simulator: a packet over the limit closes the
 * connection before aedes reads it, as AWS closes the connection of an oversized message.
 */
import type { Socket } from 'node:net';
import { PacketSizeScanner } from '../mqtt/packet-size.js';

/**
 * Watch what `socket` delivers to its reader (aedes reads it with `read()`); on a packet over `maxBytes`,
 * destroy the socket before the reader gets the bytes (as AWS closes the connection of an oversized message).
 */
export function limitPacketSize(socket: Socket, maxBytes: number): void {
  const scanner = new PacketSizeScanner(maxBytes);
  const read = socket.read.bind(socket);
  let refused = false;
  socket.read = (size?: number): unknown => {
    if (refused) return null;
    const chunk: unknown = read(size);
    if (!(chunk instanceof Uint8Array) || !scanner.feed(chunk)) return chunk;
    refused = true;
    socket.destroy();
    return null;
  };
}
