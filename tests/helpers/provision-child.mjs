/**
 * A separate process that provisions devices in a loop with the built library (dist/) into one
 * credentials directory, for tests/integration/provision-crash.test.ts, which SIGKILLs it at chosen
 * progress events. argv[2] is a JSON job: { outDir, endpoint, claimCertificate, claimPrivateKey,
 * caCertificate } (the simulator runs in the test's process and outlives every child).
 * stdout gets one JSON line per progress event: { n, step }, n counting from 1 across the whole run.
 */
import { writeSync } from 'node:fs';

const { provision } = await import('../../dist/index.js');

const { outDir, endpoint, claimCertificate, claimPrivateKey, caCertificate } = JSON.parse(process.argv[2]);
let n = 0;
for (let i = 0; ; i++) {
  await provision({
    endpoint,
    claimCertificate,
    claimPrivateKey,
    caCertificate,
    templateName: 'DemoTemplate',
    parameters: { SerialNumber: `SN-${process.pid}-${i}` },
    keys: i % 2 === 0 ? 'server' : 'generate',
    outDir,
    onProgress: (event) => {
      n += 1;
      // Synchronous, so the line is out before the next step starts.
      writeSync(1, `${JSON.stringify({ n, step: event.step })}\n`);
    },
  });
}
