/**
 * docs/guides/testing-with-the-simulator.md shows the jest configuration a user needs
 * (examples/jest.config.mjs). This runs the guide's suite (examples/onboarding.test.ts, importing the
 * package by name) with that configuration, in a project of its own, as a user's `npm test` would.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ROOT } from '../helpers/docs/embedded-examples.js';

const run = promisify(execFile);

describe("the simulator guide's jest configuration", () => {
  let project: string;

  beforeAll(async () => {
    project = await mkdtemp(join(tmpdir(), 'guide-jest-'));
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'my-device', private: true }));
    await copyFile(join(ROOT, 'examples', 'jest.config.mjs'), join(project, 'jest.config.mjs'));
    const suite = (await readFile(join(ROOT, 'examples', 'onboarding.test.ts'), 'utf8'))
      .replace("'../src/index.js'", "'iot-fleet-provisioning'")
      .replace("'../src/simulator/index.js'", "'iot-fleet-provisioning/simulator'");
    expect(suite).not.toContain('../src/');
    await mkdir(join(project, 'test'));
    await writeFile(join(project, 'test', 'onboarding.test.ts'), suite);
    // Installed as a user's would be: the package (this repository, built) and the dev tools.
    await mkdir(join(project, 'node_modules'));
    for (const name of await readdir(join(ROOT, 'node_modules'))) {
      await symlink(join(ROOT, 'node_modules', name), join(project, 'node_modules', name));
    }
    await symlink(ROOT, join(project, 'node_modules', 'iot-fleet-provisioning'));
  });

  afterAll(async () => {
    await rm(project, { recursive: true, force: true });
  });

  it('runs the guide suite against the package by name', async () => {
    const { stderr } = await run(
      process.execPath,
      ['--experimental-vm-modules', 'node_modules/jest/bin/jest.js', '--ci'],
      { cwd: project, maxBuffer: 16 * 1024 * 1024 },
    );
    expect(stderr).toMatch(/Tests: +\d+ passed, \d+ total/);
    expect(stderr).not.toMatch(/failed/);
  }, 120_000);
});
