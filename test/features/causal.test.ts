import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { BarSeries } from '../../src/data/bars.js';
import { barAt, generateSyntheticBars, readBarsCsv, sliceSeries } from '../../src/data/index.js';
import { causalFeatureSet, referenceFeatureSet } from '../../src/features/index.js';
import type { FeatureSet } from '../../src/features/types.js';
import { needsReference, referenceFile } from '../helpers/reference.js';
import { testHistories } from './histories.js';

const withReference = needsReference('MSFT.csv');

/**
 * Appends bars one at a time, recording every row as first written; at the end reports, per
 * feature, how many rows changed after they were written (a row may only change through look-ahead).
 */
function changedAfterWritten(set: FeatureSet, series: BarSeries): Map<string, number> {
  const n = series.date.length;
  const k = set.featureNames.length;
  const engine = set.createEngine();
  const firstSeen = new Float64Array(n * k);
  const row = new Float64Array(k);
  for (let t = 0; t < n; t++) {
    engine.append(barAt(series, t));
    engine.featuresAt(t, row);
    firstSeen.set(row, t * k);
  }
  const changed = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    engine.featuresAt(i, row);
    for (let j = 0; j < k; j++) {
      if (!Object.is(row[j], firstSeen[i * k + j])) changed.set(set.featureNames[j], (changed.get(set.featureNames[j]) ?? 0) + 1);
    }
  }
  return changed;
}

describe('causal features: no look-ahead', () => {
  it('appending later bars never changes an earlier row (engine), on every test history', () => {
    for (const { name, series } of testHistories()) {
      expect([name, [...changedAfterWritten(causalFeatureSet, series)]]).toEqual([name, []]);
    }
  });

  it('the batch features of a history prefix are the first rows of the whole history\'s', () => {
    const series = generateSyntheticBars({ seed: 21, bars: 800 });
    const k = causalFeatureSet.featureNames.length;
    const full = causalFeatureSet.computeBatch(series).values.data;
    for (const m of [1, 2, 14, 15, 199, 200, 201, 640, 799]) {
      const prefix = causalFeatureSet.computeBatch(sliceSeries(series, 0, m)).values.data;
      expect(Array.from(prefix)).toEqual(Array.from(full.subarray(0, m * k)));
    }
  });

  it('by contrast the reference set\'s atr changes once the next bar arrives (FEATURES.md §3 look-ahead), and nothing else does', () => {
    const series = generateSyntheticBars({ seed: 22, bars: 600 });
    const changed = changedAfterWritten(referenceFeatureSet, series);
    expect([...changed.keys()]).toEqual(['atr']);
    // The true range changes when the next close falls below the bar's low (max(high - low,
    // high - next close, low - next close)); atr is defined from bar 14; the newest bar is still provisional.
    let expected = 0;
    for (let t = 14; t < 599; t++) if (series.close[t + 1] < series.low[t]) expected++;
    expect(expected).toBeGreaterThan(10);
    expect(changed.get('atr')).toBe(expected);
  });
});

describe('causal feature definitions', () => {
  const series = generateSyntheticBars({ seed: 23, bars: 1200 });
  const table = causalFeatureSet.computeBatch(series);
  const k = causalFeatureSet.featureNames.length;
  const column = (name: string) => {
    const j = causalFeatureSet.featureNames.indexOf(name);
    return Array.from({ length: table.values.rows }, (_, i) => table.values.data[i * k + j]);
  };

  it('declares exact parsing, no look-ahead and model rows from bar 199 to the last bar with a target', () => {
    expect(causalFeatureSet.numberParsing).toBe('exact');
    expect(causalFeatureSet.lookahead).toBe(0);
    expect(causalFeatureSet.warmupBars).toBe(199);
    expect(table.modelRowStart).toBe(199);
    expect(table.modelRowEnd).toBe(1199);
    expect(Number.isNaN(table.target[1199])).toBe(true);
    expect(table.target[1198]).toBe(series.close[1199] / series.close[1198]);
    const rows = table.values.data.subarray(table.modelRowStart * k, table.modelRowEnd * k);
    expect(rows.every(Number.isFinite)).toBe(true);
    // The row before the warm-up lacks the 200-bar average.
    expect(Number.isNaN(table.values.data[198 * k + causalFeatureSet.featureNames.indexOf('ma_50_200')])).toBe(true);
  });

  it('oscillators stay in their textbook ranges', () => {
    const inRange = (name: string, lo: number, hi: number) => column(name).slice(table.modelRowStart).every((x) => x >= lo && x <= hi);
    expect(inRange('rsi', 0, 100)).toBe(true);
    expect(inRange('stochastic_k', 0, 100)).toBe(true);
    expect(inRange('on_balance_volume', -1, 1)).toBe(true);
    expect(inRange('close_to_high', 0, 1)).toBe(true);
    expect(inRange('close_to_low', 1, Infinity)).toBe(true);
    expect(inRange('atr_ratio', 0, 1)).toBe(true);
    // Wilder's SAR sits below the close in an uptrend and above it in a downtrend.
    const sar = column('sar_distance').slice(1);
    expect(sar.some((x) => x > 0) && sar.some((x) => x < 0)).toBe(true);
  });

  it('stochastic_k uses the 14-bar high and low, cci the 0.015 constant (spot checks against direct formulas)', () => {
    const t = 500;
    let hh = -Infinity;
    let ll = Infinity;
    for (let i = t - 13; i <= t; i++) {
      hh = Math.max(hh, series.high[i]);
      ll = Math.min(ll, series.low[i]);
    }
    expect(column('stochastic_k')[t]).toBe(((series.close[t] - ll) / (hh - ll)) * 100);
    // CCI: deviation of the typical price from its 20-bar mean over 0.015 x the mean absolute deviation.
    const tp = (i: number) => (series.high[i] + series.low[i] + series.close[i]) / 3;
    const mean = (i: number) => Array.from({ length: 20 }, (_, j) => tp(i - j)).reduce((a, b) => a + b) / 20;
    const dev = (i: number) => tp(i) - mean(i);
    const md = Array.from({ length: 20 }, (_, j) => Math.abs(dev(t - j))).reduce((a, b) => a + b) / 20;
    expect(column('cci')[t]).toBeCloseTo(dev(t) / (0.015 * md), 8);
  });
});

withReference.describe('causal features on MSFT.csv', () => {
  it('no row changes after it is written, and every model row is finite', () => {
    const series = readBarsCsv(readFileSync(referenceFile('MSFT.csv'), 'utf8'), { numberParsing: 'exact' });
    expect([...changedAfterWritten(causalFeatureSet, series)]).toEqual([]);
    const table = causalFeatureSet.computeBatch(series);
    const k = causalFeatureSet.featureNames.length;
    expect(table.modelRowEnd - table.modelRowStart).toBe(8163 - 1 - 199);
    expect(table.values.data.subarray(table.modelRowStart * k, table.modelRowEnd * k).every(Number.isFinite)).toBe(true);
  });
});
