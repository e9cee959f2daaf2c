import { describe, expect, it } from '@jest/globals';
import {
  AWS_MQTT_ALPN,
  endpointUrl,
  isLoopbackHost,
  parseEndpoint,
  withoutCredentials,
} from '../../src/provision/endpoint.js';

describe('parseEndpoint', () => {
  it('takes a bare AWS data endpoint as mutual TLS on 8883, without ALPN', () => {
    expect(parseEndpoint('abc123-ats.iot.eu-west-1.amazonaws.com')).toEqual({
      protocol: 'mqtts',
      host: 'abc123-ats.iot.eu-west-1.amazonaws.com',
      port: 8883,
      alpnProtocols: [],
    });
  });

  it('offers the AWS ALPN protocol on port 443, and only there', () => {
    expect(parseEndpoint('example.com:443').alpnProtocols).toEqual([AWS_MQTT_ALPN]);
    expect(parseEndpoint('mqtts://example.com:8443').alpnProtocols).toEqual([]);
    expect(parseEndpoint('mqtt://127.0.0.1:443').alpnProtocols).toEqual([]);
  });

  it('defaults plain mqtt:// to 1883 and trims the text', () => {
    expect(parseEndpoint('  mqtt://localhost  ')).toEqual({
      protocol: 'mqtt',
      host: 'localhost',
      port: 1883,
      alpnProtocols: [],
    });
  });

  it('reads an IPv6 host without its brackets, and endpointUrl puts them back', () => {
    const endpoint = parseEndpoint('mqtts://[::1]:8883');
    expect(endpoint.host).toBe('::1');
    expect(endpointUrl(endpoint)).toBe('mqtts://[::1]:8883');
    expect(endpointUrl({ protocol: 'mqtt', host: 'broker.local', port: 1883 })).toBe(
      'mqtt://broker.local:1883',
    );
  });

  it.each([
    ['', /endpoint is required/],
    ['   ', /endpoint is required/],
    ['https://example.com', /Unsupported endpoint scheme "https:"/],
    ['mqtts://example.com/some/path', /give only a host and a port/],
    ['mqtts://exa mple.com', /Invalid endpoint/],
  ])('refuses %j with INVALID_ARGUMENT', (text, message) => {
    expect(() => parseEndpoint(text)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(message) }),
    );
  });

  it('refuses a non-string without echoing it', () => {
    expect(() => parseEndpoint(8883)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('refuses a user name and password, and never repeats the password', () => {
    let message = '';
    try {
      parseEndpoint('mqtts://device:hunter2-secret@example.com:8883');
    } catch (error) {
      message = error instanceof Error ? error.message : '';
    }
    expect(message).toMatch(/not a user name or password/);
    expect(message).not.toContain('hunter2-secret');
    expect(withoutCredentials('mqtts://device:hunter2@example.com')).toBe('mqtts://***@example.com');
  });
});

describe('isLoopbackHost', () => {
  it.each(['localhost', 'LOCALHOST.', 'a.localhost', '127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1'])(
    '%s is this machine',
    (host) => {
      expect(isLoopbackHost(host)).toBe(true);
    },
  );

  it.each(['example.com', '10.0.0.1', '128.0.0.1', '::2', 'localhost.example.com'])('%s is not', (host) => {
    expect(isLoopbackHost(host)).toBe(false);
  });
});
