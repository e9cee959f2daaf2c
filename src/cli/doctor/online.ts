/**
 * `fleet-provision doctor --endpoint …`: checks a real endpoint the way a device would meet it, step by
 * step (DNS, TCP on 8883 and 443, the TLS handshake with the CA, the claim certificate, SUBSCRIBE to the
 * answer topics), and never publishes a request, so nothing is created in the account.
 */
import { lookup } from 'node:dns/promises';
import { isIP, connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import mqtt, { type MqttClient } from 'mqtt';
import { optional } from '../../internal/optional.js';
import { operationTopics } from '../../protocol/topics.js';
import { endpointUrl } from '../../provision/endpoint.js';
import { type DoctorCheck, fail, ok } from './offline.js';

/** What the online doctor is given. */
export interface OnlineInput {
  endpoint: string;
  claimCertificate: string;
  claimPrivateKey: string;
  caCertificate?: string;
  templateName: string;
  clientId: string;
  timeoutMs: number;
}

/** `abc-ats.iot…` → 8883 and 443; `mqtts://host:port` → that port only. */
export function endpointTargets(endpoint: string): { host: string; ports: number[] } {
  const match = /^mqtts:\/\/(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/i.exec(endpoint.trim());
  if (match === null) return { host: endpoint.trim(), ports: [8883, 443] };
  const host = (match[1] ?? '').replace(/^\[|\]$/g, '');
  return { host, ports: [match[2] === undefined ? 8883 : Number(match[2])] };
}

function codeOf(error: unknown): string {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  return typeof code === 'string' ? code : error instanceof Error ? error.message : String(error);
}

/** Run every online check, stopping a port's checks at its first failure. */
export async function onlineChecks(input: OnlineInput): Promise<DoctorCheck[]> {
  const { host, ports } = endpointTargets(input.endpoint);
  const checks: DoctorCheck[] = [];
  if (isIP(host) === 0) {
    try {
      const addresses = await lookup(host, { all: true });
      checks.push(ok(`DNS ${host}`, addresses.map((a) => a.address).join(', ')));
    } catch (error) {
      checks.push(fail(`DNS ${host}`, `the name does not resolve (${codeOf(error)})`, codeOf(error)));
      return checks;
    }
  }
  let mqttPort: number | undefined;
  for (const port of ports) {
    const tcp = await tcpCheck(host, port, input.timeoutMs);
    checks.push(tcp);
    if (!tcp.ok) continue;
    const tls = await tlsCheck(host, port, input);
    checks.push(tls);
    if (tls.ok) mqttPort ??= port;
  }
  if (mqttPort !== undefined) checks.push(...(await mqttChecks(host, mqttPort, input)));
  return checks;
}

function tcpCheck(host: string, port: number, timeoutMs: number): Promise<DoctorCheck> {
  const name = `TCP ${host}:${port}`;
  return new Promise((resolve) => {
    const socket = netConnect({ host, port });
    const done = (check: DoctorCheck) => {
      socket.destroy();
      resolve(check);
    };
    socket.setTimeout(timeoutMs, () => done(fail(name, `no answer within ${timeoutMs} ms`, 'ETIMEDOUT')));
    socket.once('connect', () => done(ok(name, 'open')));
    socket.once('error', (error) => done(fail(name, `cannot connect (${codeOf(error)})`, codeOf(error))));
  });
}

function tlsOptions(host: string, port: number, input: OnlineInput) {
  return {
    host,
    port,
    ...(isIP(host) === 0 ? { servername: host } : {}),
    ...optional('ca', input.caCertificate),
    cert: input.claimCertificate,
    key: input.claimPrivateKey,
    rejectUnauthorized: true,
    ...(port === 443 ? { ALPNProtocols: ['x-amzn-mqtt-ca'] } : {}),
  };
}

function tlsCheck(host: string, port: number, input: OnlineInput): Promise<DoctorCheck> {
  const name = `TLS ${host}:${port}${port === 443 ? ' (ALPN x-amzn-mqtt-ca)' : ''}`;
  return new Promise((resolve) => {
    const socket = tlsConnect(tlsOptions(host, port, input));
    const done = (check: DoctorCheck) => {
      socket.destroy();
      resolve(check);
    };
    socket.setTimeout(input.timeoutMs, () => done(fail(name, 'the handshake did not finish', 'ETIMEDOUT')));
    socket.once('secureConnect', () => {
      if (port === 443 && socket.alpnProtocol !== 'x-amzn-mqtt-ca') {
        done(fail(name, 'the server did not agree to ALPN x-amzn-mqtt-ca', 'no ALPN'));
        return;
      }
      done(ok(name, `server certificate verified (${socket.getProtocol() ?? 'TLS'})`));
    });
    socket.once('error', (error) =>
      done(
        fail(
          name,
          `the handshake failed (${codeOf(error)}): is --ca the CA that signed the server's certificate?`,
          codeOf(error),
        ),
      ),
    );
  });
}

async function mqttChecks(host: string, port: number, input: OnlineInput): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  let client: MqttClient;
  try {
    client = await connectClaim(endpointUrl({ protocol: 'mqtts', host, port }), host, port, input);
    checks.push(ok('claim certificate: CONNECT', `accepted (client id ${input.clientId})`));
  } catch (error) {
    checks.push(
      fail(
        'claim certificate: CONNECT',
        `refused: the certificate is not registered and ACTIVE, or its policy does not allow iot:Connect for client id ${input.clientId} (${codeOf(error)})`,
        typeof codeOf(error) === 'string' && /^\d+$/.test(codeOf(error))
          ? `CONNACK ${codeOf(error)}`
          : codeOf(error),
      ),
    );
    return checks;
  }
  try {
    const create = operationTopics('CreateKeysAndCertificate', 'json', input.templateName);
    const register = operationTopics('RegisterThing', 'json', input.templateName);
    for (const topic of [create.accepted, create.rejected, register.accepted, register.rejected]) {
      const granted = await client.subscribeAsync(topic, { qos: 1 }).then(
        () => true,
        () => false,
      );
      checks.push(
        granted
          ? ok(`SUBSCRIBE ${topic}`, 'granted')
          : fail(
              `SUBSCRIBE ${topic}`,
              `the claim policy does not allow iot:Subscribe on topicfilter/${topic}`,
              'SUBACK 0x80 (failure)',
            ),
      );
    }
  } finally {
    await client.endAsync(true);
  }
  return checks;
}

function connectClaim(url: string, host: string, port: number, input: OnlineInput): Promise<MqttClient> {
  const client = mqtt.connect(url, {
    ...tlsOptions(host, port, input),
    clientId: input.clientId,
    reconnectPeriod: 0,
    connectTimeout: input.timeoutMs,
  });
  return new Promise((resolve, reject) => {
    const failed = (error: unknown) => {
      client.removeAllListeners();
      client.on('error', () => {});
      client.end(true, () => reject(error));
    };
    client.once('connect', () => {
      client.removeAllListeners('error');
      client.removeAllListeners('close');
      resolve(client);
    });
    client.once('error', (error) => {
      const code: unknown = Reflect.get(error, 'code');
      failed(
        Object.assign(new Error(error.message), { code: typeof code === 'number' ? String(code) : code }),
      );
    });
    // TLS 1.3 reports a refused client certificate as a close after the handshake.
    client.once('close', () => failed(Object.assign(new Error('closed'), { code: 'closed by the server' })));
  });
}
