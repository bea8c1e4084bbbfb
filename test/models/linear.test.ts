import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ForecastError } from '../../src/errors.js';
import { LinearRegression, minNormLeastSquares } from '../../src/models/linear.js';
import { createMatrix, type Matrix, matrixFromRows } from '../../src/models/matrix.js';

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
    // Same numerical rank as scikit-learn's gelsd, although our cut-off is max(n, p)·eps·s_max, not eps·s_max.
    const X = matrixFromRows(c.X);
    const y = Float64Array.from(c.y);
    const { Xc, yc } = c.fit_intercept ? centred(X, y) : { Xc: X, yc: y };
    expect(minNormLeastSquares(Xc, yc).rank).toBe(c.rank);
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

  // Speed is measured by `npm run bench linear`, not asserted here.
  it('fits the reference size (5,250 x 171)', () => {
    const { X: Xp, y: yy } = polynomialDesign(5250, 1);
    const m = new LinearRegression().fit(Xp, yy);
    expect(m.state!.coef[0]).toBe(0);
    expect(m.state!.coef[1]).toBeCloseTo(1, 1);
  });

  it('gives an all-constant X zero coefficients and the mean of y as intercept', () => {
    const m = new LinearRegression().fit(matrixFromRows([[3, 1], [3, 1], [3, 1]]), Float64Array.from([1, 2, 6]));
    expect(m.state!.coef).toEqual([0, 0]);
    expect(m.state!.intercept).toBe(3);
    const one = new LinearRegression().fit(matrixFromRows([[1, 2, 3]]), Float64Array.from([5]));
    expect(one.state!.coef).toEqual([0, 0, 0]);
    expect(one.state!.intercept).toBe(5);
  });

  it('is exactly scale-equivariant, with no overflow or underflow at extreme scales', () => {
    const c = CASES.find((x) => x.name === 'polynomial_with_bias_column')!;
    const base = new LinearRegression().fit(matrixFromRows(c.X), Float64Array.from(c.y)).state!;
    for (const e of [600, -600]) {
      // Scaling by a power of two is exact, and so is the solver's own power-of-two normalisation:
      // the coefficients scale exactly, although X's squares overflow (2^1200) or underflow (2^-1200).
      const scaled = new LinearRegression().fit(matrixFromRows(c.X.map((r) => r.map((v) => v * 2 ** e))), Float64Array.from(c.y)).state!;
      expect(scaled.coef).toEqual(base.coef.map((v) => v * 2 ** -e));
      expect(scaled.intercept).toBe(base.intercept);
    }
  });
});

/**
 * The project's design: `[1, z, z_a z_b (a <= b)]` for k = 17 uniform features (171 columns), and a
 * target of a few terms plus noise. `tie` makes feature 16 a copy of feature 15, which duplicates
 * 18 columns exactly (x16 = x15, x_a·x16 = x_a·x15, x16² = x15·x16 = x15²).
 */
function polynomialDesign(n: number, seed: number, tie = false): { X: Matrix; y: Float64Array; names: string[] } {
  const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5;
  const k = 17;
  const names = ['1', ...Array.from({ length: k }, (_, a) => `x${a}`)];
  for (let a = 0; a < k; a++) for (let b = a; b < k; b++) names.push(`x${a} x${b}`);
  const X = createMatrix(n, names.length);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const z = Array.from({ length: k }, rand);
    if (tie) z[16] = z[15];
    const row = [1, ...z];
    for (let a = 0; a < k; a++) for (let b = a; b < k; b++) row.push(z[a] * z[b]);
    X.data.set(row, i * names.length);
    y[i] = z[0] - 2 * z[3] * z[4] + 0.1 * rand();
  }
  return { X, y, names };
}

/** X with each column minus its mean, and y likewise. */
function centred(X: Matrix, y: Float64Array): { Xc: Matrix; yc: Float64Array } {
  const { rows: n, cols: p } = X;
  const Xc = createMatrix(n, p);
  for (let j = 0; j < p; j++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += X.data[i * p + j];
    for (let i = 0; i < n; i++) Xc.data[i * p + j] = X.data[i * p + j] - s / n;
  }
  const ym = y.reduce((a, b) => a + b, 0) / n;
  return { Xc, yc: y.map((v) => v - ym) };
}

/** max_j |X_j' r| / (||X||_F ||y||) for the residual r = y - X b: the normal equations' relative residual. */
function normalEquationsResidual(X: Matrix, y: Float64Array, b: ArrayLike<number>): number {
  const { rows: n, cols: p, data } = X;
  const r = Float64Array.from(y);
  for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) r[i] -= data[i * p + j] * b[j];
  let worst = 0;
  for (let j = 0; j < p; j++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += data[i * p + j] * r[i];
    worst = Math.max(worst, Math.abs(s));
  }
  return worst / (Math.hypot(...data) * Math.hypot(...y));
}

const norm = (b: ArrayLike<number>) => Math.hypot(...Array.from(b));

