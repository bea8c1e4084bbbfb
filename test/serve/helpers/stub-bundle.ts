/**
 * Test doubles standing in for the real feature sets and bundles: a tiny feature set with the same
 * contract (incremental engine, optional 1-bar look-ahead like the reference `atr`, a feature that is
 * not finite when high == low) and a linear "model", so the service can be tested on its own.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Bar, BarSeries } from '../../../src/data/bars.js';
import type { BundleManifest, LoadedBundle } from '../../../src/bundle/types.js';
import { FeaturePipeline, LinearRegression, StandardScaler } from '../../../src/models/index.js';
import type { LinearState } from '../../../src/models/types.js';
import type { FeatureEngine, FeatureSet, FeatureTable } from '../../../src/features/types.js';

export interface StubSpec {
  name: string;
  version: string;
  /** Bars of seed history. */
  bars: number;
  seed?: number;
  lookahead?: 0 | 1;
  /** Scales the model's output so two versions answer differently. */
  weight?: number;
  startDate?: string;
}

/** A deterministic random walk of daily bars on weekdays. */
export function makeSeries(n: number, seed = 1, startDate = '2020-01-01'): BarSeries {
  let s = seed >>> 0 || 1;
  const rnd = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  const series: BarSeries = { date: [], open: new Float64Array(n), high: new Float64Array(n), low: new Float64Array(n), close: new Float64Array(n), volume: new Float64Array(n) };
  let t = Date.parse(`${startDate}T00:00:00Z`);
  let price = 100;
  for (let i = 0; i < n; i++) {
    while ([0, 6].includes(new Date(t).getUTCDay())) t += 86_400_000;
    series.date.push(new Date(t).toISOString().slice(0, 10));
    const open = price * (1 + (rnd() - 0.5) * 0.02);
    const close = open * (1 + (rnd() - 0.5) * 0.03);
    series.open[i] = open;
    series.close[i] = close;
    series.high[i] = Math.max(open, close) * (1 + rnd() * 0.01);
    series.low[i] = Math.min(open, close) * (1 - rnd() * 0.01);
    series.volume[i] = Math.round(1e6 + rnd() * 1e6);
    price = close;
    t += 86_400_000;
  }
  return series;
}

/** The next weekday after `date`. */
export function nextWeekday(date: string, k = 1): string {
  let t = Date.parse(`${date}T00:00:00Z`);
  for (let i = 0; i < k; i++) {
    t += 86_400_000;
    while ([0, 6].includes(new Date(t).getUTCDay())) t += 86_400_000;
  }
  return new Date(t).toISOString().slice(0, 10);
}

class StubEngine implements FeatureEngine {
  private readonly bars: Bar[] = [];
  constructor(private readonly lookahead: 0 | 1) {}
  get length(): number {
    return this.bars.length;
  }
  append(bar: Bar): void {
    this.bars.push(bar);
  }
  featuresAt(i: number, out: Float64Array): void {
    const b = this.bars;
    const bar = b[i];
    out[0] = i > 0 ? bar.close / b[i - 1].close : NaN;
    out[1] = i >= 2 ? (b[i].close + b[i - 1].close + b[i - 2].close) / 3 : NaN;
    // Like the reference atr: reads the next bar's close when there is one (look-ahead).
    const next = this.lookahead && i + 1 < b.length ? b[i + 1].close : NaN;
    out[2] = Math.max(bar.high - bar.low, Number.isNaN(next) ? -Infinity : bar.high - next);
    // Not finite when high == low (like the reference chaikin oscillator).
    out[3] = (bar.close - bar.low) / (bar.high - bar.low);
  }
}

export function stubFeatureSet(lookahead: 0 | 1 = 1): FeatureSet {
  const featureNames = ['return', 'ma3', 'range_next', 'close_position'];
  const fs: FeatureSet = {
    name: lookahead ? 'reference' : 'causal',
    featureNames,
    numberParsing: 'exact',
    lookahead,
    warmupBars: 2,
    caveats: lookahead ? ['stub: range_next reads the next bar (look-ahead)'] : [],
    createEngine: (history?: BarSeries) => {
      const e = new StubEngine(lookahead);
      if (history) for (let i = 0; i < history.date.length; i++) e.append({ date: history.date[i], open: history.open[i], high: history.high[i], low: history.low[i], close: history.close[i], volume: history.volume[i] });
      return e;
    },
    computeBatch(series: BarSeries): FeatureTable {
      const e = new StubEngine(lookahead);
      const n = series.date.length;
      for (let i = 0; i < n; i++)
        e.append({ date: series.date[i], open: series.open[i], high: series.high[i], low: series.low[i], close: series.close[i], volume: series.volume[i] });
      const values = { rows: n, cols: 4, data: new Float64Array(n * 4) };
      for (let i = 0; i < n; i++) e.featuresAt(i, values.data.subarray(i * 4, i * 4 + 4));
      const target = new Float64Array(n).fill(NaN);
      for (let i = 0; i + 1 < n; i++) target[i] = series.close[i + 1] / series.close[i];
      return { featureNames, dates: series.date, values, target, modelRowStart: 2, modelRowEnd: n - 1 - lookahead };
    },
  };
  return fs;
}

