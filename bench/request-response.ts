/**
 * `npm run bench`: a full CreateKeysAndCertificate → RegisterThing flow through FleetProvisioningClient,
 * against a hand-written minimal mqtt.js flow (one SUBSCRIBE with the four filters, then the two
 * requests), on the same broker in the same run: in-process aedes and mosquitto; cold (a new connection,
 * nothing subscribed yet) and warm (subscriptions kept); one flow at a time and 100 connections at once.
 * A minimal responder client answers with canned payloads, so the bench measures the client, not X.509.
 * TCP_NODELAY is set on every socket (see docs/performance.md). Times exclude TCP connect and CONNECT.
 * Last, on aedes: provision() with the connection handed in, against the hand-written flow doing the same
 * SUBSCRIBE, two requests and UNSUBSCRIBE (provision() also checks the certificate against the key).
 */
import { createPrivateKey } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import { FleetProvisioningClient } from '../src/client/fleet-provisioning-client.js';
import { generateKeyPair } from '../src/device/keys.js';
import { provision } from '../src/provision/provision.js';
import { topics } from '../src/protocol/topics.js';
import { issueCertificate, makeCa } from '../tests/helpers/x509.js';
import { type BenchBroker, connectFast, startBenchAedes, startBenchMosquitto } from './brokers.js';
import { renderChart } from './chart.js';

const TEMPLATE = 'BenchTemplate';
const KEYS = topics.createKeysAndCertificate();
const REGISTER = topics.registerThing(TEMPLATE);
const FILTERS = [KEYS.accepted, KEYS.rejected, REGISTER.accepted, REGISTER.rejected];

/**
 * A real RSA 2048 key and a certificate for it, as AWS's answer carries (about 3.5 KB): provision() checks
 * that the two belong together, so the bench must pay for that check with real material.
 */
async function realKeysAnswer(): Promise<Buffer> {
  const ca = await makeCa();
  const pair = await generateKeyPair('rsa-2048');
  return Buffer.from(
    JSON.stringify({
      certificateId: 'f'.repeat(64),
      certificatePem: await issueCertificate(ca, pair.publicKeyPem),
      // AWS hands out PKCS#1 (`-----BEGIN RSA PRIVATE KEY-----`).
      privateKey: createPrivateKey(pair.privateKeyPem).export({ type: 'pkcs1', format: 'pem' }).toString(),
      certificateOwnershipToken: `token-${'t'.repeat(400)}`,
    }),
  );
}
const KEYS_ANSWER = await realKeysAnswer();
const REGISTER_ANSWER = Buffer.from(JSON.stringify({ thingName: 'bench-thing', deviceConfiguration: {} }));

/** The service's canned answers. */
function answerFor(topic: string): { topic: string; payload: Buffer } | undefined {
  if (topic === KEYS.request) return { topic: KEYS.accepted, payload: KEYS_ANSWER };
  if (topic === REGISTER.request) return { topic: REGISTER.accepted, payload: REGISTER_ANSWER };
  return undefined;
}

/** The service stand-in on a plain broker: a client that answers every request at once. */
async function startResponder(port: number): Promise<MqttClient> {
  const responder = await connectFast(port);
  responder.on('message', (topic) => {
    const answer = answerFor(topic);
    if (answer !== undefined) responder.publish(answer.topic, answer.payload, { qos: 0 });
  });
  await responder.subscribeAsync([KEYS.request, REGISTER.request], { qos: 1 });
  return responder;
}

// ---- the hand-written flow: what a careful engineer writes with mqtt.js and nothing else ----

function answerOn(client: MqttClient, accepted: string, rejected: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const onMessage = (topic: string, payload: Buffer) => {
      if (topic !== accepted && topic !== rejected) return;
      client.removeListener('message', onMessage);
      if (topic === rejected) reject(new Error(payload.toString()));
      else resolve(payload);
    };
    client.on('message', onMessage);
  });
}

async function handWrittenFlow(client: MqttClient, subscribe: boolean): Promise<void> {
  if (subscribe) await client.subscribeAsync(FILTERS, { qos: 1 });
  const keysAnswer = answerOn(client, KEYS.accepted, KEYS.rejected);
  await client.publishAsync(KEYS.request, Buffer.from('{}'), { qos: 1 });
  const keys: unknown = JSON.parse((await keysAnswer).toString());
  const token =
    typeof keys === 'object' && keys !== null ? Reflect.get(keys, 'certificateOwnershipToken') : undefined;
  const thingAnswer = answerOn(client, REGISTER.accepted, REGISTER.rejected);
  await client.publishAsync(
    REGISTER.request,
    Buffer.from(JSON.stringify({ certificateOwnershipToken: token, parameters: { SerialNumber: 'SN' } })),
    { qos: 1 },
  );
  JSON.parse((await thingAnswer).toString());
}

