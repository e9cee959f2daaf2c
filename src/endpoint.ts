/**
 * Where to connect: an AWS IoT endpoint as users write it, turned into protocol, host, port and ALPN.
 */
import { InvalidArgumentError } from './errors.js';

/** A parsed endpoint. */
export interface Endpoint {
  /** `mqtts` (mutual TLS, the AWS way) or `mqtt` (plain TCP, for a local broker only). */
  protocol: 'mqtts' | 'mqtt';
  /** Host name or IP address (IPv6 without brackets). */
  host: string;
  /** TCP port: 8883 by default for `mqtts`, 1883 for `mqtt`. */
  port: number;
  /** ALPN protocols to offer: `x-amzn-mqtt-ca` on port 443, as AWS IoT requires for MQTT there. */
  alpnProtocols: string[];
}

/** The ALPN protocol AWS IoT Core expects for MQTT with X.509 client certificates on port 443. */
export const AWS_MQTT_ALPN = 'x-amzn-mqtt-ca';
/** The port AWS IoT Core uses for MQTT over mutual TLS. */
export const DEFAULT_MQTTS_PORT = 8883;

/**
 * Parse `abc123-ats.iot.eu-west-1.amazonaws.com` (→ `mqtts://…:8883`), `host:port`, `mqtts://host:port`
 * or `mqtt://host:port`. Port 443 gets ALPN `x-amzn-mqtt-ca`.
 * @throws {InvalidArgumentError} for anything else.
 */
export function parseEndpoint(endpoint: unknown): Endpoint {
  if (typeof endpoint !== 'string' || endpoint.trim() === '') {
    throw new InvalidArgumentError(
      'An endpoint is required: your AWS IoT data endpoint (aws iot describe-endpoint --endpoint-type iot:Data-ATS), ' +
        'or a URL such as mqtts://host:8883.',
    );
  }
  const text = endpoint.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `mqtts://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new InvalidArgumentError(
      `Invalid endpoint ${JSON.stringify(text)}: use a host name or mqtts://host:port.`,
    );
  }
  const protocol = url.protocol.slice(0, -1);
  if (protocol !== 'mqtts' && protocol !== 'mqtt') {
    throw new InvalidArgumentError(
      `Unsupported endpoint scheme "${protocol}:" in ${JSON.stringify(text)}: use mqtts:// (or mqtt:// for a local broker).`,
    );
  }
  if (url.hostname === '' || (url.pathname !== '' && url.pathname !== '/') || url.username !== '') {
    throw new InvalidArgumentError(`Invalid endpoint ${JSON.stringify(text)}: give only a host and a port.`);
  }
  const port = url.port === '' ? (protocol === 'mqtts' ? DEFAULT_MQTTS_PORT : 1883) : Number(url.port);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return { protocol, host, port, alpnProtocols: protocol === 'mqtts' && port === 443 ? [AWS_MQTT_ALPN] : [] };
}

/** The endpoint as a URL string, for messages and `device.json`. */
export function endpointUrl(endpoint: Endpoint): string {
  const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
  return `${endpoint.protocol}://${host}:${endpoint.port}`;
}
