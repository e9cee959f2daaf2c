import { randomUUID } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

/** A real mqtt.js client, connected, with reconnects off so a test controls every connection. */
export async function connectClient(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, {
    clientId: `test-${randomUUID()}`,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    ...options,
  });
}

/** Close every client given, forcefully, and wait for each to finish. */
export async function closeClients(...clients: Array<MqttClient | undefined>): Promise<void> {
  await Promise.all(clients.map((c) => c?.endAsync(true)));
}
