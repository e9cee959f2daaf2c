/**
 * Load on the simulator: N devices (default 1,000), each on its own mutual-TLS connection with the claim
 * certificate, all connected at once and all provisioning at once (CreateKeysAndCertificate with EC P-256
 * keys, then RegisterThing), then all reconnecting with their new certificates. Prints the time of each
 * phase and checks that the registry agrees: N things, N distinct ACTIVE certificates.
 *
 *   npm run bench:simulator                        # 1,000 devices over mTLS
 *   node .bench/bench/simulator-load.js 200 --plain # after `npm run bench:build`
 *
 * A benchmark, not a test: it asserts no time bound, and exits 1 only when a device failed.
 */
import { performance } from 'node:perf_hooks';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { decodePayload, encodePayload } from '../src/protocol/payload.js';
import { topics } from '../src/protocol/topics.js';
import { type Simulator, startSimulator } from '../src/simulator/index.js';

const args = process.argv.slice(2);
const devices = Number(args.find((a) => /^\d+$/.test(a)) ?? 1000);
const plain = args.includes('--plain');
const TEMPLATE = 'DemoTemplate';

interface Provisioned {
  certificateId: string;
  certificatePem: string;
  privateKey: string;
  thingName: string;
  ms: number;
}

function options(sim: Simulator, i: number, cert?: { cert: string; key: string }): IClientOptions {
  const tls = plain
    ? {}
    : {
        ca: sim.caCertificate,
        cert: cert?.cert ?? sim.claimCertificate,
        key: cert?.key ?? sim.claimPrivateKey,
      };
  return {
    clientId: `load-${i}-${cert === undefined ? 'claim' : 'device'}`,
    reconnectPeriod: 0,
    connectTimeout: 60_000,
    ...tls,
  };
}

/** The next message on `topic`'s accepted or rejected answer; rejects on a rejection. */
function answer(
  client: MqttClient,
  request: { accepted: string; rejected: string },
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const onMessage = (topic: string, payload: Buffer) => {
      if (topic !== request.accepted && topic !== request.rejected) return;
      client.removeListener('message', onMessage);
      const decoded = decodePayload(payload, 'json');
      const value =
        decoded.ok && typeof decoded.value === 'object' && decoded.value !== null ? decoded.value : {};
      if (topic === request.rejected) reject(new Error(`rejected: ${JSON.stringify(value)}`));
      else resolve(Object.fromEntries(Object.entries(value)));
    };
    client.on('message', onMessage);
  });
}

async function provisionOne(client: MqttClient, serial: string): Promise<Provisioned> {
  const started = performance.now();
  const keys = topics.createKeysAndCertificate();
  const register = topics.registerThing(TEMPLATE);
  await client.subscribeAsync([keys.accepted, keys.rejected, register.accepted, register.rejected], {
    qos: 1,
  });
  const created = answer(client, keys);
  await client.publishAsync(keys.request, encodePayload({}, 'json'), { qos: 1 });
  const c = await created;
  const registered = answer(client, register);
  const payload = {
    certificateOwnershipToken: c.certificateOwnershipToken,
    parameters: { SerialNumber: serial },
  };
  await client.publishAsync(register.request, encodePayload(payload, 'json'), { qos: 1 });
  const r = await registered;
  return {
    certificateId: String(c.certificateId),
    certificatePem: String(c.certificatePem),
    privateKey: String(c.privateKey),
    thingName: String(r.thingName),
    ms: performance.now() - started,
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function main(): Promise<number> {
  const sim = await startSimulator({ serverKeyType: 'ec-p256', tls: !plain });
  const clients: MqttClient[] = [];
  let failures = 0;
  try {
    console.log(
      `simulator-load: ${devices} devices over ${plain ? 'plain MQTT' : 'mutual TLS'} at ${sim.url}`,
    );
    const t0 = performance.now();
    const connected = await Promise.allSettled(
      Array.from({ length: devices }, (_, i) => mqtt.connectAsync(sim.url, options(sim, i))),
    );
    for (const c of connected) if (c.status === 'fulfilled') clients.push(c.value);
    const t1 = performance.now();
    console.log(`connect:   ${clients.length}/${devices} claim connections in ${(t1 - t0).toFixed(0)} ms`);

    const results = await Promise.allSettled(clients.map((c, i) => provisionOne(c, `LOAD-${i}`)));
    const t2 = performance.now();
    const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    failures = devices - ok.length;
    const latencies = ok.map((r) => r.ms).sort((a, b) => a - b);
    console.log(
      `provision: ${ok.length}/${devices} devices in ${(t2 - t1).toFixed(0)} ms ` +
        `(${((ok.length * 1000) / (t2 - t1)).toFixed(0)}/s; per device p50 ${percentile(latencies, 50).toFixed(0)} ms, ` +
        `p95 ${percentile(latencies, 95).toFixed(0)} ms, max ${percentile(latencies, 100).toFixed(0)} ms)`,
    );
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));

    const t3 = performance.now();
    const again = await Promise.allSettled(
      ok.map((d, i) =>
        mqtt.connectAsync(sim.url, options(sim, i, { cert: d.certificatePem, key: d.privateKey })),
      ),
    );
    for (const c of again) if (c.status === 'fulfilled') clients.push(c.value);
    const t4 = performance.now();
    failures += ok.length - clients.length;
    console.log(
      `reconnect: ${clients.length}/${ok.length} devices with their new certificates in ${(t4 - t3).toFixed(0)} ms`,
    );

    const things = sim.things();
    const certificates = sim.certificates();
    const distinct = new Set(ok.map((d) => d.certificateId)).size;
    const active = certificates.filter((c) => c.status === 'ACTIVE').length;
    const registryAgrees = things.length === ok.length && distinct === ok.length && active === ok.length;
    if (!registryAgrees) failures += 1;
    console.log(
      `registry:  ${things.length} things, ${distinct} distinct certificates, ${active} ACTIVE ` +
        `(${registryAgrees ? 'agrees' : 'DISAGREES'})`,
    );
    console.log(`total:     ${(t4 - t0).toFixed(0)} ms, failures: ${failures}`);
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await sim.close();
  }
  return failures === 0 ? 0 : 1;
}

process.exitCode = await main();
