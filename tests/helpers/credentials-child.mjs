/**
 * A separate process that writes credential sets with the built library (dist/), for the crash and
 * fault tests in tests/integration/credentials-crash.test.ts. It is run, killed and inspected by that test.
 *
 * argv[2] is a JSON job:
 *   { dir, fixtures: <path of a JSON array of { certificatePem, privateKeyPem?, device }>,
 *     mode: 'loop' | 'once' | 'fail-sweep', start?: number, crashAt?: number, failAt?: number,
 *     failCode?: string, from?: number, failFrom?: number, failTo?: number }
 * - 'loop' writes fixtures[start], fixtures[start+1], ... (cyclically) until killed; 'once' writes
 *   fixtures[start] and exits; 'fail-sweep' runs one trial per k in failFrom..failTo (see below).
 * - Every file-system call the library makes is counted (fs/promises functions and FileHandle methods).
 *   `crashAt: k` SIGKILLs this process just before the k-th call that writes; `failAt: k` makes the k-th
 *   call of any kind fail with `failCode` (ENOSPC by default), as a full disk would.
 * stdout gets one JSON line per event: {event:'started'}, {event:'staged', calls, writes},
 * {event:'saved', k?, index}, {event:'failed', k?, code, errorCode, message}, {event:'done', calls, writes}.
 */
import fs from 'node:fs';
import { readFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';

const job = JSON.parse(process.argv[2]);
const fixtures = JSON.parse(await readFile(job.fixtures, 'utf8'));
const say = (value) => fs.writeSync(1, `${JSON.stringify(value)}\n`);

let calls = 0;
let writes = 0;
let armed = false;
const READS = new Set(['readFile', 'readdir', 'readlink', 'lstat']);
function count(name, args) {
  if (!armed) return;
  calls += 1;
  // Crash points are the calls that change something on disk; a crash before a read changes nothing.
  const isWrite = !READS.has(name) && !(name === 'open' && args[1] === 'r');
  if (isWrite) writes += 1;
  if (isWrite && writes === job.crashAt) process.kill(process.pid, 'SIGKILL');
  if (calls === job.failAt) {
    const error = new Error(`${job.failCode ?? 'ENOSPC'}: injected failure, ${name}`);
    error.code = job.failCode ?? 'ENOSPC';
    throw error;
  }
}

// Wrap before the library is imported; syncBuiltinESMExports() carries the wrappers into the named ESM
// imports of 'node:fs/promises' that the library uses.
for (const name of ['open', 'rename', 'symlink', 'mkdir', 'rm', 'chmod', ...READS]) {
  const original = fs.promises[name];
  fs.promises[name] = async (...args) => {
    count(name, args);
    return original(...args);
  };
}
syncBuiltinESMExports();
const probe = await fs.promises.open(job.fixtures, 'r');
const FileHandle = Object.getPrototypeOf(probe);
await probe.close();
for (const name of ['writeFile', 'sync', 'chmod', 'close']) {
  const original = FileHandle[name];
  FileHandle[name] = async function (...args) {
    count(`handle.${name}`, args);
    return original.apply(this, args);
  };
}

const { stageCredentials } = await import(new URL('../../dist/device/staged-set.js', import.meta.url).href);

async function save(dir, index) {
  const f = fixtures[index % fixtures.length];
  const staged = await stageCredentials(
    dir,
    f.privateKeyPem === undefined
      ? { certificatePem: f.certificatePem }
      : { certificatePem: f.certificatePem, privateKeyPem: f.privateKeyPem },
  );
  say({ event: 'staged', calls, writes });
  try {
    await staged.commit(f.device);
  } finally {
    await staged.discard();
  }
}

const describe = (error) => ({
  code: error?.code,
  errorCode: error?.cause?.code,
  message: String(error?.message),
});

say({ event: 'started' });
if (job.mode === 'fail-sweep') {
  // Failures do not end the process, so one process runs every trial, each in its own directory:
  // `${dir}-${k}` gets set `from`, then set `start` with call k failing.
  for (let k = job.failFrom; k <= job.failTo; k += 1) {
    const dir = `${job.dir}-${k}`;
    await save(dir, job.from);
    [calls, writes, job.failAt, armed] = [0, 0, k, true];
    try {
      await save(dir, job.start);
      say({ event: 'saved', k, index: job.start % fixtures.length });
    } catch (error) {
      say({ event: 'failed', k, ...describe(error) });
    }
    armed = false;
  }
} else {
  armed = true;
  try {
    if (job.mode === 'loop') {
      for (let i = job.start ?? 0; ; i += 1) {
        await save(job.dir, i);
        say({ event: 'saved', index: i % fixtures.length });
      }
    } else {
      await save(job.dir, job.start ?? 0);
      say({ event: 'saved', index: (job.start ?? 0) % fixtures.length });
    }
  } catch (error) {
    say({ event: 'failed', ...describe(error) });
  }
  armed = false;
}
say({ event: 'done', calls, writes });
