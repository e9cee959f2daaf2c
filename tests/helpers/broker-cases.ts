import { startAedes } from './aedes-broker.js';
import { startMosquitto } from './mosquitto.js';

/** One real broker to run a wire-level suite against. */
export interface BrokerCase {
  name: string;
  protocolVersion: 4 | 5;
  /** The SUBACK code this broker gives for a refused topic. */
  deniedCode: number;
  start(): Promise<{ url: string; close(): Promise<void> }>;
}

/**
 * In-process aedes (MQTT 3.1.1 only) and Debian's mosquitto on MQTT 3.1.1 and 5, each refusing
 * SUBSCRIBE to `denied` (0x80, or 0x87 "not authorized" on MQTT 5).
 */
export function brokerCases(denied: string): BrokerCase[] {
  return [
    {
      name: 'aedes, MQTT 3.1.1',
      protocolVersion: 4,
      deniedCode: 0x80,
      start: () =>
        startAedes({
          // aedes answers 0x80 for a null subscription (an error would close the connection instead).
          authorizeSubscribe: (_client, sub, done) =>
            sub.topic === denied ? done(null, null) : done(null, sub),
        }),
    },
    ...([4, 5] as const).map(
      (protocolVersion): BrokerCase => ({
        name: `mosquitto, MQTT ${protocolVersion === 4 ? '3.1.1' : '5'}`,
        protocolVersion,
        deniedCode: protocolVersion === 4 ? 0x80 : 0x87,
        start: () => startMosquitto({ denySubscribe: [denied] }),
      }),
    ),
  ];
}
