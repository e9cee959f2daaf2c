import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import { PacketSizeScanner } from '../../src/mqtt/packet-size.js';

/** A real PUBLISH packet with `payloadBytes` of payload, as mqtt.js would send it. */
function publish(payloadBytes: number): Buffer {
  return mqttPacket.generate({
    cmd: 'publish',
    topic: 't/x',
    payload: Buffer.alloc(payloadBytes, 1),
    qos: 1,
    messageId: 1,
    retain: false,
    dup: false,
  });
}

describe('PacketSizeScanner', () => {
  it('reports a packet over the limit however the stream is cut into chunks, and only then', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 16, max: 300 }),
        (sizes, cuts, max) => {
          const packets = sizes.map(publish);
          const stream = Buffer.concat(packets);
          const scanner = new PacketSizeScanner(max);
          let reported = false;
          let offset = 0;
          for (let i = 0; offset < stream.length; i++) {
            const length = cuts[i % cuts.length] ?? 1;
            if (scanner.feed(stream.subarray(offset, offset + length))) {
              reported = true;
              break;
            }
            offset += length;
          }
          expect(reported).toBe(packets.some((p) => p.length > max));
        },
      ),
    );
  });

  it('reports an oversized packet from its fixed header alone, before its body arrives', () => {
    const header = publish(100_000).subarray(0, 4);
    expect(new PacketSizeScanner(1024).feed(header)).toBe(true);
  });
});
