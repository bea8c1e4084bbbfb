import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { BarSeries } from '../../src/data/bars.js';
import { barAt, readBarsCsv, sliceSeries } from '../../src/data/index.js';
import { DataError } from '../../src/errors.js';
import { FEATURE_SETS } from '../../src/features/index.js';
import type { FeatureSet } from '../../src/features/types.js';
import { needsReference, referenceFile } from '../helpers/reference.js';
import { testHistories } from './histories.js';
import { causalOracle, referenceOracle } from './oracle.js';

const withReference = needsReference('MSFT.csv');

const SETS = Object.values(FEATURE_SETS);

const ORACLES: Record<FeatureSet['name'], (series: BarSeries) => Float64Array> = { reference: referenceOracle, causal: causalOracle };

/**
 * Compares, cell by cell with Object.is (NaN equals NaN, -0 differs from 0): `computeBatch` with
 * the independent column-wise oracle; then appends `series` bar by bar and compares each engine row,
 * once its look-ahead bar has arrived, with the oracle on the whole history; the provisional newest
 * rows at `checkpoints` with the oracle and `computeBatch` on the history so far; and every row at
 * the end with `computeBatch`. Returns the mismatches, described (at most 10).
 */
function engineVersusBatch(set: FeatureSet, series: BarSeries, checkpoints: ReadonlySet<number>): string[] {
  const n = series.date.length;
  const k = set.featureNames.length;
  const lookahead = set.lookahead;
  const oracle = ORACLES[set.name];
  const batch = set.computeBatch(series).values.data;
  const expected = oracle(series);
  const mismatches: string[] = [];
  const note = (what: string, i: number, j: number, actual: number, wanted: number) => {
    if (mismatches.length < 10) mismatches.push(`${what}: bar ${i} ${set.featureNames[j]}: ${actual}, expected ${wanted}`);
  };
  for (let c = 0; c < n * k; c++) if (!Object.is(batch[c], expected[c])) note('computeBatch vs oracle', Math.floor(c / k), c % k, batch[c], expected[c]);

  const engine = set.createEngine();
  const row = new Float64Array(k);
  const compare = (what: string, i: number, wanted: Float64Array, offset: number) => {
    engine.featuresAt(i, row);
    for (let j = 0; j < k; j++) if (!Object.is(row[j], wanted[offset + j])) note(what, i, j, row[j], wanted[offset + j]);
  };
  for (let t = 0; t < n; t++) {
    engine.append(barAt(series, t));
    if (engine.length !== t + 1) note('length', t, 0, engine.length, t + 1);
    if (t - lookahead >= 0) compare('engine final row vs oracle', t - lookahead, expected, (t - lookahead) * k);
    if (checkpoints.has(t + 1)) {
      const prefix = sliceSeries(series, 0, t + 1);
      const prefixOracle = oracle(prefix);
      const prefixBatch = set.computeBatch(prefix).values.data;
      for (let i = Math.max(0, t - lookahead); i <= t; i++) {
        compare(`engine provisional row of ${t + 1} bars vs oracle`, i, prefixOracle, i * k);
        compare(`engine provisional row of ${t + 1} bars vs batch`, i, prefixBatch, i * k);
      }
    }
  }
  for (let i = 0; i < n; i++) compare('engine at the end vs batch', i, batch, i * k);
  return mismatches;
}

function countNonFinite(set: FeatureSet, series: BarSeries): number {
  return set.computeBatch(series).values.data.filter((x) => !Number.isFinite(x)).length;
}

