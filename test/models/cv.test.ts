import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ForecastError } from '../../src/errors.js';
import { TimeSeriesSplit } from '../../src/models/cv.js';

interface Config {
  n_samples: number;
  n_splits: number;
  max_train_size?: number;
  test_size?: number;
  gap?: number;
}

/** scikit-learn 1.2.1's folds, from scripts/make_pickle_fixtures.py. */
const CV: { splits: (Config & { folds: { train: number[]; test: number[] }[] })[]; errors: (Config & { message: string })[] } = JSON.parse(
  readFileSync(new URL('../fixtures/pickles/cv.json', import.meta.url), 'utf8'),
);

const make = (c: Config) => new TimeSeriesSplit({ nSplits: c.n_splits, maxTrainSize: c.max_train_size, testSize: c.test_size, gap: c.gap });
const label = (c: Config) => JSON.stringify({ ...c, folds: undefined, message: undefined });

describe('TimeSeriesSplit', () => {
  it('the reference fold: 7,000 rows, 3 splits, last fold trains on 0..5249 and validates on 5250..6999', () => {
    const folds = new TimeSeriesSplit({ nSplits: 3 }).folds(7000);
    expect(folds).toEqual([
      { train: [0, 1750], test: [1750, 3500] },
      { train: [0, 3500], test: [3500, 5250] },
      { train: [0, 5250], test: [5250, 7000] },
    ]);
  });

  it.each(CV.splits.map((c) => [label(c), c] as const))('matches scikit-learn for %s', (_l, c) => {
    expect(make(c).folds(c.n_samples)).toEqual(c.folds);
  });

  it.each(CV.errors.map((c) => [label(c), c] as const))('refuses %s with scikit-learn’s message', (_l, c) => {
    expect(() => make(c).folds(c.n_samples)).toThrow(ForecastError);
    expect(() => make(c).folds(c.n_samples)).toThrow(c.message);
  });

  it('validates its options', () => {
    expect(() => new TimeSeriesSplit({ nSplits: 1 })).toThrow('nSplits must be an integer >= 2, got 1');
    expect(() => new TimeSeriesSplit({ nSplits: 3, gap: -1 })).toThrow('gap must be an integer >= 0');
    expect(() => new TimeSeriesSplit({ nSplits: 3, testSize: 0 })).toThrow('testSize must be an integer >= 1');
    expect(() => new TimeSeriesSplit({ nSplits: 2.5 })).toThrow(ForecastError);
  });

  it('is lazy and reusable', () => {
    const cv = new TimeSeriesSplit({ nSplits: 2 });
    const it1 = cv.split(9);
    expect(it1.next().value).toEqual({ train: [0, 3], test: [3, 6] });
    expect(cv.folds(9)).toHaveLength(2);
    expect(cv.getNSplits()).toBe(2);
  });
});
