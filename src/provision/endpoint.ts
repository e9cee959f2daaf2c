/**
 * Where to connect: an AWS IoT endpoint as users write it, turned into protocol, host, port and ALPN.
 */
import { InvalidArgumentError } from '../protocol/errors.js';

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
  // Whatever the mistake, the message shows the endpoint without a user name or password in it.
  const shown = JSON.stringify(withoutCredentials(text));
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `mqtts://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new InvalidArgumentError(`Invalid endpoint ${shown}: use a host name or mqtts://host:port.`);
  }
  const protocol = url.protocol.slice(0, -1);
  if (protocol !== 'mqtts' && protocol !== 'mqtt') {
    throw new InvalidArgumentError(
      `Unsupported endpoint scheme "${protocol}:" in ${shown}: use mqtts:// (or mqtt:// for a local broker).`,
    );
  }
  if (url.username !== '' || url.password !== '') {
    throw new InvalidArgumentError(
      `Invalid endpoint ${shown}: AWS IoT authenticates devices by their certificate, not a user name or ` +
        'password. Give only a host and a port, and remove that password from wherever it is stored.',
    );
  }
  if (url.hostname === '' || (url.pathname !== '' && url.pathname !== '/')) {
    throw new InvalidArgumentError(`Invalid endpoint ${shown}: give only a host and a port.`);
  }
  const port = url.port === '' ? (protocol === 'mqtts' ? DEFAULT_MQTTS_PORT : 1883) : Number(url.port);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return { protocol, host, port, alpnProtocols: protocol === 'mqtts' && port === 443 ? [AWS_MQTT_ALPN] : [] };
}

/**
 * The endpoint as a URL string (an IPv6 host in brackets), for messages, `device.json` and the
 * simulator's `url`.
 */
export function endpointUrl(endpoint: Pick<Endpoint, 'protocol' | 'host' | 'port'>): string {
  const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
  return `${endpoint.protocol}://${host}:${endpoint.port}`;
}

/**
 * An endpoint as typed, with any `user:password@` removed, for messages: a password in a URL is never
 * repeated.
 */
export function withoutCredentials(text: string): string {
  return text.replace(
    /^([a-z][a-z0-9+.-]*:\/\/)?[^/?#]*@/i,
    (_match, scheme: string | undefined) => `${scheme ?? ''}***@`,
  );
}

/**
 * True for a host that is this machine: `localhost`, 127.0.0.0/8 and `::1`. Plain `mqtt://` is allowed
 * there without `insecure: true`: nothing crosses a network.
 */
export function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  return (
    name === 'localhost' ||
    name.endsWith('.localhost') ||
    /^127(?:\.\d{1,3}){3}$/.test(name) ||
    name === '::1' ||
    /^(?:0{1,4}:){7}0{0,3}1$/.test(name) ||
    /^::ffff:127(?:\.\d{1,3}){3}$/.test(name)
  );
}
