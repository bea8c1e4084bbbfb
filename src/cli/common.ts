import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import cliProgress from 'cli-progress';
import type { BarSeries } from '../data/bars.js';
import { readBarsCsv } from '../data/index.js';
import { ForecastError } from '../errors.js';
import type { RegressionMetrics } from '../bundle/types.js';
import { sha256 } from '../bundle/io.js';

/** A CSV of bars read with the number parser the feature set defines (FEATURES.md §3b.1). */
export async function readSource(path: string, numberParsing: 'legacy' | 'exact'): Promise<{ series: BarSeries; source: { file: string; sha256: string } }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ForecastError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 404, 'file_not_found');
  }
  return { series: readBarsCsv(text, { numberParsing, sourceName: basename(path) }), source: { file: basename(path), sha256: sha256(text) } };
}

/** Progress bars on stderr for long steps, silent when stderr is not a terminal (CI, pipes). */
export function progressReporter(): { update: (step: string, done: number, total: number) => void; stop: () => void } {
  if (!process.stderr.isTTY) {
    let last = '';
    return {
      update: (step) => {
        if (step !== last) process.stderr.write(`${step}...\n`);
        last = step;
      },
      stop: () => undefined,
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: '{step} [{bar}] {value}/{total}', stream: process.stderr, clearOnComplete: true, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let current = '';
  return {
    update(step, done, total) {
      if (step !== current) {
        if (current) bar.stop();
        bar.start(total, done, { step });
        current = step;
      } else bar.update(done, { step });
    },
    stop: () => {
      if (current) bar.stop();
    },
  };
}

/** Full round-trip precision: `String(x)` is the shortest decimal that reads back as the same double. */
export function formatNumber(x: number | null): string {
  return x === null ? 'null' : String(x);
}

export function metricsRow(label: string, m: RegressionMetrics): string[] {
  return [label, String(m.rows), m.mae.toPrecision(8), m.mse.toPrecision(8), m.r2.toPrecision(8)];
}

/** A plain aligned text table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function parseIntOption(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new ForecastError(`${name} must be a whole number, got "${value}"`, 400, 'invalid_option');
    return n;
  };
}