export function stubModelState(weight = 1): LinearState {
  return { kind: 'linear_regression', nFeatures: 4, coef: [0.1 * weight, 0.00001 * weight, 0.01 * weight, 0.0001 * weight], intercept: 0.9 * weight };
}

/** Identity scaler, no expansion, a linear model: the real pipeline class around stub parts. */
export function stubPipeline(featureSet: FeatureSet, weight = 1): FeaturePipeline {
  const scaler = StandardScaler.fromState({ mean: [0, 0, 0, 0], variance: [1, 1, 1, 1], scale: [1, 1, 1, 1], nSamplesSeen: 1 });
  return new FeaturePipeline(featureSet, scaler, null, LinearRegression.fromState(stubModelState(weight)), false);
}

export function stubManifest(spec: StubSpec, fs: FeatureSet, history: BarSeries): BundleManifest {
  const n = history.date.length;
  return {
    formatVersion: 1,
    name: spec.name,
    version: spec.version,
    createdAt: '2024-01-01T00:00:00.000Z',
    origin: 'train',
    source: { file: 'stub.csv', sha256: '0'.repeat(64), firstDate: history.date[0], lastDate: history.date[n - 1], bars: n },
    featureSet: {
      name: fs.name,
      featureNames: [...fs.featureNames],
      lookahead: fs.lookahead,
      numberParsing: fs.numberParsing,
      caveats: [...fs.caveats],
      csvRoundTrip: false,
    },
    scaler: { mean: [0, 0, 0, 0], variance: [1, 1, 1, 1], scale: [1, 1, 1, 1], nSamplesSeen: n },
    expansion: null,
    model: stubModelState(spec.weight ?? 1),
    hyperparameters: { stub: true, weight: spec.weight ?? 1 },
    training: { learnRows: n, fitRows: [0, n], folds: [] },
    metrics: { test: { mae: 0.01, mse: 0.0002, r2: -0.01, rows: 10 }, cv: null },
    evaluation: { dates: [], yTrue: [], yPred: [] },
    historyFile: 'history.csv',
  };
}

export function stubBundle(spec: StubSpec, dir = `/stub/${spec.name}/${spec.version}`): LoadedBundle {
  const fs = stubFeatureSet(spec.lookahead ?? 1);
  const history = makeSeries(spec.bars, spec.seed ?? 1, spec.startDate);
  return { dir, manifest: stubManifest(spec, fs, history), pipeline: stubPipeline(fs, spec.weight ?? 1), history, id: `${spec.name}@${spec.version}` };
}

/** Writes a stub bundle folder (manifest.json holding the spec) that `loadBundle` below reads. */
export function writeStubBundle(dir: string, spec: StubSpec): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ stub: spec }));
  return dir;
}

/** A bundle loader for stub folders (used in worker processes via `bundleLoaderModule`). */
export async function loadBundle(dir: string): Promise<LoadedBundle> {
  const { stub } = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { stub: StubSpec };
  return stubBundle(stub, dir);
}

/** What the stub model forecasts for bar i of a history (for expected values in tests). */
export function expectedForecast(series: BarSeries, i: number, spec: Pick<StubSpec, 'lookahead' | 'weight'> = {}): number | null {
  const fs = stubFeatureSet(spec.lookahead ?? 1);
  const e = fs.createEngine();
  for (let k = 0; k < series.date.length; k++)
    e.append({ date: series.date[k], open: series.open[k], high: series.high[k], low: series.low[k], close: series.close[k], volume: series.volume[k] });
  const row = new Float64Array(4);
  e.featuresAt(i, row);
  if (!row.every(Number.isFinite)) return null;
  return stubPipeline(fs, spec.weight ?? 1).predictFeatures(row);
}
