import { ForecastError } from '../errors.js';
import type { Matrix } from './matrix.js';
import { pairwiseSum } from './pairwise-sum.js';
import type { LinearState, Regressor } from './types.js';

export interface LinearRegressionOptions {
  /** Fit an intercept by centring X and y first, like scikit-learn (default true). */
  fitIntercept?: boolean;
}

const EPS = 2.220446049250313e-16;

/**
 * Ordinary least squares with an intercept, like scikit-learn's `LinearRegression`: X and y are
 * centred on their means, the centred problem is solved for the minimum-norm least-squares
 * coefficients, and `intercept = mean(y) - mean(X) · coef`.
 *
 * scikit-learn calls LAPACK `gelsd` (SVD, singular values below `eps * s_max` treated as zero).
 * Here: Householder QR of the centred X (backward stable; never forms X'X, whose condition number
 * is the square of X's), then a one-sided Jacobi SVD of the small p×p factor R, then the same
 * `eps * s_max` cut-off and minimum-norm solution. Rank deficiency is the normal case in this
 * project, not an edge case: the degree-2 expansion's constant `1` column is all zeros once centred,
 * and scikit-learn gives it coefficient 0, which the minimum-norm solution reproduces.
 *
 * Hand-written rather than an npm linear-algebra package because the problem is small (at most a
 * few hundred columns, thousands of rows: well under a second), the code is ~100 lines, and it
 * keeps the numerics under our control with no native or WASM dependency in the service image.
 * Coefficients agree with scikit-learn to ~1e-10 relative on well-conditioned data; least squares
 * solved by different factorisations is not expected to agree bit for bit.
 */
export class LinearRegression implements Regressor<LinearState> {
  state: LinearState | null = null;
  readonly fitIntercept: boolean;

  constructor(options: LinearRegressionOptions = {}) {
    this.fitIntercept = options.fitIntercept ?? true;
  }

  static fromState(state: LinearState): LinearRegression {
    if (state.coef.length !== state.nFeatures) {
      throw new ForecastError(`linear model state has ${state.coef.length} coefficients for ${state.nFeatures} features`, 422, 'invalid_model');
    }
    const m = new LinearRegression();
    m.state = state;
    return m;
  }

  fit(X: Matrix, y: Float64Array): this {
    const n = X.rows;
    const p = X.cols;
    if (n === 0) throw new ForecastError('LinearRegression.fit: no rows', 422, 'invalid_data');
    if (y.length !== n) throw new ForecastError(`LinearRegression.fit: X has ${n} rows, y has ${y.length}`, 422, 'invalid_data');
    const d = X.data;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i])) {
        throw new ForecastError(`LinearRegression.fit: X[${Math.floor(i / p)}][${i % p}] is ${d[i]}`, 422, 'invalid_data');
      }
    }
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(y[i])) throw new ForecastError(`LinearRegression.fit: y[${i}] is ${y[i]}`, 422, 'invalid_data');
    }

    const xMean = new Float64Array(p);
    let yMean = 0;
    if (this.fitIntercept) {
      for (let j = 0; j < p; j++) xMean[j] = pairwiseSum((i) => d[i * p + j], 0, n) / n;
      yMean = pairwiseSum((i) => y[i], 0, n) / n;
    }
    // Column-major copy of the centred X: Householder works a column at a time.
    const A: Float64Array[] = [];
    for (let j = 0; j < p; j++) {
      const col = new Float64Array(n);
      for (let i = 0; i < n; i++) col[i] = d[i * p + j] - xMean[j];
      A.push(col);
    }
    const b = new Float64Array(n);
    for (let i = 0; i < n; i++) b[i] = y[i] - yMean;

    const coef = solveMinNormLeastSquares(A, b, n, p);
    let dot = 0;
    for (let j = 0; j < p; j++) dot += xMean[j] * coef[j];
    this.state = {
      kind: 'linear_regression',
      nFeatures: p,
      coef: Array.from(coef),
      intercept: this.fitIntercept ? yMean - dot : 0,
    };
    return this;
  }

  private fitted(): LinearState {
    if (!this.state) throw new Error('LinearRegression is not fitted');
    return this.state;
  }

  predictRow(x: ArrayLike<number>): number {
    const { coef, intercept } = this.fitted();
    let s = 0;
    for (let j = 0; j < coef.length; j++) s += x[j] * coef[j];
    return s + intercept;
  }

  predict(X: Matrix): Float64Array {
    const { nFeatures } = this.fitted();
    if (X.cols !== nFeatures) throw new ForecastError(`LinearRegression expects ${nFeatures} columns, got ${X.cols}`, 422, 'invalid_data');
    const out = new Float64Array(X.rows);
    for (let i = 0; i < X.rows; i++) out[i] = this.predictRow(X.data.subarray(i * X.cols, (i + 1) * X.cols));
    return out;
  }
}

