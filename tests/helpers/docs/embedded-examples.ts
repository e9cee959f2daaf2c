/**
 * The examples a guide embeds: `<!-- example: path -->`, a fenced block holding the file's text, then
 * `<!-- /example -->`. The block must be the file, byte for byte, so a guide can never show code that
 * the test suite does not run.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** One embedded example. */
export interface EmbeddedExample {
  /** The guide, relative to the root. */
  guide: string;
  /** 1-based line of the opening marker in the guide. */
  line: number;
  /** The example file, relative to the root. */
  file: string;
  /** The text between the fences. */
  body: string;
}

const OPEN = /<!-- example: (\S+) -->/g;
const BLOCK = /^<!-- example: (\S+) -->\n(`{3,})[a-z]*\n([\s\S]*?)^\2\n<!-- \/example -->/m;

/** The guides: every Markdown file under docs/guides. */
export function guideFiles(): string[] {
  return readdirSync(join(ROOT, 'docs', 'guides'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => join('docs', 'guides', name));
}

/** Every file under examples/, relative to the root. */
export function exampleFiles(dir = join(ROOT, 'examples')): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) =>
      entry.isDirectory() ? exampleFiles(join(dir, entry.name)) : [relative(ROOT, join(dir, entry.name))],
    )
    .sort();
}

/**
 * The examples `guide` embeds.
 * @throws when an opening marker is not followed by a fenced block and a closing marker.
 */
export function embeddedExamples(guide: string): EmbeddedExample[] {
  const text = readFileSync(join(ROOT, guide), 'utf8');
  const found: EmbeddedExample[] = [];
  for (const match of text.matchAll(OPEN)) {
    const line = text.slice(0, match.index).split('\n').length;
    const block = BLOCK.exec(text.slice(match.index));
    if (block === null || block.index !== 0 || block[1] === undefined || block[3] === undefined) {
      throw new Error(
        `${guide}:${line}: "${match[0]}" must be followed by a fenced code block and "<!-- /example -->".`,
      );
    }
    found.push({ guide, line, file: block[1], body: block[3] });
  }
  if (found.length !== [...text.matchAll(/<!-- \/example -->/g)].length) {
    throw new Error(`${guide}: a "<!-- /example -->" has no opening "<!-- example: path -->".`);
  }
  return found;
}

/** undefined when the block is the file; otherwise a message saying where they part and how to fix it. */
export function mismatch(example: EmbeddedExample, fileText: string): string | undefined {
  if (example.body === fileText) return undefined;
  const shown = example.body.split('\n');
  const actual = fileText.split('\n');
  let at = 0;
  while (at < shown.length && at < actual.length && shown[at] === actual[at]) at++;
  const show = (lines: string[]) =>
    lines
      .slice(at, at + 3)
      .map((l) => `    ${JSON.stringify(l)}`)
      .join('\n') || '    (end)';
  return [
    `${example.guide}:${example.line} embeds ${example.file}, but the two differ from line ${at + 1} of the example:`,
    `  the guide shows:\n${show(shown)}`,
    `  the file has:\n${show(actual)}`,
    `Copy ${example.file} between the fences of the block (the file is what the tests run), and keep the`,
    'file ending in exactly one newline.',
  ].join('\n');
}