// ---- the same flow through the library ----

async function libraryFlow(client: FleetProvisioningClient, prepare: boolean): Promise<void> {
  if (prepare) {
    await client.prepare([
      { operation: 'CreateKeysAndCertificate' },
      { operation: 'RegisterThing', templateName: TEMPLATE },
    ]);
  }
  const keys = await client.createKeysAndCertificate();
  await client.registerThing({
    templateName: TEMPLATE,
    certificateOwnershipToken: keys.certificateOwnershipToken,
    parameters: { SerialNumber: 'SN' },
  });
}

/**
 * provision() on a connection handed in: it subscribes both pairs in one SUBSCRIBE, runs both calls,
 * checks the certificate against the key, and unsubscribes when done.
 */
async function provisionFlow(mqtt: MqttClient): Promise<void> {
  await provision({
    client: mqtt,
    templateName: TEMPLATE,
    parameters: { SerialNumber: 'SN' },
    retry: false,
  });
}

/** The hand-written flow doing the same work as provisionFlow: subscribe, both calls, unsubscribe. */
async function handWrittenWithUnsubscribe(mqtt: MqttClient): Promise<void> {
  await handWrittenFlow(mqtt, true);
  await mqtt.unsubscribeAsync(FILTERS);
}

/** provision() against the hand-written flow on one long-lived connection each, alternating. */
async function provisionCase(port: number, n: number): Promise<{ lib: number[]; hand: number[] }> {
  const lib: number[] = [];
  const hand: number[] = [];
  const ours = await connectFast(port);
  const theirs = await connectFast(port);
  for (let i = 0; i < n; i++) {
    let start = performance.now();
    await provisionFlow(ours);
    lib.push(performance.now() - start);
    start = performance.now();
    await handWrittenWithUnsubscribe(theirs);
    hand.push(performance.now() - start);
  }
  await Promise.all([ours.endAsync(true), theirs.endAsync(true)]);
  return { lib, hand };
}

type Flow = 'library' | 'hand-written';

/** One timed flow. Cold: a new connection (not timed) and nothing subscribed. */
async function coldOnce(port: number, flow: Flow): Promise<number> {
  const mqtt = await connectFast(port);
  const start = performance.now();
  if (flow === 'library') {
    const client = new FleetProvisioningClient(mqtt);
    await libraryFlow(client, true);
    const elapsed = performance.now() - start;
    await client.close();
    await mqtt.endAsync(true);
    return elapsed;
  }
  await handWrittenFlow(mqtt, true);
  const elapsed = performance.now() - start;
  await mqtt.endAsync(true);
  return elapsed;
}

interface Warm {
  run(): Promise<number>;
  close(): Promise<void>;
}

async function warmSession(port: number, flow: Flow): Promise<Warm> {
  const mqtt = await connectFast(port);
  if (flow === 'library') {
    const client = new FleetProvisioningClient(mqtt);
    await libraryFlow(client, true);
    return {
      run: async () => {
        const start = performance.now();
        await libraryFlow(client, false);
        return performance.now() - start;
      },
      close: async () => {
        await client.close();
        await mqtt.endAsync(true);
      },
    };
  }
  await handWrittenFlow(mqtt, true);
  return {
    run: async () => {
      const start = performance.now();
      await handWrittenFlow(mqtt, false);
      return performance.now() - start;
    },
    close: () => mqtt.endAsync(true),
  };
}

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

interface Row {
  broker: string;
  mode: string;
  lib: number[];
  hand: number[];
}

/** Sequential: alternate library and hand-written runs so drift hits both alike. */
async function sequential(
  port: number,
  cold: boolean,
  n: number,
): Promise<{ lib: number[]; hand: number[] }> {
  const lib: number[] = [];
  const hand: number[] = [];
  if (cold) {
    for (let i = 0; i < n; i++) {
      lib.push(await coldOnce(port, 'library'));
      hand.push(await coldOnce(port, 'hand-written'));
    }
    return { lib, hand };
  }
  // One connection at a time: two subscribed connections on a plain broker would both get every answer.
  const block = 100;
  for (let done = 0; done < n; done += block) {
    for (const [flow, samples] of [
      ['library', lib],
      ['hand-written', hand],
    ] as const) {
      const session = await warmSession(port, flow);
      for (let i = 0; i < block; i++) samples.push(await session.run());
      await session.close();
    }
  }
  return { lib, hand };
}

