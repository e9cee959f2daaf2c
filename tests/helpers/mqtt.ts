import { randomUUID } from 'node:crypto';
import { Socket } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

/** A real mqtt.js client, connected, with reconnects off so a test controls every connection. */
export async function connectClient(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, {
    clientId: `test-${randomUUID()}`,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    ...options,
  });
  // As the library does on its own connections: Nagle's algorithm only slows request-response tests.
  const stream: unknown = client.stream;
  if (stream instanceof Socket) stream.setNoDelay(true);
  return client;
}

/** Close every client given, forcefully, and wait for each to finish. */
export async function closeClients(...clients: Array<MqttClient | undefined>): Promise<void> {
  await Promise.all(clients.map((c) => c?.endAsync(true)));
}