/**
 * Minimum-norm `argmin ||A x - b||` for A given as `p` columns of length `n` (overwritten, as is
 * `b`). Singular values `<= eps * s_max` count as zero, like LAPACK gelsd with scipy's default.
 */
export function solveMinNormLeastSquares(A: Float64Array[], b: Float64Array, n: number, p: number): Float64Array {
  // 1. Householder QR: A = Q R; keep R (upper trapezoidal, first m rows) and c = (Q' b)[0..m).
  const m = Math.min(n, p);
  for (let k = 0; k < m; k++) {
    const a = A[k];
    let norm2 = 0;
    for (let i = k; i < n; i++) norm2 += a[i] * a[i];
    if (norm2 === 0) continue;
    const norm = Math.sqrt(norm2);
    const alpha = a[k] > 0 ? -norm : norm;
    // v = a[k..n) - alpha e_k, stored in place; H = I - 2 v v' / (v'v). alpha has the sign opposite
    // to a_k, so v_k = a_k - alpha never cancels and v'v = 2 norm (norm + |a_k|) exactly.
    const vtv = 2 * norm * (norm + Math.abs(a[k]));
    a[k] -= alpha;
    const reflect = (col: Float64Array) => {
      let s = 0;
      for (let i = k; i < n; i++) s += a[i] * col[i];
      const f = (2 * s) / vtv;
      if (f === 0) return;
      for (let i = k; i < n; i++) col[i] -= f * a[i];
    };
    for (let j = k + 1; j < p; j++) reflect(A[j]);
    reflect(b);
    a[k] = alpha;
    for (let i = k + 1; i < n; i++) a[i] = 0;
  }

  // 2. One-sided Jacobi SVD of R (m x p): rotate column pairs until all are orthogonal. Then
  //    R V = U S with the columns of R V being s_i u_i.
  const R: Float64Array[] = A.map((col) => col.slice(0, m));
  const V: Float64Array[] = [];
  for (let j = 0; j < p; j++) {
    const v = new Float64Array(p);
    v[j] = 1;
    V.push(v);
  }
  const tol = EPS * m;
  for (let sweep = 0; sweep < 100; sweep++) {
    let rotated = false;
    for (let i = 0; i < p - 1; i++) {
      for (let j = i + 1; j < p; j++) {
        const ci = R[i];
        const cj = R[j];
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let r = 0; r < m; r++) {
          alpha += ci[r] * ci[r];
          beta += cj[r] * cj[r];
          gamma += ci[r] * cj[r];
        }
        if (gamma === 0 || Math.abs(gamma) <= tol * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let r = 0; r < m; r++) {
          const x = ci[r];
          const y = cj[r];
          ci[r] = c * x - s * y;
          cj[r] = s * x + c * y;
        }
        const vi = V[i];
        const vj = V[j];
        for (let r = 0; r < p; r++) {
          const x = vi[r];
          const y = vj[r];
          vi[r] = c * x - s * y;
          vj[r] = s * x + c * y;
        }
      }
    }
    if (!rotated) break;
  }

  // 3. x = sum over kept singular triplets of v_i (u_i' c) / s_i = v_i (w_i' c) / s_i^2, w_i = s_i u_i.
  const sigma = R.map((col) => Math.hypot(...col));
  const sMax = sigma.reduce((a, s) => Math.max(a, s), 0);
  const x = new Float64Array(p);
  if (sMax === 0) return x;
  const cut = EPS * sMax;
  for (let i = 0; i < p; i++) {
    const s = sigma[i];
    if (!(s > cut)) continue;
    let wc = 0;
    for (let r = 0; r < m; r++) wc += R[i][r] * b[r];
    const f = wc / (s * s);
    const vi = V[i];
    for (let r = 0; r < p; r++) x[r] += f * vi[r];
  }
  return x;
}
