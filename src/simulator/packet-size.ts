/**
 * The largest MQTT packet a client may send. The scanner reads only each packet's fixed header (type byte
 * and remaining length) as bytes arrive, so an oversized packet is refused before it is buffered whole.
 */
import type { Socket } from 'node:net';

/** Follows packet boundaries in a client's byte stream and reports a packet over `maxBytes`. */
export class PacketSizeScanner {
  readonly #maxBytes: number;
  #state: 'type' | 'length' | 'body' = 'type';
  #length = 0;
  #lengthBytes = 0;
  #multiplier = 1;
  #remaining = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Feed the next bytes; true once a packet declares more than `maxBytes` (fixed header included). */
  feed(chunk: Uint8Array): boolean {
    let i = 0;
    while (i < chunk.length) {
      switch (this.#state) {
        case 'type':
          i += 1;
          this.#state = 'length';
          this.#length = 0;
          this.#lengthBytes = 0;
          this.#multiplier = 1;
          break;
        case 'length': {
          const byte = chunk[i] ?? 0;
          i += 1;
          this.#length += (byte & 0x7f) * this.#multiplier;
          this.#multiplier *= 128;
          this.#lengthBytes += 1;
          if ((byte & 0x80) !== 0) {
            // A fifth length byte is malformed; the MQTT parser closes the connection on it.
            if (this.#lengthBytes === 4) return false;
            break;
          }
          if (1 + this.#lengthBytes + this.#length > this.#maxBytes) return true;
          this.#remaining = this.#length;
          this.#state = this.#remaining === 0 ? 'type' : 'body';
          break;
        }
        case 'body': {
          const taken = Math.min(this.#remaining, chunk.length - i);
          i += taken;
          this.#remaining -= taken;
          if (this.#remaining === 0) this.#state = 'type';
          break;
        }
      }
    }
    return false;
  }
}

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
