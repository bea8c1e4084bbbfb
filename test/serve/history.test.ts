/**
 * The in-memory history and its feature state: lookups by binary search, and the hand-over of the
 * engine a bundle's self-check ran over its history (a start does not compute every feature twice),
 * taken only when the stored history really begins with those bars.
 */
import { describe, expect, it } from 'vitest';
import { sliceSeries, type BarSeries } from '../../src/data/bars.js';
import { generateSyntheticBars } from '../../src/data/index.js';
import { FEATURE_SETS } from '../../src/features/index.js';
import { FeatureState, HistoryMirror } from '../../src/serve/history.js';
import type { HistoryStore } from '../../src/store/types.js';

const featureSet = FEATURE_SETS.causal;
const series = generateSyntheticBars({ seed: 3, bars: 400 });

function mirrorOf(bars: BarSeries): HistoryMirror {
  // reset() needs no store: the copy is filled directly.
  const mirror = new HistoryMirror('m', {} as HistoryStore);
  mirror.reset({ version: 1, bars });
  return mirror;
}

function rowsOf(state: FeatureState, n: number): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < n; i++) {
    const r = state.featuresAt(i);
    rows.push(r instanceof Float64Array ? Array.from(r) : [Number.NaN]);
  }
  return rows;
}

describe('HistoryMirror', () => {
  it('finds every date, the newest first, and no date that is not there', () => {
    const mirror = mirrorOf(series);
    for (let i = 0; i < series.date.length; i++) expect(mirror.indexOf(series.date[i])).toBe(i);
    expect(mirror.indexOf('1900-01-01')).toBeUndefined();
    expect(mirror.indexOf('2999-01-01')).toBeUndefined();
    expect(mirror.indexOf(`${series.date[10]}x`)).toBeUndefined();
    expect(new HistoryMirror('e', {} as HistoryStore).indexOf(series.date[0])).toBeUndefined();
  });

  it('startsWith compares dates and every value to the bit', () => {
    const mirror = mirrorOf(series);
    expect(mirror.startsWith(sliceSeries(series, 0, 250))).toBe(true);
    expect(mirror.startsWith(series)).toBe(true);
    const changed = sliceSeries(series, 0, 250);
    changed.close[100] = changed.close[100] + changed.close[100] * Number.EPSILON;
    expect(mirror.startsWith(changed)).toBe(false);
    expect(mirrorOf(sliceSeries(series, 0, 100)).startsWith(sliceSeries(series, 0, 101))).toBe(false);
  });
});

describe('FeatureState start from a bundle engine', () => {
  const batch = (bars: BarSeries) => {
    const fresh = new FeatureState(featureSet, mirrorOf(bars));
    fresh.update();
    return rowsOf(fresh, bars.date.length);
  };

  it('continues from the engine when the stored history begins with its bars, appending the rest', () => {
    const prefix = sliceSeries(series, 0, 300);
    // An engine over other bars, handed over as if it had seen `prefix`: adopting it shows in its rows.
    const other = generateSyntheticBars({ seed: 99, bars: 300 });
    const state = new FeatureState(featureSet, mirrorOf(series), { engine: featureSet.createEngine(other), bars: prefix });
    state.update();
    expect(state.length).toBe(400);
    expect(rowsOf(state, 300)).toEqual(batch(other));
  });

  it('with the real engine, the features equal a computation from scratch', () => {
    const prefix = sliceSeries(series, 0, 300);
    const state = new FeatureState(featureSet, mirrorOf(series), { engine: featureSet.createEngine(prefix), bars: prefix });
    state.update();
    expect(rowsOf(state, 400)).toEqual(batch(series));
  });

  it('rebuilds from the stored history when it does not begin with the engine’s bars', () => {
    const prefix = sliceSeries(series, 0, 300);
    const stored = sliceSeries(series, 0, 400);
    stored.high[50] = stored.high[50] * 1.01;
    const state = new FeatureState(featureSet, mirrorOf(stored), { engine: featureSet.createEngine(prefix), bars: prefix });
    state.update();
    expect(rowsOf(state, 400)).toEqual(batch(stored));
  });
});
