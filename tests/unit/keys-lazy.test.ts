/**
 * `@peculiar/x509` (with `reflect-metadata`) costs about 130 ms to import, so the package must load it
 * only on the CSR paths. This imports the real modules in a fresh Node process and watches what loads.
 * The sources are transpiled on the fly (no dist/ needed) into a temporary folder that sees the
 * project's node_modules.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import ts from 'typescript';

const ROOT = resolve(import.meta.dirname, '../..');
let out: string;

/** Transpile `entry` and every relative module it imports into `out`, keeping the folder layout. */
async function transpileGraph(entry: string): Promise<void> {
  const pending = [resolve(ROOT, entry)];
  const seen = new Set<string>();
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    const source = await readFile(file, 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
      },
    });
    const target = join(out, relative(ROOT, file)).replace(/\.ts$/, '.js');
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, outputText);
    for (const { fileName } of ts.preProcessFile(source, true, true).importedFiles) {
      if (fileName.startsWith('.')) pending.push(resolve(dirname(file), fileName.replace(/\.js$/, '.ts')));
    }
  }
}

const PROBE = `
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const loaded = () => ({
  x509: Object.keys(require.cache).some((path) => path.includes('/@peculiar/x509/')),
  reflectMetadata: typeof Reflect.getMetadata === 'function',
});
const steps = {};
const keys = await import(process.argv[2]);
steps.imported = loaded();
if (typeof keys.generateKeyPair === 'function') {
  const pair = await keys.generateKeyPair('ec-p256');
  keys.certificateMatchesPrivateKey('not a certificate', pair.privateKeyPem);
  steps.serverKeyPath = loaded();
  await keys.createCsr({ keys: pair.keys });
  steps.csrPath = loaded();
}
process.stdout.write(JSON.stringify(steps));
`;

async function probe(module: string): Promise<Record<string, { x509: boolean; reflectMetadata: boolean }>> {
  const { stdout } = await promisify(execFile)(process.execPath, [join(out, 'probe.mjs'), join(out, module)]);
  return JSON.parse(stdout);
}

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'keys-lazy-'));
  await writeFile(join(out, 'package.json'), '{"type":"module"}');
  await symlink(join(ROOT, 'node_modules'), join(out, 'node_modules'));
  await writeFile(join(out, 'probe.mjs'), PROBE);
  await transpileGraph('src/device/keys.ts');
  await transpileGraph('src/index.ts');
});

afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

describe('loading @peculiar/x509 lazily', () => {
  it('keys.ts loads it only when a CSR is built, and the probe sees it then', async () => {
    const steps = await probe('src/device/keys.js');
    expect(steps.imported).toEqual({ x509: false, reflectMetadata: false });
    expect(steps.serverKeyPath).toEqual({ x509: false, reflectMetadata: false });
    // Proves the probe can see the library: without this, the two checks above could never fail.
    expect(steps.csrPath).toEqual({ x509: true, reflectMetadata: true });
  });

  it('importing the package entry point does not load it', async () => {
    const steps = await probe('src/index.js');
    expect(steps.imported).toEqual({ x509: false, reflectMetadata: false });
  });
});
