/**
 * The guides show the examples the test suite runs: every marked block in docs/guides is byte-identical
 * to its file under examples/, and every file there is shown. The examples themselves run in the other
 * tests of this folder.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import {
  embeddedExamples,
  exampleFiles,
  guideFiles,
  mismatch,
  ROOT,
} from '../helpers/docs/embedded-examples.js';

const guides = guideFiles();

describe('docs/guides', () => {
  it('has the six guides', () => {
    expect(guides).toEqual([
      'docs/guides/handling-errors.md',
      'docs/guides/keys-on-the-device.md',
      'docs/guides/onboarding-from-ci.md',
      'docs/guides/provision-on-aws.md',
      'docs/guides/rotating-certificates.md',
      'docs/guides/testing-with-the-simulator.md',
    ]);
  });

  it.each(guides)('%s embeds its examples byte for byte', (guide) => {
    const examples = embeddedExamples(guide);
    expect(examples.length).toBeGreaterThan(0);
    const problems = examples.flatMap((example) => {
      const path = join(ROOT, example.file);
      if (!existsSync(path)) return [`${guide}:${example.line}: ${example.file} does not exist.`];
      return mismatch(example, readFileSync(path, 'utf8')) ?? [];
    });
    expect(problems.join('\n\n')).toBe('');
  });

  it('shows every file under examples/ in some guide', () => {
    const shown = new Set(guides.flatMap((guide) => embeddedExamples(guide).map((e) => e.file)));
    expect(exampleFiles().filter((file) => !shown.has(file))).toEqual([]);
  });

  it('tells readers to import the package, not ../src', () => {
    for (const guide of guides.filter((g) => readFileSync(join(ROOT, g), 'utf8').includes('../src/'))) {
      expect([guide, readFileSync(join(ROOT, guide), 'utf8').includes("'iot-fleet-provisioning'")]).toEqual([
        guide,
        true,
      ]);
    }
  });
});

describe('the example check', () => {
  it('reports where a block and its file part', () => {
    const message = mismatch(
      { guide: 'docs/guides/x.md', line: 7, file: 'examples/x.ts', body: 'a\nb\nc\n' },
      'a\nB\nc\n',
    );
    expect(message).toContain('docs/guides/x.md:7 embeds examples/x.ts');
    expect(message).toContain('from line 2');
    expect(message).toContain('"b"');
    expect(message).toContain('"B"');
    expect(mismatch({ guide: 'g', line: 1, file: 'f', body: 'same\n' }, 'same\n')).toBeUndefined();
  });
});
