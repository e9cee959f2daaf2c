/**
 * The package as npm publishes it: `npm pack` in a fresh copy of the repository (tracked files only, no
 * dist/) builds first and packs the code, and the packed package loads from ESM and from CommonJS.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const REPOSITORY = 'https://github.com/iot-fleet-provisioning/iot-fleet-provisioning';

describe('package.json and the README on npm', () => {
  it('names the repository, homepage and bugs', async () => {
    const manifest: unknown = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
    expect(manifest).toMatchObject({
      repository: { type: 'git', url: `git+${REPOSITORY}.git` },
      homepage: `${REPOSITORY}#readme`,
      bugs: { url: `${REPOSITORY}/issues` },
    });
  });

  it('links the README to files by absolute URL: docs/ is not in the tarball', async () => {
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    const targets = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] ?? '');
    expect(targets.length).toBeGreaterThan(10);
    expect(targets.filter((t) => !t.startsWith('https://') && !t.startsWith('#'))).toEqual([]);
    for (const target of targets.filter((t) => t.startsWith(`${REPOSITORY}/blob/main/`))) {
      // Each points at a file that exists in this repository.
      const path = target.slice(`${REPOSITORY}/blob/main/`.length).split('#')[0] ?? '';
      await expect(readFile(join(root, path), 'utf8')).resolves.toEqual(expect.any(String));
    }
  });
});

/** Make `dir/node_modules` hold this repository's dependencies, as links. */
async function linkDependencies(dir: string): Promise<void> {
  await mkdir(join(dir, 'node_modules'), { recursive: true });
  for (const name of await readdir(join(root, 'node_modules'))) {
    if (name === 'iot-fleet-provisioning') continue;
    await symlink(join(root, 'node_modules', name), join(dir, 'node_modules', name));
  }
}

describe('the sources and docs', () => {
  it('cite no Markdown document that is not in the repository', async () => {
    const { stdout } = await run('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
      cwd: root,
    });
    const texts = stdout
      .split('\n')
      .filter((f) => /^(src|tests|examples|bench|docs|\.ci)\/|^[^/]+\.(md|ts|json)$/.test(f))
      .filter((f) => !f.endsWith('.svg') && existsSync(join(root, f)));
    const cited: string[] = [];
    for (const file of texts) {
      const text = await readFile(join(root, file), 'utf8');
      for (const match of text.matchAll(/\b([A-Z][A-Z0-9_-]+)\.md\b/g)) {
        const name = `${match[1]}.md`;
        if (!existsSync(join(root, name)) && !existsSync(join(root, 'docs', name)))
          cited.push(`${file}: ${name}`);
      }
      // Numbered items of a list that only the project's planning notes hold.
      for (const match of text.matchAll(/\(items? \d[^)]*\)/g)) cited.push(`${file}: ${match[0]}`);
    }
    expect(cited).toEqual([]);
  });
});

describe('npm pack', () => {
  let work: string;
  let files: string[] = [];
  let project: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'fleet-provision-pack-'));
    const clone = join(work, 'clone');
    const { stdout: listed } = await run('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
      cwd: root,
    });
    for (const file of listed.split('\n').filter((f) => f !== '')) {
      await mkdir(dirname(join(clone, file)), { recursive: true });
      await cp(join(root, file), join(clone, file)).catch((error: unknown) => {
        // A file deleted in the work tree but still tracked.
        if (typeof error !== 'object' || error === null || !('code' in error) || error.code !== 'ENOENT') {
          throw error;
        }
      });
    }
    await linkDependencies(clone);
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], {
      cwd: clone,
      maxBuffer: 16 * 1024 * 1024,
    });
    const report: unknown = JSON.parse(stdout.slice(stdout.search(/^\[/m)));
    const first: unknown = Array.isArray(report) ? report[0] : undefined;
    const entries: unknown = typeof first === 'object' && first !== null ? Reflect.get(first, 'files') : [];
    files = Array.isArray(entries)
      ? entries.map((e: unknown) => String(typeof e === 'object' && e !== null ? Reflect.get(e, 'path') : e))
      : [];
    const filename: unknown =
      typeof first === 'object' && first !== null ? Reflect.get(first, 'filename') : '';
    project = join(work, 'project');
    await linkDependencies(project);
    const installed = join(project, 'node_modules', 'iot-fleet-provisioning');
    await mkdir(installed);
    await run('tar', ['-xzf', join(work, String(filename)), '-C', installed, '--strip-components=1']);
  }, 180_000);

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('builds before packing (prepack), so the tarball holds the code', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'dist/index.js',
        'dist/index.d.ts',
        'dist/simulator/index.js',
        'dist/cli/main.js',
        'cjs/index.cjs',
        'cjs/simulator.cjs',
        'package.json',
        'README.md',
      ]),
    );
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('tests/'))).toEqual([]);
  });

  it('imports from ESM', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const { provision } = await import('iot-fleet-provisioning'); const { startSimulator } = await import('iot-fleet-provisioning/simulator'); console.log(typeof provision, typeof startSimulator);",
      ],
      { cwd: project },
    );
    expect(stdout.trim()).toBe('function function');
  });

  it('loads with require() from CommonJS on a Node whose require() loads ES modules', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        '--disable-warning=ExperimentalWarning',
        '-e',
        "const { provision } = require('iot-fleet-provisioning'); const { startSimulator } = require('iot-fleet-provisioning/simulator'); console.log(typeof provision, typeof startSimulator);",
      ],
      { cwd: project },
    );
    expect(stdout.trim()).toBe('function function');
  });

  it('fails require() with "this package is ESM: use import()" where require() cannot load ES modules', async () => {
    const failed = run(
      process.execPath,
      ['--no-experimental-require-module', '-e', "require('iot-fleet-provisioning')"],
      { cwd: project },
    );
    await expect(failed).rejects.toMatchObject({
      stderr: expect.stringContaining(
        "iot-fleet-provisioning: this package is ESM: use import() from CommonJS, e.g. `const { provision } = await import('iot-fleet-provisioning')`",
      ),
    });
  });
});
