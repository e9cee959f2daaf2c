/**
 * A separate process that provisions devices in a loop with the built library (dist/) into one
 * credentials directory, for tests that SIGKILL it at chosen progress events
 * (tests/integration/provision-crash.test.ts, tests/integration/provision-unknown-outcome.test.ts).
 * argv[2] is a JSON job: { outDir, endpoint, claimCertificate, claimPrivateKey, caCertificate,
 * serialNumber?, hangAt? } (the simulator runs in the test's process and outlives every child).
 * Without serialNumber each device gets its own serial number and replaces the set before it
 * (`existing: 'replace'`). With serialNumber the child provisions that one device once, server key.
 * With hangAt the child stops dead (synchronously, so nothing else runs) at the first progress event of
 * that step, for the test to kill it exactly there.
 * stdout gets one JSON line per progress event: { n, step }, n counting from 1 across the whole run
 * (0 for the `resuming` and `abandoned` events of what earlier children left).
 */
import { writeSync } from 'node:fs';

const { provision } = await import('../../dist/index.js');

const { outDir, endpoint, claimCertificate, claimPrivateKey, caCertificate, serialNumber, hangAt } =
  JSON.parse(process.argv[2]);
let n = 0;
for (let i = 0; serialNumber === undefined || i === 0; i++) {
  await provision({
    endpoint,
    claimCertificate,
    claimPrivateKey,
    caCertificate,
    templateName: 'DemoTemplate',
    parameters: { SerialNumber: serialNumber ?? `SN-${process.pid}-${i}` },
    keys: i % 2 === 0 ? 'server' : 'generate',
    outDir,
    existing: serialNumber === undefined ? 'replace' : 'reuse',
    onProgress: (event) => {
      // Finishing or reporting what an earlier child left is not counted (n: 0), so that the n-th event
      // is the same step of a new device whatever the earlier children left behind.
      const counted = event.step !== 'abandoned' && event.step !== 'resuming';
      if (counted) n += 1;
      // Synchronous, so the line is out before the next step starts.
      writeSync(1, `${JSON.stringify({ n: counted ? n : 0, step: event.step })}\n`);
      // Block this thread for good: the parent kills the process while it sits exactly here.
      if (event.step === hangAt) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    },
  });
}
