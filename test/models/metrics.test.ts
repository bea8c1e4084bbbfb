import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ForecastError } from '../../src/errors.js';
import { meanAbsoluteError, meanSquaredError, r2Score, regressionMetrics } from '../../src/models/metrics.js';

interface Case {
  name: string;
  y_true: number[];
  y_pred: number[];
  mae: number;
  mse: number;
  r2: number | null;
}

/** scikit-learn 1.2.1's values, from scripts/make_pickle_fixtures.py. */
const CASES: Case[] = JSON.parse(readFileSync(new URL('../fixtures/pickles/metrics.json', import.meta.url), 'utf8'));

describe('regression metrics against scikit-learn', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s: equal bit for bit', (_n, c) => {
    expect(meanAbsoluteError(c.y_true, c.y_pred)).toBe(c.mae);
    expect(meanSquaredError(c.y_true, c.y_pred)).toBe(c.mse);
    expect(r2Score(c.y_true, c.y_pred)).toBe(c.r2 ?? NaN);
    expect(regressionMetrics(Float64Array.from(c.y_true), Float64Array.from(c.y_pred))).toEqual({
      mae: c.mae,
      mse: c.mse,
      r2: c.r2 ?? NaN,
      rows: c.y_true.length,
    });
  });

  it('r2 when y is constant: 1 for a perfect prediction, 0 otherwise (scikit-learn force_finite)', () => {
    expect(r2Score([2, 2, 2], [2, 2, 2])).toBe(1);
    expect(r2Score([2, 2, 2], [2, 2, 3])).toBe(0);
    expect(CASES.find((c) => c.name === 'constant_perfect')!.r2).toBe(1);
    expect(CASES.find((c) => c.name === 'constant_imperfect')!.r2).toBe(0);
  });

  it('refuses mismatched, empty or non-finite input', () => {
    expect(() => meanSquaredError([1, 2], [1])).toThrow(ForecastError);
    expect(() => meanSquaredError([1, 2], [1])).toThrow('y_true has 2 values, y_pred has 1');
    expect(() => meanAbsoluteError([], [])).toThrow('no values');
    expect(() => r2Score([1, NaN], [1, 2])).toThrow('y_true[1] is NaN');
    expect(() => regressionMetrics([1, 2], [1, Infinity])).toThrow('y_pred[1] is Infinity');
  });
});