describe('incremental engine == batch == an independent column-wise oracle, bit for bit', () => {
  const histories = testHistories();
  for (const set of SETS) {
    it(`${set.name}: ${histories.length} synthetic and edge-case histories`, () => {
      const failures: string[] = [];
      for (const { name, series } of histories) {
        const n = series.date.length;
        const checkpoints = new Set([1, 2, 3, 7, 15, 16, 40, 200, 201, Math.floor(n / 2), n - 1, n].filter((m) => m >= 1 && m <= n));
        for (const m of engineVersusBatch(set, series, checkpoints)) failures.push(`${name}: ${m}`);
      }
      expect(failures).toEqual([]);
    });
  }

  it('the edge-case histories do reach NaN and ±Infinity in both sets', () => {
    const byName = new Map(testHistories().map((h) => [h.name, h.series]));
    const flat = byName.get('every bar flat at 10')!;
    const adjusted = byName.get('high == low with the close outside (adjusted close)')!;
    for (const set of SETS) expect(countNonFinite(set, flat)).toBeGreaterThan(400);
    // The reference's double division gives ±Infinity money flow on such bars (FEATURES.md §3).
    const chaikin = FEATURE_SETS.reference.featureNames.indexOf('chaikin_oscillator');
    const table = FEATURE_SETS.reference.computeBatch(adjusted);
    const values = Array.from({ length: table.values.rows }, (_, i) => table.values.data[i * table.values.cols + chaikin]);
    expect(values.some((x) => Number.isNaN(x))).toBe(true);
  });

  it('an engine seeded with a history continues exactly like one fed bar by bar', () => {
    const { series } = testHistories().find((h) => h.name === 'synthetic seed 1, 1500 bars')!;
    for (const set of SETS) {
      const full = set.computeBatch(series).values.data;
      const k = set.featureNames.length;
      const engine = set.createEngine(sliceSeries(series, 0, 900));
      for (let t = 900; t < 1500; t++) engine.append(barAt(series, t));
      const row = new Float64Array(k);
      let differing = 0;
      for (let i = 0; i < 1500; i++) {
        engine.featuresAt(i, row);
        for (let j = 0; j < k; j++) if (!Object.is(row[j], full[i * k + j])) differing++;
      }
      expect(differing).toBe(0);
    }
  });

  it('append refuses an invalid or out-of-order bar with a DataError and leaves the engine unchanged', () => {
    const { series } = testHistories().find((h) => h.name === 'synthetic seed 2, 1500 bars')!;
    for (const set of SETS) {
      const engine = set.createEngine(sliceSeries(series, 0, 300));
      const next = barAt(series, 300);
      const bad = [
        { ...next, low: next.high * 2 },
        { ...next, close: 0 },
        { ...next, volume: -1 },
        { ...next, date: series.date[299] },
        { ...next, date: series.date[10] },
        { ...next, date: 'soon' },
      ];
      for (const bar of bad) {
        expect(() => engine.append(bar)).toThrow(DataError);
        expect(engine.length).toBe(300);
      }
      for (let t = 300; t < 400; t++) engine.append(barAt(series, t));
      const batch = set.computeBatch(sliceSeries(series, 0, 400)).values.data;
      const k = set.featureNames.length;
      const row = new Float64Array(k);
      engine.featuresAt(399, row);
      expect(Array.from(row)).toEqual(Array.from(batch.subarray(399 * k, 400 * k)));
      expect(() => engine.featuresAt(400, row)).toThrow(RangeError);
      expect(() => engine.featuresAt(0, new Float64Array(3))).toThrow(RangeError);
    }
  });

  it('computeBatch refuses an invalid series naming the row and field', () => {
    const { series } = testHistories().find((h) => h.name === 'synthetic seed 3, 1500 bars')!;
    const broken = sliceSeries(series, 0, 50);
    broken.high[17] = broken.low[17] / 2;
    for (const set of SETS) {
      expect(() => set.computeBatch(broken)).toThrow(/^row 17, field "high": high .* is below low/);
    }
  });
});

withReference.describe('incremental engine == batch == oracle on MSFT.csv', () => {
  for (const set of SETS) {
    it(`${set.name} set, bar by bar over 8,163 bars`, () => {
      const series = readBarsCsv(readFileSync(referenceFile('MSFT.csv'), 'utf8'), { numberParsing: set.numberParsing });
      const n = series.date.length;
      const checkpoints = new Set([1, 2, 200, 201, 1000, 5000, 7201, n - 1, n]);
      expect(engineVersusBatch(set, series, checkpoints)).toEqual([]);
    });
  }
});
