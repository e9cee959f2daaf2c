/**
 * The summary `load` prints: counts, failures by code, throughput, percentiles and the histogram.
 */

import type { Output } from '../output.js';
import type { LoadReport } from './run.js';
import { drawHistogram, formatMs } from './stats.js';

/** Print `report` for people, on stdout. */
export function printSummary(output: Output, report: LoadReport, reportPath: string | undefined): void {
  const target = report.target.simulator ? 'in-process simulator (mutual TLS)' : report.target.endpoint;
  output.print(
    `load: ${report.devices} devices, concurrency ${report.concurrency}, keys ${report.keys}, ` +
      `format ${report.format}, against ${target}`,
  );
  output.print(`  succeeded   ${report.succeeded}`);
  const failures = Object.entries(report.failuresByCode)
    .sort((a, b) => b[1] - a[1])
    .map(([code, count]) => `${code} ${count}`);
  output.print(`  failed      ${report.failed}${failures.length > 0 ? ` (${failures.join(', ')})` : ''}`);
  output.print(`  retries     ${report.retries}`);
  output.print(`  duration    ${(report.durationMs / 1000).toFixed(2)} s`);
  output.print(`  throughput  ${report.throughputPerSecond.toFixed(1)} devices/s`);
  const latency = report.latencyMs;
  if (latency !== null) {
    output.print(
      `  latency     p50 ${formatMs(latency.p50)} ms   p90 ${formatMs(latency.p90)} ms   ` +
        `p99 ${formatMs(latency.p99)} ms   max ${formatMs(latency.max)} ms   ` +
        `(min ${formatMs(latency.min)}, mean ${formatMs(latency.mean)})`,
    );
    output.print('');
    output.print('  latency per device (connect, certificate, RegisterThing), ms:');
    for (const line of drawHistogram(report.histogram)) output.print(`  ${line}`);
  }
  if (reportPath !== undefined) output.print(`  report      ${reportPath}`);
}
