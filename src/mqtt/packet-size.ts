/**
 * MQTT packet sizes, read off a byte stream: each packet's fixed header (type byte and remaining length)
 * is read as the bytes arrive, so an oversized packet is refused before anyone buffers it whole. Both
 * sides use it: the connections provision() opens, and the simulator's broker.
 * @internal
 */

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
