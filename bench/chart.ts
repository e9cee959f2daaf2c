/**
 * A small SVG bar chart of the bench's p50 figures, library against hand-written, one pair of bars per
 * case, written next to docs/performance.md so the page shows the figures of the last run.
 */

/** One case of the bench: its label and the two p50 times in milliseconds. */
export interface ChartRow {
  label: string;
  library: number;
  handWritten: number;
}

const WIDTH = 760;
const LABEL = 250;
const BAR = 12;
const GAP = 14;
const TOP = 46;

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Render `rows` as an SVG document. Bars share one logarithmic axis, since the cases span two orders of
 * magnitude (a warm call is a fraction of a millisecond, 100 connections at once take tens).
 */
export function renderChart(title: string, rows: readonly ChartRow[]): string {
  const values = rows.flatMap((r) => [r.library, r.handWritten]).filter((v) => v > 0);
  const min = Math.min(...values) / 2;
  const max = Math.max(...values) * 1.2;
  const span = WIDTH - LABEL - 90;
  const x = (v: number) => (Math.log(v / min) / Math.log(max / min)) * span;
  const height = TOP + rows.length * (2 * BAR + GAP) + 20;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    `<rect x="${LABEL}" y="26" width="12" height="10" fill="#2b6cb0"/><text x="${LABEL + 16}" y="35">library (p50, ms)</text>`,
    `<rect x="${LABEL + 150}" y="26" width="12" height="10" fill="#a0aec0"/><text x="${LABEL + 166}" y="35">hand-written mqtt.js (p50, ms)</text>`,
  ];
  rows.forEach((row, i) => {
    const y = TOP + i * (2 * BAR + GAP);
    parts.push(`<text x="${LABEL - 8}" y="${y + BAR + 4}" text-anchor="end">${escapeXml(row.label)}</text>`);
    for (const [j, value, colour] of [
      [0, row.library, '#2b6cb0'],
      [1, row.handWritten, '#a0aec0'],
    ] as const) {
      const w = Math.max(1, x(value));
      const top = y + j * BAR;
      parts.push(
        `<rect x="${LABEL}" y="${top}" width="${w.toFixed(1)}" height="${BAR - 1}" fill="${colour}"/>`,
      );
      parts.push(`<text x="${(LABEL + w + 4).toFixed(1)}" y="${top + BAR - 2}">${value.toFixed(3)}</text>`);
    }
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