describe('LinearRegression on rank-deficient problems (minimum-norm least squares)', () => {
  it('fits a wide fold (150 x 171, fewer rows than columns) as the minimum-norm interpolant', () => {
    const { X, y } = polynomialDesign(150, 7);
    const m = new LinearRegression().fit(X, y);
    const coef = m.state!.coef;
    expect(coef[0]).toBe(0);

    // Independent reference: the minimum-norm solution lies in the row space, b = Xc' a, with
    // Xc Xc' a = yc. Xc Xc' is singular (centring: Xc' 1 = 0) but consistent, and adding 1 1' makes
    // it positive definite without changing b. Cholesky of that 150 x 150 Gram matrix.
    const { Xc, yc } = centred(X, y);
    const n = X.rows;
    const p = X.cols;
    const G = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        let s = 1;
        for (let c = 0; c < p; c++) s += Xc.data[i * p + c] * Xc.data[j * p + c];
        G[i * n + j] = s;
      }
    }
    for (let j = 0; j < n; j++) {
      for (let i = j; i < n; i++) {
        let s = G[i * n + j];
        for (let c = 0; c < j; c++) s -= G[i * n + c] * G[j * n + c];
        G[i * n + j] = i === j ? Math.sqrt(s) : s / G[j * n + j];
      }
    }
    const a = Float64Array.from(yc);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < i; c++) a[i] -= G[i * n + c] * a[c];
      a[i] /= G[i * n + i];
    }
    for (let i = n - 1; i >= 0; i--) {
      for (let c = i + 1; c < n; c++) a[i] -= G[c * n + i] * a[c];
      a[i] /= G[i * n + i];
    }
    const ref = new Float64Array(p);
    for (let i = 0; i < n; i++) for (let c = 0; c < p; c++) ref[c] += Xc.data[i * p + c] * a[i];
    const err = maxAbs(coef.map((v, j) => v - ref[j])) / maxAbs(ref);
    expect(err, `coef vs row-space reference: ${err}`).toBeLessThan(1e-9);

    // Centring leaves rank n - 1 = 149 (numerical rank: the 150th singular value is rounding noise,
    // which the max(n, p)·eps·s_max cut-off drops); 149 + intercept interpolate the 150 rows.
    expect(minNormLeastSquares(Xc, yc).rank).toBe(149);
    const fitErr = maxAbs(Array.from(m.predict(X), (v, i) => v - y[i])) / maxAbs(y);
    expect(fitErr, `training residual ${fitErr}`).toBeLessThan(1e-10);
    expect(normalEquationsResidual(Xc, yc, coef)).toBeLessThan(1e-12);
  });

  it('gives exactly duplicated columns equal coefficients: no null-space component (wide fold)', () => {
    const { X, y, names } = polynomialDesign(60, 3, true);
    const coef = new LinearRegression().fit(X, y).state!.coef;
    const { Xc, yc } = centred(X, y);
    expect(normalEquationsResidual(Xc, yc, coef)).toBeLessThan(1e-12);
    const scale = maxAbs(coef);
    const col = (a: number, b: number) => names.indexOf(`x${Math.min(a, b)} x${Math.max(a, b)}`);
    const pairs: [number, number][] = [[names.indexOf('x15'), names.indexOf('x16')]];
    for (let a = 0; a < 15; a++) pairs.push([col(a, 15), col(a, 16)]);
    pairs.push([col(15, 15), col(15, 16)], [col(15, 15), col(16, 16)]);
    expect(pairs.flat().every((j) => j > 0)).toBe(true);
    for (const [i, j] of pairs) {
      // d = e_i - e_j is in X's null space: b + t d fits exactly as well, and its norm
      // ||b||² + 2t(b_i - b_j) + 2t² exceeds ||b||² for every t ≠ 0 only when b_i = b_j.
      expect(Math.abs(coef[i] - coef[j]) / scale, `${names[i]} vs ${names[j]}`).toBeLessThan(1e-12);
      const t = 1e-3 * scale;
      const perturbed = coef.map((v, c) => v + (c === i ? t : c === j ? -t : 0));
      expect(norm(perturbed)).toBeGreaterThan(norm(coef));
      expect(normalEquationsResidual(Xc, yc, perturbed)).toBeLessThan(1e-12);
    }
  });

  it('splits a duplicated column\'s coefficient evenly (tall, 300 x 45 with 5 duplicates)', () => {
    let seed = 11;
    const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5;
    const n = 300;
    const D = createMatrix(n, 40);
    for (let i = 0; i < D.data.length; i++) D.data[i] = rand();
    const y = Float64Array.from({ length: n }, (_, i) => D.data[i * 40] - D.data[i * 40 + 7] + 0.1 * rand());
    const X = createMatrix(n, 45);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < 40; j++) X.data[i * 45 + j] = D.data[i * 40 + j];
      for (let j = 0; j < 5; j++) X.data[i * 45 + 40 + j] = D.data[i * 40 + j];
    }
    const c = new LinearRegression().fit(D, y).state!;
    const b = new LinearRegression().fit(X, y).state!;
    // D has full column rank, so its fit is unique; the minimum-norm fit of X shares each duplicated
    // coefficient equally between the two copies.
    const expected = [...c.coef.map((v, j) => (j < 5 ? v / 2 : v)), ...c.coef.slice(0, 5).map((v) => v / 2)];
    const err = maxAbs(b.coef.map((v, j) => v - expected[j])) / maxAbs(expected);
    expect(err, `coef error ${err}`).toBeLessThan(1e-12);
    expect(Math.abs(b.intercept - c.intercept)).toBeLessThan(1e-12);
    const { Xc, yc } = centred(X, y);
    expect(minNormLeastSquares(Xc, yc).rank).toBe(40);
  });
});
