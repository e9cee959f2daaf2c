import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { Aedes, type AedesOptions } from 'aedes';

/** A plain-TCP aedes broker on 127.0.0.1 and a free port (MQTT 3.1.1 only: aedes has no MQTT 5). */
export interface TestBroker {
  readonly broker: Aedes;
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startAedes(options: AedesOptions = {}): Promise<TestBroker> {
  const broker = await Aedes.createBroker(options);
  const sockets = new Set<Socket>();
  // noDelay: without it every small exchange waits on a delayed ACK (~40 ms), which only slows tests.
  const server: Server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return {
    broker,
    port: address.port,
    url: `mqtt://127.0.0.1:${address.port}`,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}
