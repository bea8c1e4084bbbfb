/**
 * Real, small bundles for the service tests: `train()` on a few hundred synthetic bars (a tree with
 * small hyperparameters, a fraction of a second), written by `writeBundle` and read back by the real
 * `loadBundle`, so the service is tested with the feature sets, pipeline and bundle format it serves.
 * Training is cached per spec within a test file (each vitest file has its own module instance).
 */
import { join } from 'node:path';
import { loadBundle, writeBundle, type BundleManifest, type LoadedBundle, sha256 } from '../../../src/bundle/index.js';
import type { Bar, BarSeries } from '../../../src/data/bars.js';
import { generateSyntheticBars, writeBarsCsv } from '../../../src/data/index.js';
import { formatIsoDay, parseIsoDay, weekday } from '../../../src/data/dates.js';
import type { FeatureSetName } from '../../../src/features/types.js';
import type { FeaturePipeline } from '../../../src/models/index.js';
import { train } from '../../../src/training/train.js';

export interface TinySpec {
  name: string;
  version: string;
  /** Default `reference` (with its one-bar look-ahead `atr`). */
  featureSet?: FeatureSetName;
  /** Synthetic data: seed, bars (default 600: 200 warm-up bars, ~350 learn rows, ~50 test rows), first date. */
  seed?: number;
  bars?: number;
  startDate?: string;
  /** Tree depth (default 6); different depths give different models on the same data. */
  maxDepth?: number;
}

export const TINY_BARS = 600;

const trained = new Map<string, { manifest: BundleManifest; series: BarSeries }>();

/** The synthetic history a spec trains on (the bundle's `history.csv`, what the store is seeded with). */
export function tinySeries(spec: Pick<TinySpec, 'seed' | 'bars' | 'startDate'>): BarSeries {
  return generateSyntheticBars({ seed: spec.seed ?? 1, bars: spec.bars ?? TINY_BARS, startDate: spec.startDate });
}

/** Trains (once per spec and test file) a tree on synthetic bars. */
export function trainTiny(spec: TinySpec): { manifest: BundleManifest; series: BarSeries } {
  const key = JSON.stringify([spec.name, spec.version, spec.featureSet ?? 'reference', spec.seed ?? 1, spec.bars ?? TINY_BARS, spec.startDate ?? null, spec.maxDepth ?? 6]);
  let hit = trained.get(key);
  if (!hit) {
    const series = tinySeries(spec);
    const { manifest } = train({
      series,
      source: { file: `synthetic(seed=${spec.seed ?? 1}, bars=${spec.bars ?? TINY_BARS})`, sha256: sha256(writeBarsCsv(series)) },
      featureSet: spec.featureSet ?? 'reference',
      model: 'tree',
      tree: { maxDepth: spec.maxDepth ?? 6 },
      name: spec.name,
      version: spec.version,
    });
    hit = { manifest, series };
    trained.set(key, hit);
  }
  return hit;
}

/** Writes a tiny bundle folder (manifest, history.csv, checksums) and returns the folder. */
export async function writeTinyBundle(dir: string, spec: TinySpec): Promise<string> {
  const { manifest, series } = trainTiny(spec);
  await writeBundle(dir, manifest, series);
  return dir;
}

/** Writes a tiny bundle under `root/name/version` and loads it with the real loader (checksums, self-check). */
export async function tinyBundle(root: string, spec: TinySpec): Promise<LoadedBundle> {
  return loadBundle(await writeTinyBundle(join(root, spec.name, spec.version), spec));
}

/**
 * What the service must answer for bars `[from, to)` of `history` (the whole stored history): the
 * BATCH features of that history (an independent path from the service's incremental engine) through
 * the bundle's pipeline; null where a feature is not finite.
 */
export function expectedForecasts(pipeline: FeaturePipeline, history: BarSeries, from: number, to: number): (number | null)[] {
  const table = pipeline.featureSet.computeBatch(history);
  const k = table.values.cols;
  const out: (number | null)[] = [];
  for (let i = from; i < to; i++) {
    const row = table.values.data.slice(i * k, (i + 1) * k);
    out.push(row.every(Number.isFinite) ? pipeline.predictFeatures(row) : null);
  }
  return out;
}

export function expectedForecast(pipeline: FeaturePipeline, history: BarSeries, i: number): number | null {
  return expectedForecasts(pipeline, history, i, i + 1)[0];
}

/** The k-th weekday after `date`. */
export function nextWeekday(date: string, k = 1): string {
  let day = parseIsoDay(date);
  for (let i = 0; i < k; i++) {
    day++;
    while (weekday(day) === 0 || weekday(day) === 6) day++;
  }
  return formatIsoDay(day);
}

/** A copy of `s` with `bars` appended. */
export function appendBars(s: BarSeries, ...bars: Bar[]): BarSeries {
  return {
    date: [...s.date, ...bars.map((b) => b.date)],
    open: Float64Array.from([...s.open, ...bars.map((b) => b.open)]),
    high: Float64Array.from([...s.high, ...bars.map((b) => b.high)]),
    low: Float64Array.from([...s.low, ...bars.map((b) => b.low)]),
    close: Float64Array.from([...s.close, ...bars.map((b) => b.close)]),
    volume: Float64Array.from([...s.volume, ...bars.map((b) => b.volume)]),
  };
}

/** A bar from a `[date, open, high, low, close, volume]` row. */
export function rowBar(row: readonly (string | number)[]): Bar {
  return { date: row[0] as string, open: row[1] as number, high: row[2] as number, low: row[3] as number, close: row[4] as number, volume: row[5] as number };
}