/** 100 connections at once, each running one flow; `rounds` times, alternating. */
async function concurrent(
  port: number,
  cold: boolean,
  rounds: number,
): Promise<{ lib: number[]; hand: number[] }> {
  const lib: number[] = [];
  const hand: number[] = [];
  const width = 100;
  if (cold) {
    for (let r = 0; r < rounds; r++) {
      lib.push(...(await Promise.all(Array.from({ length: width }, () => coldOnce(port, 'library')))));
      hand.push(...(await Promise.all(Array.from({ length: width }, () => coldOnce(port, 'hand-written')))));
    }
    return { lib, hand };
  }
  const libs = await Promise.all(Array.from({ length: width }, () => warmSession(port, 'library')));
  const hands = await Promise.all(Array.from({ length: width }, () => warmSession(port, 'hand-written')));
  for (let r = 0; r < rounds; r++) {
    lib.push(...(await Promise.all(libs.map((s) => s.run()))));
    hand.push(...(await Promise.all(hands.map((s) => s.run()))));
  }
  await Promise.all([...libs, ...hands].map((s) => s.close()));
  return { lib, hand };
}

async function benchBroker(broker: BenchBroker, rows: Row[], concurrency: boolean): Promise<void> {
  const responder = concurrency ? undefined : await startResponder(broker.port);
  try {
    // Warm up the JIT and the broker on both paths before measuring.
    await sequential(broker.port, true, 30);
    await sequential(broker.port, false, 200);
    const add = (mode: string, r: { lib: number[]; hand: number[] }) =>
      rows.push({ broker: broker.name, mode, ...r });
    add('cold, sequential', await sequential(broker.port, true, 300));
    add('warm, sequential', await sequential(broker.port, false, 2000));
    if (concurrency) {
      // Both connections stay subscribed-free between flows, so a plain broker would still fan out
      // answers: provision() is measured where the broker answers only the asker.
      await provisionCase(broker.port, 50);
      add('provision(), client in', await provisionCase(broker.port, 500));
      add('cold, 100 connections', await concurrent(broker.port, true, 5));
      add('warm, 100 connections', await concurrent(broker.port, false, 20));
    }
  } finally {
    await responder?.endAsync(true);
    await broker.close();
  }
}

function print(rows: Row[]): void {
  const ms = (v: number) => v.toFixed(3).padStart(8);
  const header = `${'broker'.padEnd(20)} ${'mode'.padEnd(24)} ${'library p50'.padStart(11)} ${'p99'.padStart(8)}  ${'hand p50'.padStart(8)} ${'p99'.padStart(8)}  ${'ratio p50'.padStart(9)} ${'ratio p99'.padStart(9)}`;
  console.log(`\nCreateKeysAndCertificate → RegisterThing, milliseconds (Node ${process.version})\n`);
  console.log(header);
  console.log('-'.repeat(header.length));
  for (const row of rows) {
    const lp50 = percentile(row.lib, 50);
    const hp50 = percentile(row.hand, 50);
    const lp99 = percentile(row.lib, 99);
    const hp99 = percentile(row.hand, 99);
    console.log(
      `${row.broker.padEnd(20)} ${row.mode.padEnd(24)} ${ms(lp50).padStart(11)} ${ms(lp99)}  ${ms(hp50)} ${ms(hp99)}  ${(lp50 / hp50).toFixed(2).padStart(8)}× ${(lp99 / hp99).toFixed(2).padStart(8)}×`,
    );
  }
  console.log(`\nsamples per cell: ${rows.map((r) => r.lib.length).join(', ')}`);
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  // aedes answers inside the broker, to the asking client only (as AWS IoT does), so 100 connections
  // at once are measured there; mosquitto has a responder client, whose answers every subscriber would
  // get, so it runs the sequential cases only.
  await benchBroker(await startBenchAedes(answerFor), rows, true);
  try {
    await benchBroker(await startBenchMosquitto(), rows, false);
  } catch (error) {
    console.error(`mosquitto skipped: ${error instanceof Error ? error.message : String(error)}`);
  }
  print(rows);
  const chart = renderChart(
    `CreateKeysAndCertificate → RegisterThing on loopback (Node ${process.version}; log scale)`,
    rows.map((r) => ({
      label: `${r.broker.split(' ')[0]}: ${r.mode}`,
      library: percentile(r.lib, 50),
      handWritten: percentile(r.hand, 50),
    })),
  );
  const file = new URL('../../docs/performance.svg', import.meta.url);
  await writeFile(file, chart);
  console.log(`chart written to ${fileURLToPath(file)}`);
}

await main();
