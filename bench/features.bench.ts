/**
 * Feature computation speed: the whole-history batch (training, evaluation, bundle self-check) and
 * the incremental append (the service's hot path), for both feature sets, on MSFT.csv (8,163 bars)
 * or, without ../shared, on a synthetic history of the same length.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Bar, BarSeries } from '../src/data/bars.js';
import { generateSyntheticBars, readBarsCsv, seriesToBars } from '../src/data/index.js';
import { FEATURE_SETS } from '../src/features/index.js';
import type { FeatureSet } from '../src/features/types.js';
import { results } from './results.js';

export const title = 'feature engine, batch and incremental';

const MSFT = fileURLToPath(new URL('../../shared/reference/MSFT.csv', import.meta.url));
const BATCH_RUNS = 21;
const APPEND_RUNS = 21;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function benchSet(set: FeatureSet, series: BarSeries, label: string, idPart: string): void {
  const n = series.date.length;
  const bars: Bar[] = seriesToBars(series);
  const row = new Float64Array(set.featureNames.length);
  let sink = 0;

  for (let i = 0; i < 3; i++) sink += set.computeBatch(series).modelRowEnd; // warm-up
  const batch: number[] = [];
  for (let r = 0; r < BATCH_RUNS; r++) {
    const t0 = performance.now();
    const table = set.computeBatch(series);
    batch.push(performance.now() - t0);
    sink += table.modelRowEnd;
  }

  const append: number[] = [];
  const appendAndRead: number[] = [];
  for (let r = 0; r < APPEND_RUNS + 3; r++) {
    const engine = set.createEngine();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) engine.append(bars[i]);
    const t1 = performance.now();
    // The service's step: append the newest bar, read its row.
    const engine2 = set.createEngine();
    const t2 = performance.now();
    for (let i = 0; i < n; i++) {
      engine2.append(bars[i]);
      engine2.featuresAt(i, row);
    }
    const t3 = performance.now();
    sink += row[0] || 0;
    if (r >= 3) {
      append.push(((t1 - t0) * 1e6) / n);
      appendAndRead.push(((t3 - t2) * 1e6) / n);
    }
  }

  console.log(
    `  ${set.name.padEnd(9)} ${label}: batch ${median(batch).toFixed(2)} ms (median of ${BATCH_RUNS}); ` +
      `append ${median(append).toFixed(0)} ns/bar, append + featuresAt ${median(appendAndRead).toFixed(0)} ns/bar (median of ${APPEND_RUNS} passes)`,
  );
  if (sink === 42) console.log('');
  const notes = `${label}; median of ${BATCH_RUNS} runs`;
  results.figure({ id: `${set.name}.${idPart}.batch`, label: `${set.name} features, whole-history batch (${n.toLocaleString('en-US')} bars)`, value: median(batch), unit: 'ms', notes });
  results.figure({ id: `${set.name}.${idPart}.append`, label: `${set.name} features, incremental append`, value: median(append), unit: 'ns/bar', notes: `${label}; median of ${APPEND_RUNS} passes` });
  results.figure({
    id: `${set.name}.${idPart}.append-read`,
    label: `${set.name} features, append + featuresAt (the service's step)`,
    value: median(appendAndRead),
    unit: 'ns/bar',
    notes: `${label}; median of ${APPEND_RUNS} passes`,
  });
}

export default async function run(): Promise<void> {
  const sets = Object.values(FEATURE_SETS);
  if (existsSync(MSFT)) {
    const text = readFileSync(MSFT, 'utf8');
    for (const set of sets) benchSet(set, readBarsCsv(text, { numberParsing: set.numberParsing }), 'MSFT.csv, 8,163 bars', 'msft');
  } else {
    console.log(`  ../shared/reference/MSFT.csv is absent (${MSFT}): MSFT figures skipped; a synthetic history of the same length instead`);
    const series = generateSyntheticBars({ seed: 1, bars: 8163, startDate: '1986-03-13' });
    results.note('../shared/reference/MSFT.csv is absent: a synthetic history of the same length (8,163 bars) stands in');
    for (const set of sets) benchSet(set, series, 'synthetic, 8,163 bars', 'synthetic');
  }
}
