/**
 * A separate process that rotates one device's certificate with the built library (dist/), for tests
 * that SIGKILL it at a chosen progress event (tests/integration/rotate.test.ts).
 * argv[2] is a JSON job: { outDir, caCertificate, templateName, parameters, hangAt? } (the simulator runs
 * in the test's process and outlives the child). With hangAt the child stops dead (synchronously, so
 * nothing else runs) at the first progress event of that step, for the test to kill it exactly there.
 * stdout gets one JSON line per progress event: { step }.
 */
import { writeSync } from 'node:fs';

const { rotate } = await import('../../dist/index.js');

const { outDir, caCertificate, templateName, parameters, hangAt } = JSON.parse(process.argv[2]);
await rotate({
  outDir,
  caCertificate,
  templateName,
  parameters,
  onProgress: (event) => {
    // Synchronous, so the line is out before the next step starts.
    writeSync(1, `${JSON.stringify({ step: event.step })}\n`);
    // Block this thread for good: the parent kills the process while it sits exactly here.
    if (event.step === hangAt) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  },
});
