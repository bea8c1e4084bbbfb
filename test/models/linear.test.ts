import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ForecastError } from '../../src/errors.js';
import { LinearRegression } from '../../src/models/linear.js';
import { createMatrix, matrixFromRows } from '../../src/models/matrix.js';

interface Case {
  name: string;
  fit_intercept: boolean;
  X: number[][];
  y: number[];
  coef: number[];
  intercept: number;
  rank: number;
  predictions: number[];
}

/** scikit-learn 1.2.1's fits, from scripts/make_pickle_fixtures.py. */
const CASES: Case[] = JSON.parse(readFileSync(new URL('../fixtures/pickles/linear_cases.json', import.meta.url), 'utf8'));

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, x) => Math.max(m, Math.abs(x)), 0);

describe('LinearRegression against scikit-learn', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const m = new LinearRegression({ fitIntercept: c.fit_intercept }).fit(matrixFromRows(c.X), Float64Array.from(c.y));
    const s = m.state!;
    // Least squares by another factorisation: equal to ~1e-10 relative, not bit for bit.
    const scale = Math.max(1, maxAbs(c.coef));
    const coefErr = maxAbs(s.coef.map((x, j) => x - c.coef[j])) / scale;
    const interceptErr = Math.abs(s.intercept - c.intercept) / Math.max(1, Math.abs(c.intercept));
    const pred = m.predict(matrixFromRows(c.X));
    const predErr = maxAbs(Array.from(pred, (p, i) => p - c.predictions[i])) / Math.max(1, maxAbs(c.predictions));
    expect(coefErr, `coef error ${coefErr}`).toBeLessThan(1e-10);
    expect(interceptErr, `intercept error ${interceptErr}`).toBeLessThan(1e-10);
    expect(predErr, `prediction error ${predErr}`).toBeLessThan(1e-10);
    if (!c.fit_intercept) expect(s.intercept).toBe(0);
  });

  it('gives the centred-away bias column of a polynomial expansion a zero coefficient, like scikit-learn', () => {
    const c = CASES.find((x) => x.name === 'polynomial_with_bias_column')!;
    expect(c.coef[0]).toBe(0);
    const m = new LinearRegression().fit(matrixFromRows(c.X), Float64Array.from(c.y));
    expect(m.state!.coef[0]).toBe(0);
  });
});

describe('LinearRegression', () => {
  const X = matrixFromRows([
    [1, 2],
    [2, 1],
    [3, 5],
    [4, 3],
  ]);
  const y = Float64Array.from([1 + 2 * 1 - 3 * 2, 1 + 2 * 2 - 3 * 1, 1 + 2 * 3 - 3 * 5, 1 + 2 * 4 - 3 * 3]);

  it('recovers an exact linear relation', () => {
    const m = new LinearRegression().fit(X, y);
    expect(m.state!.coef[0]).toBeCloseTo(2, 12);
    expect(m.state!.coef[1]).toBeCloseTo(-3, 12);
    expect(m.state!.intercept).toBeCloseTo(1, 12);
  });

  it('rebuilds from its state and predicts a row like a matrix', () => {
    const m = new LinearRegression().fit(X, y);
    const back = LinearRegression.fromState(JSON.parse(JSON.stringify(m.state)));
    const pred = back.predict(X);
    for (let i = 0; i < X.rows; i++) expect(back.predictRow(X.data.subarray(i * 2, i * 2 + 2))).toBe(pred[i]);
    expect(Array.from(pred)).toEqual(Array.from(m.predict(X)));
  });

  it('reports bad input clearly', () => {
    expect(() => new LinearRegression().fit(X, Float64Array.from([1, 2]))).toThrow(ForecastError);
    expect(() => new LinearRegression().fit(X, Float64Array.from([1, 2]))).toThrow('X has 4 rows, y has 2');
    expect(() => new LinearRegression().fit(createMatrix(0, 2), new Float64Array(0))).toThrow('no rows');
    const bad = matrixFromRows([[1, NaN], [2, 3]]);
    expect(() => new LinearRegression().fit(bad, Float64Array.from([1, 2]))).toThrow('X[0][1] is NaN');
    expect(() => new LinearRegression().predict(X)).toThrow('not fitted');
    const m = new LinearRegression().fit(X, y);
    expect(() => m.predict(createMatrix(1, 3))).toThrow('expects 2 columns, got 3');
    expect(() => LinearRegression.fromState({ kind: 'linear_regression', nFeatures: 3, coef: [1], intercept: 0 })).toThrow('1 coefficients for 3 features');
  });

  it('fits the reference size (5,250 x 171) quickly', () => {
    let seed = 1;
    const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5;
    const n = 5250;
    const k = 17;
    const p = 1 + k + (k * (k + 1)) / 2;
    const Xp = createMatrix(n, p);
    const yy = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const z = Array.from({ length: k }, rand);
      const row = [1, ...z];
      for (let a = 0; a < k; a++) for (let b = a; b < k; b++) row.push(z[a] * z[b]);
      Xp.data.set(row, i * p);
      yy[i] = z[0] - 2 * z[3] * z[4] + 0.1 * rand();
    }
    const t0 = performance.now();
    const m = new LinearRegression().fit(Xp, yy);
    const ms = performance.now() - t0;
    console.log(`LinearRegression.fit ${n} x ${p}: ${ms.toFixed(0)} ms`);
    expect(m.state!.coef[0]).toBe(0);
    expect(m.state!.coef[1]).toBeCloseTo(1, 1);
    expect(ms).toBeLessThan(20_000);
  });
});
