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
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import { FleetProvisioningClient } from '../src/client/fleet-provisioning-client.js';
import { generateKeyPair } from '../src/device/keys.js';
import { topics } from '../src/protocol/topics.js';
import { provision } from '../src/provision/provision.js';
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

const ID_AT = KEYS_ANSWER.indexOf('f'.repeat(64));
let issued = 0;

/**
 * The canned key answer with a certificate id of its own, as AWS's are: the client takes an answer that
 * repeats a certificate id it already delivered for a duplicate.
 */
function keysAnswer(): Buffer {
  const payload = Buffer.from(KEYS_ANSWER);
  payload.write((issued++).toString(16).padStart(16, '0'), ID_AT, 'latin1');
  return payload;
}

/** The service's canned answers. */
function answerFor(topic: string): { topic: string; payload: Buffer } | undefined {
  if (topic === KEYS.request) return { topic: KEYS.accepted, payload: keysAnswer() };
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

/** The step names of a cold flow, shared by both sides of the per-step table. */
const STEP = {
  subscribe: 'SUBSCRIBE',
  keys: 'CreateKeysAndCertificate + key check',
  register: 'RegisterThing',
  finish: 'finish (result built, subscriptions released)',
} as const;

async function handWrittenFlow(
  client: MqttClient,
  subscribe: boolean,
  mark: (step: string) => void = () => {},
): Promise<void> {
  if (subscribe) {
    await client.subscribeAsync(FILTERS, { qos: 1 });
    mark(STEP.subscribe);
  }
  const keysAnswer = answerOn(client, KEYS.accepted, KEYS.rejected);
  await client.publishAsync(KEYS.request, Buffer.from('{}'), { qos: 1 });
  const keys: unknown = JSON.parse((await keysAnswer).toString());
  mark(STEP.keys);
  const token =
    typeof keys === 'object' && keys !== null ? Reflect.get(keys, 'certificateOwnershipToken') : undefined;
  const thingAnswer = answerOn(client, REGISTER.accepted, REGISTER.rejected);
  await client.publishAsync(
    REGISTER.request,
    Buffer.from(JSON.stringify({ certificateOwnershipToken: token, parameters: { SerialNumber: 'SN' } })),
    { qos: 1 },
  );
  JSON.parse((await thingAnswer).toString());
  mark(STEP.register);
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

/** Milliseconds per step of one flow, by step name (subscribe, CreateKeys…, RegisterThing, finish). */
type Steps = Map<string, number[]>;

/** A clock for one flow: `mark(step)` records the time since the last mark under `step`. */
function stepClock(steps: Steps | undefined): { mark(step: string): void; elapsed(): number } {
  const start = performance.now();
  let last = start;
  return {
    mark: (step) => {
      const now = performance.now();
      if (steps !== undefined) {
        const list = steps.get(step);
        if (list === undefined) steps.set(step, [now - last]);
        else list.push(now - last);
      }
      last = now;
    },
    elapsed: () => last - start,
  };
}

/**
 * provision() on a connection handed in: one SUBSCRIBE for both pairs, both calls, the certificate checked
 * against the key, the subscriptions released (the UNSUBSCRIBE is not waited for). Steps from its progress
 * events.
 */
async function provisionFlow(mqtt: MqttClient, steps?: Steps): Promise<number> {
  const clock = stepClock(steps);
  await provision({
    client: mqtt,
    templateName: TEMPLATE,
    parameters: { SerialNumber: 'SN' },
    retry: false,
    onProgress: (event) => {
      if (event.step === 'subscribed') clock.mark(STEP.subscribe);
      else if (event.step === 'certificate') clock.mark(STEP.keys);
      else if (event.step === 'registered') clock.mark(STEP.register);
    },
  });
  clock.mark(STEP.finish);
  return clock.elapsed();
}

/**
 * The hand-written cold flow on a connection with nothing subscribed: one SUBSCRIBE with the four
 * filters, then both requests (timed); then, untimed, the UNSUBSCRIBE that leaves the connection as it
 * found it.
 */
async function handWrittenCold(mqtt: MqttClient, steps?: Steps): Promise<number> {
  const clock = stepClock(steps);
  await handWrittenFlow(mqtt, true, clock.mark);
  clock.mark(STEP.finish);
  const elapsed = clock.elapsed();
  await mqtt.unsubscribeAsync(FILTERS);
  return elapsed;
}

interface Samples {
  lib: number[];
  hand: number[];
  libSteps?: Steps;
  handSteps?: Steps;
}

/** provision({ client }) against the hand-written cold flow, one long-lived connection each, alternating. */
async function provisionCase(port: number, protocol: 4 | 5, n: number): Promise<Samples> {
  const result = { lib: [] as number[], hand: [] as number[], libSteps: new Map(), handSteps: new Map() };
  const ours = await connectFast(port, protocol);
  const theirs = await connectFast(port, protocol);
  for (let i = 0; i < n; i++) {
    result.lib.push(await provisionFlow(ours, result.libSteps));
    result.hand.push(await handWrittenCold(theirs, result.handSteps));
  }
  await Promise.all([ours.endAsync(true), theirs.endAsync(true)]);
  return result;
}

/**
 * 100 devices at once, each on its own connection (connected before the clock starts): provision({ client })
 * against the hand-written cold flow, `rounds` times, alternating.
 */
async function hundredDevices(port: number, protocol: 4 | 5, rounds: number): Promise<Samples> {
  const lib: number[] = [];
  const hand: number[] = [];
  const width = 100;
  for (let r = 0; r < rounds; r++) {
    for (const [samples, flow] of [
      [lib, provisionFlow],
      [hand, handWrittenCold],
    ] as const) {
      const clients = await Promise.all(Array.from({ length: width }, () => connectFast(port, protocol)));
      samples.push(...(await Promise.all(clients.map((c) => flow(c)))));
      await Promise.all(clients.map((c) => c.endAsync(true)));
    }
  }
  return { lib, hand };
}

type Flow = 'library' | 'hand-written';

/** One timed flow. Cold: a new connection (not timed) and nothing subscribed. */
async function coldOnce(port: number, flow: Flow, protocol: 4 | 5): Promise<number> {
  const mqtt = await connectFast(port, protocol);
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

async function warmSession(port: number, flow: Flow, protocol: 4 | 5): Promise<Warm> {
  const mqtt = await connectFast(port, protocol);
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

interface Row extends Samples {
  broker: string;
  mode: string;
}

/** Sequential: alternate library and hand-written runs so drift hits both alike. */
async function sequential(port: number, protocol: 4 | 5, cold: boolean, n: number): Promise<Samples> {
  const lib: number[] = [];
  const hand: number[] = [];
  if (cold) {
    for (let i = 0; i < n; i++) {
      lib.push(await coldOnce(port, 'library', protocol));
      hand.push(await coldOnce(port, 'hand-written', protocol));
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
      const session = await warmSession(port, flow, protocol);
      for (let i = 0; i < block; i++) samples.push(await session.run());
      await session.close();
    }
  }
  return { lib, hand };
}

/** The cases, in the order of the docs' table. */
const CASES = {
  provision: 'provision({ client }), cold',
  warm: 'FleetProvisioningClient, warm',
  hundred: '100 devices at once, cold',
} as const;

async function benchBroker(broker: BenchBroker, protocol: 4 | 5, rows: Row[]): Promise<void> {
  const name = `${broker.name} ${protocol === 5 ? 'MQTT 5' : 'MQTT 3.1.1'}`;
  const add = (mode: string, r: Samples) => {
    rows.push({ broker: name, mode, ...r });
    console.error(`${name}: ${mode} done`);
  };
  const scale = Number(process.env.BENCH_SCALE ?? 1);
  const n = (count: number) => Math.max(10, Math.round(count * scale));
  // Warm up the JIT and the broker on both paths before measuring.
  await provisionCase(broker.port, protocol, n(100));
  await sequential(broker.port, protocol, false, 200);
  add(CASES.provision, await provisionCase(broker.port, protocol, n(1000)));
  add(CASES.warm, await sequential(broker.port, protocol, false, n(2000)));
  add(CASES.hundred, await hundredDevices(broker.port, protocol, Math.max(1, Math.round(5 * scale))));
}

const ms = (v: number) => (v < 10 ? v.toFixed(3) : v.toFixed(1));

function figures(row: Row): { lp50: number; lp99: number; hp50: number; hp99: number } {
  return {
    lp50: percentile(row.lib, 50),
    lp99: percentile(row.lib, 99),
    hp50: percentile(row.hand, 50),
    hp99: percentile(row.hand, 99),
  };
}

function print(rows: Row[]): void {
  const header = `${'broker'.padEnd(28)} ${'case'.padEnd(32)} ${'ours p50'.padStart(9)} ${'p99'.padStart(8)}  ${'hand p50'.padStart(8)} ${'p99'.padStart(8)}  ${'p50 ratio'.padStart(9)} ${'p99 ratio'.padStart(9)}`;
  console.log(`\nCreateKeysAndCertificate → RegisterThing, milliseconds (Node ${process.version})\n`);
  console.log(header);
  console.log('-'.repeat(header.length));
  for (const row of rows) {
    const { lp50, lp99, hp50, hp99 } = figures(row);
    console.log(
      `${row.broker.padEnd(28)} ${row.mode.padEnd(32)} ${ms(lp50).padStart(9)} ${ms(lp99).padStart(8)}  ${ms(hp50).padStart(8)} ${ms(hp99).padStart(8)}  ${(lp50 / hp50).toFixed(2).padStart(8)}× ${(lp99 / hp99).toFixed(2).padStart(8)}×`,
    );
  }
  console.log(
    `\nsamples per cell: ${rows.map((r) => r.lib.length).join(', ')}; targets: p50 ratio ≤ 1.10, p99 ≤ 1.25`,
  );
  for (const row of rows) {
    if (row.libSteps === undefined || row.handSteps === undefined) continue;
    console.log(`\nsteps of ${row.mode} on ${row.broker} (p50, ms): ours / hand-written`);
    for (const [step, lib] of row.libSteps) {
      const hand = row.handSteps.get(step) ?? [];
      console.log(
        `  ${step.padEnd(42)} ${ms(percentile(lib, 50)).padStart(8)} / ${ms(percentile(hand, 50))}`,
      );
    }
  }
}

/** The machine the figures come from, and how busy it was. */
function machine(loadBefore: number[]): string {
  const cpus = os.cpus();
  const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(' ');
  return (
    `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ` +
    `${os.type()} ${os.release()}, Node ${process.version}; load average ${load(loadBefore)} before the run, ` +
    `${load(os.loadavg())} after`
  );
}

/** Replace the table between the bench markers in docs/performance.md with this run's figures. */
async function record(rows: Row[], about: string): Promise<void> {
  const file = new URL('../../docs/performance.md', import.meta.url);
  const doc = await readFile(file, 'utf8');
  const begin = '<!-- bench:begin -->';
  const end = '<!-- bench:end -->';
  const from = doc.indexOf(begin);
  const to = doc.indexOf(end);
  if (from < 0 || to < from) {
    console.log('docs/performance.md has no bench markers: figures not recorded');
    return;
  }
  const lines = [
    begin,
    '',
    `Last \`npm run bench\` (${new Date().toISOString().slice(0, 10)}): ${about}. Milliseconds; ratio = ours / hand-written (target: p50 ≤ 1.10, p99 ≤ 1.25).`,
    '',
    '| broker | case | ours p50 | p99 | hand-written p50 | p99 | p50 ratio | p99 ratio |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map((row) => {
      const { lp50, lp99, hp50, hp99 } = figures(row);
      return `| ${row.broker} | ${row.mode} | ${ms(lp50)} | ${ms(lp99)} | ${ms(hp50)} | ${ms(hp99)} | ${(lp50 / hp50).toFixed(2)}× | ${(lp99 / hp99).toFixed(2)}× |`;
    }),
    '',
  ];
  const stepRows = rows.filter((r) => r.libSteps !== undefined && r.handSteps !== undefined);
  if (stepRows.length > 0) {
    lines.push(
      'Per step of `provision({ client })`, cold (p50, ms, ours / hand-written):',
      '',
      `| step | ${stepRows.map((r) => r.broker).join(' | ')} |`,
      `|---|${stepRows.map(() => '---:').join('|')}|`,
    );
    for (const step of stepRows[0]?.libSteps?.keys() ?? []) {
      const cells = stepRows.map(
        (r) =>
          `${ms(percentile(r.libSteps?.get(step) ?? [], 50))} / ${ms(percentile(r.handSteps?.get(step) ?? [], 50))}`,
      );
      lines.push(`| ${step} | ${cells.join(' | ')} |`);
    }
    lines.push('');
  }
  lines.push(end);
  await writeFile(file, doc.slice(0, from) + lines.join('\n') + doc.slice(to + end.length));
  console.log(`figures recorded in ${fileURLToPath(file)}`);
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg();
  const rows: Row[] = [];
  // aedes answers inside the broker, to the asking client only (as AWS IoT does). mosquitto gets a
  // responder client: on a plain broker every subscriber gets every answer, which the 100-devices case
  // pays on both sides (each connection sees 100 answers per request).
  const aedes = await startBenchAedes(answerFor);
  try {
    await benchBroker(aedes, 4, rows);
  } finally {
    await aedes.close();
  }
  try {
    const mosquitto = await startBenchMosquitto();
    const responder = await startResponder(mosquitto.port);
    try {
      await benchBroker(mosquitto, 4, rows);
      await benchBroker(mosquitto, 5, rows);
    } finally {
      await responder.endAsync(true);
      await mosquitto.close();
    }
  } catch (error) {
    console.error(`mosquitto skipped: ${error instanceof Error ? error.message : String(error)}`);
  }
  print(rows);
  const about = machine(loadBefore);
  console.log(`\nmachine: ${about}`);
  const chart = renderChart(
    `CreateKeysAndCertificate → RegisterThing on loopback, p50 (Node ${process.version}; log scale)`,
    rows.map((r) => ({
      label: `${r.broker.split(' ')[0]} ${r.broker.includes('MQTT 5') ? 'v5' : 'v3'}: ${r.mode}`,
      library: percentile(r.lib, 50),
      handWritten: percentile(r.hand, 50),
    })),
  );
  const file = new URL('../../docs/performance.svg', import.meta.url);
  await writeFile(file, chart);
  console.log(`chart written to ${fileURLToPath(file)}`);
  await record(rows, about);
}

await main();
