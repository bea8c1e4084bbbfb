import { ForecastError } from '../errors.js';
import type { Matrix } from './matrix.js';
import { pairwiseSum } from './pairwise-sum.js';
import type { LinearState, Regressor } from './types.js';

export interface LinearRegressionOptions {
  /** Fit an intercept by centring X and y first, like scikit-learn (default true). */
  fitIntercept?: boolean;
}

const EPS = 2.220446049250313e-16;
/** Below this an off-diagonal or diagonal entry of the bidiagonal is zero whatever its neighbours (LINPACK's 2^-966). */
const TINY = 2 ** -966;
/** Implicit QR steps allowed per singular value before giving up (LINPACK allows 30; it takes ~2). */
const MAX_QR_STEPS_PER_VALUE = 75;

/**
 * Ordinary least squares with an intercept, like scikit-learn's `LinearRegression`: X and y are
 * centred on their means, the centred problem is solved for the minimum-norm least-squares
 * coefficients, and `intercept = mean(y) - mean(X) · coef`. Rank deficiency is the normal case in
 * this project, not an edge case: the degree-2 expansion's constant `1` column is all zeros once
 * centred (scikit-learn gives it coefficient 0, and so do we: an all-zero column is left out of the
 * solve, which is exact for the minimum-norm solution), and cross-validation folds can have fewer
 * rows than the 171 columns. See {@link minNormLeastSquares} for the numerics.
 *
 * Hand-written rather than an npm linear-algebra package because the problem is small (at most a
 * few hundred columns, thousands of rows), the code is short, and it keeps the numerics under our
 * control with no native or WASM dependency in the service image. Coefficients agree with
 * scikit-learn to ~1e-10 relative on well-conditioned data; least squares solved by different
 * factorisations is not expected to agree bit for bit.
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

    // Column-major copy: means, centring and the Householder QR all run down columns.
    const cols = new Float64Array(n * p);
    for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) cols[j * n + i] = d[i * p + j];
    const xMean = new Float64Array(p);
    let yMean = 0;
    if (this.fitIntercept) {
      for (let j = 0; j < p; j++) xMean[j] = pairwiseSum((i) => cols[j * n + i], 0, n) / n;
      yMean = pairwiseSum((i) => y[i], 0, n) / n;
    }
    // Columns that are exactly zero once centred get coefficient exactly 0 and stay out of the solve:
    // the minimum-norm solution lies in the row space, which has no component along them.
    const active: number[] = [];
    for (let j = 0; j < p; j++) {
      const o = j * n;
      const dest = active.length * n;
      let zero = true;
      for (let i = 0; i < n; i++) {
        const v = cols[o + i] - xMean[j];
        cols[dest + i] = v;
        if (v !== 0) zero = false;
      }
      if (!zero) active.push(j);
    }
    const q = active.length;
    const b = new Float64Array(n);
    for (let i = 0; i < n; i++) b[i] = y[i] - yMean;

    const coef = new Float64Array(p);
    if (q > 0) {
      const { x } = solveColumns(cols, n, q, b);
      for (let a = 0; a < q; a++) coef[active[a]] = x[a];
    }
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

export interface LeastSquaresSolution {
  /** The minimum-norm least-squares solution. */
  x: Float64Array;
  /** Number of singular values above `tolerance`. */
  rank: number;
  /** Singular values of A, largest first. */
  singularValues: Float64Array;
  /** Singular values at or below this count as zero: `max(n, p) * eps * s_max`. */
  tolerance: number;
}

/**
 * Minimum-norm `argmin ||A x - b||` for a dense n×p `A` (neither argument is modified), the way
 * LAPACK's SVD least-squares drivers do it:
 *
 * 1. Reduce to a square k×k problem, k = min(n, p), by Householder QR of the tall one of A and A'
 *    (backward stable; never forms A'A, whose condition number is the square of A's).
 *    n >= p: A = Q R, so solve R x = (Q'b)[0..k).  n < p: A' = Q R, so A = R'Q' and x = Q [w; 0]
 *    with w the minimum-norm solution of R' w = b (any x component outside range(Q) is in A's null
 *    space and only adds norm). Wide cross-validation folds thus cost a k×k SVD with k = rows.
 * 2. SVD of that k×k matrix M by Golub-Kahan bidiagonalisation and implicit-shift QR on the
 *    bidiagonal (Golub-Reinsch, as in LINPACK dsvdc / LAPACK dgesvd): V is accumulated, the left
 *    transformations are applied straight to the right-hand side, then `w = V S⁺ U'c`.
 *
 * Why Golub-Kahan rather than the one-sided Jacobi this replaced: its work is bounded, O(k³) with
 * about two QR steps per singular value whatever the spectrum, and (near-)zero singular values are
 * the fast case: they deflate at once (LINPACK's "negligible s(k)" split) instead of being rotated
 * sweep after sweep. Jacobi's convergence test is relative to the two columns' own norms, so pairs
 * of null-space columns made of rounding noise never "converge", and it ran to its 100-sweep cap
 * at O(p³) a sweep (~9 s for an 88 × 171 fold).
 *
 * Rank: singular values `<= max(n, p) * eps * s_max` count as zero — the usual numerical-rank
 * tolerance (numpy `matrix_rank` and `lstsq`'s default since 1.14, MATLAB `rank`/`pinv`), which
 * sits above the rounding error of the factorisation. scikit-learn (scipy `lstsq`, LAPACK gelsd)
 * cuts at `eps * s_max`, which is exactly the rounding level: for an exactly rank-deficient X — every
 * wide fold is, centring removes one dimension — whether a rounding-sized singular value lands above
 * or below it is a coin toss, and when kept it puts `(u'b)/s`, up to ~1e15 × |b|, into the
 * coefficients. (scikit-learn 1.2.1 with Debian's LAPACK keeps them on the folds of `train()` on
 * 600 synthetic bars: gelsd reports the zero singular value as 2e-16 to 6e-16 × s_max, and on the
 * 176- and 264-row folds returns 1e10 to 1e12 for the centred-away bias column's coefficient,
 * offset by the intercept; coefficients of the 88-row fold differ by a few % from the minimum norm.) The two
 * rules differ only for singular values within a factor max(n, p) of rounding, i.e. directions
 * whose least-squares coefficients are enormous and have few or no correct digits; on every
 * scikit-learn fixture and on the MSFT folds both give the same rank.
 */
export function minNormLeastSquares(A: Matrix, b: Float64Array): LeastSquaresSolution {
  const { rows: n, cols: p, data } = A;
  if (b.length !== n) throw new Error(`minNormLeastSquares: A has ${n} rows, b has ${b.length}`);
  const cols = new Float64Array(n * p);
  for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) cols[j * n + i] = data[i * p + j];
  return solveColumns(cols, n, p, b.slice());
}

/** {@link minNormLeastSquares} for A given column-major in `C[0 .. n·p)`. Overwrites C and b. */
function solveColumns(C: Float64Array, n: number, p: number, b: Float64Array): LeastSquaresSolution {
  const tall = n >= p;
  const N = tall ? n : p;
  const k = tall ? p : n;
  const x = new Float64Array(p);
  const empty = { x, rank: 0, singularValues: new Float64Array(k), tolerance: 0 };
  if (k === 0) return empty;

  // T: the tall one of A, A', as k columns of length N, column-major. A itself when tall.
  let T = C;
  if (!tall) {
    T = new Float64Array(N * k);
    for (let j = 0; j < p; j++) for (let i = 0; i < n; i++) T[i * N + j] = C[j * n + i];
  }
  // Scale A and b by powers of two so their largest entries are in [1, 2): exact (no rounding), and
  // sums of squares can neither overflow nor underflow.
  const aScale = powerOfTwoScale(T, N * k);
  if (aScale === 0) return empty;
  const bScale = powerOfTwoScale(b, n) || 1;
  for (let i = 0; i < N * k; i++) T[i] *= aScale;
  const rhs = b;
  for (let i = 0; i < n; i++) rhs[i] *= bScale;

  // 1. Householder QR of T: column j keeps R's entries above the diagonal and the Householder vector
  //    from the diagonal down; rDiag holds R's diagonal, half[j] = v'v / 2 (0: no reflection).
  const rDiag = new Float64Array(k);
  const half = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    const o = j * N;
    if (j === N - 1) {
      rDiag[j] = T[o + j];
      continue;
    }
    const h = householder(T, o + j, o + N, 1);
    if (h === 0) continue;
    rDiag[j] = beta[0];
    reflectSegments(T, o + j, N - j, T, o + N + j, N, k - 1 - j, h);
    if (tall) reflectSegments(T, o + j, N - j, rhs, j, 0, 1, h);
    half[j] = h;
  }

  // M = R (tall) or R' (wide), row-major k×k; c its right-hand side.
  const M = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    M[i * k + i] = rDiag[i];
    for (let j = i + 1; j < k; j++) {
      if (tall) M[i * k + j] = T[j * N + i];
      else M[j * k + i] = T[j * N + i];
    }
  }
  const c = rhs.slice(0, k);

  // 2. SVD: M = U S V'; c becomes U'c; V column-major.
  const { s, V } = svdSquare(M, k, c);
  let sMax = 0;
  for (let i = 0; i < k; i++) sMax = Math.max(sMax, s[i]);
  const tolerance = Math.max(n, p) * EPS * sMax;
  const w = new Float64Array(k);
  let rank = 0;
  for (let i = 0; i < k; i++) {
    if (!(s[i] > tolerance)) continue;
    rank++;
    const f = c[i] / s[i];
    const o = i * k;
    for (let r = 0; r < k; r++) w[r] += f * V[o + r];
  }

  // x = w (tall), or Q [w; 0] (wide); then undo the scaling.
  if (tall) {
    x.set(w);
  } else {
    const z = new Float64Array(N);
    z.set(w);
    for (let j = k - 1; j >= 0; j--) if (half[j] !== 0) reflectSegments(T, j * N + j, N - j, z, j, 0, 1, half[j]);
    x.set(z);
  }
  const unscale = aScale / bScale;
  for (let j = 0; j < p; j++) x[j] *= unscale;
  const singularValues = Float64Array.from(s, (v) => v / aScale).sort().reverse();
  return { x, rank, singularValues, tolerance: tolerance / aScale };
}

/** 2^-e with 2^e <= max |v[0..len)| < 2^(e+1); 0 when those are all zeros. */
function powerOfTwoScale(v: Float64Array, len: number): number {
  let m = 0;
  for (let i = 0; i < len; i++) m = Math.max(m, Math.abs(v[i]));
  if (m === 0) return 0;
  const e = Math.min(1023, Math.max(-1022, Math.floor(Math.log2(m))));
  return 2 ** -e;
}

/** Out-parameter of {@link householder}: the value the reflected vector becomes, ±||a|| e_0. */
const beta = new Float64Array(1);

/**
 * Householder reflection H = I - v v' / h mapping a = a[from..to) (stride apart) to beta e_0: stores
 * v in place of a (only v[0] = a0 - beta differs from a), beta in `beta[0]`, and returns h = v'v/2,
 * or 0 (a untouched, no reflection) when a is zero. beta = -sign(a0)·||a||, opposite in sign to a0,
 * so v[0] never cancels, and v'v = 2 ||a|| (||a|| + |a0|).
 */
function householder(a: Float64Array, from: number, to: number, stride: number): number {
  let norm2 = 0;
  for (let i = from; i < to; i += stride) norm2 += a[i] * a[i];
  if (norm2 === 0) return 0;
  const norm = Math.sqrt(norm2);
  const a0 = a[from];
  beta[0] = a0 > 0 ? -norm : norm;
  a[from] = a0 - beta[0];
  return norm * (norm + Math.abs(a0));
}

/**
 * Applies H = I - v v' / h, v = v[vFrom..vFrom+len), to `count` vectors y[yFrom + t·step ..][0..len).
 * Eight at a time, sharing the loads of v and running eight independent sums: the Householder QR
 * of a 5,250 × 171 matrix spends nearly all its time here, and this is about twice as fast as one
 * vector at a time. Each vector's dot product is still a plain left-to-right sum.
 */
function reflectSegments(v: Float64Array, vFrom: number, len: number, y: Float64Array, yFrom: number, step: number, count: number, h: number): void {
  let t = 0;
  for (; t + 7 < count; t += 8) {
    const y0 = yFrom + t * step;
    const y1 = y0 + step;
    const y2 = y1 + step;
    const y3 = y2 + step;
    const y4 = y3 + step;
    const y5 = y4 + step;
    const y6 = y5 + step;
    const y7 = y6 + step;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let s4 = 0;
    let s5 = 0;
    let s6 = 0;
    let s7 = 0;
    for (let i = 0; i < len; i++) {
      const vi = v[vFrom + i];
      s0 += vi * y[y0 + i];
      s1 += vi * y[y1 + i];
      s2 += vi * y[y2 + i];
      s3 += vi * y[y3 + i];
      s4 += vi * y[y4 + i];
      s5 += vi * y[y5 + i];
      s6 += vi * y[y6 + i];
      s7 += vi * y[y7 + i];
    }
    s0 /= h;
    s1 /= h;
    s2 /= h;
    s3 /= h;
    s4 /= h;
    s5 /= h;
    s6 /= h;
    s7 /= h;
    for (let i = 0; i < len; i++) {
      const vi = v[vFrom + i];
      y[y0 + i] -= s0 * vi;
      y[y1 + i] -= s1 * vi;
      y[y2 + i] -= s2 * vi;
      y[y3 + i] -= s3 * vi;
      y[y4 + i] -= s4 * vi;
      y[y5 + i] -= s5 * vi;
      y[y6 + i] -= s6 * vi;
      y[y7 + i] -= s7 * vi;
    }
  }
  for (; t + 1 < count; t += 2) {
    const y0 = yFrom + t * step;
    const y1 = y0 + step;
    let s0 = 0;
    let s1 = 0;
    for (let i = 0; i < len; i++) {
      const vi = v[vFrom + i];
      s0 += vi * y[y0 + i];
      s1 += vi * y[y1 + i];
    }
    s0 /= h;
    s1 /= h;
    for (let i = 0; i < len; i++) {
      const vi = v[vFrom + i];
      y[y0 + i] -= s0 * vi;
      y[y1 + i] -= s1 * vi;
    }
  }
  if (t < count) {
    const y0 = yFrom + t * step;
    let s0 = 0;
    for (let i = 0; i < len; i++) s0 += v[vFrom + i] * y[y0 + i];
    if (s0 === 0) return;
    s0 /= h;
    for (let i = 0; i < len; i++) y[y0 + i] -= s0 * v[vFrom + i];
  }
}

/**
 * SVD of the k×k row-major M (overwritten) by Golub-Kahan-Reinsch, after LINPACK dsvdc: returns
 * the singular values `s` (unsorted, >= 0) and V (column-major, column i pairs with s[i]), and
 * replaces `c` with U'c. U itself is never formed: every left transformation is applied to c.
 */
function svdSquare(M: Float64Array, k: number, c: Float64Array): { s: Float64Array; V: Float64Array } {
  const s = new Float64Array(k);
  const e = new Float64Array(k);
  const rightHalf = new Float64Array(k);
  const v = new Float64Array(k);
  const w = new Float64Array(k);

  // Bidiagonalisation M = U B V': s on B's diagonal, e above it. Left reflections zero column j
  // below the diagonal; right reflections zero row j right of the superdiagonal (their vectors stay
  // in row j, to build V afterwards).
  for (let j = 0; j < k; j++) {
    const d = j * k + j;
    if (j < k - 1) {
      const h = householder(M, d, k * k, k);
      if (h !== 0) {
        s[j] = beta[0];
        const len = k - j;
        for (let i = 0; i < len; i++) v[i] = M[d + i * k];
        leftRankOne(M, k, j, len, v, w, c, h);
      } else {
        s[j] = 0;
      }
    } else {
      s[j] = M[d];
    }
    if (j < k - 2) {
      const from = d + 1;
      const to = (j + 1) * k;
      const h = householder(M, from, to, 1);
      if (h !== 0) {
        e[j] = beta[0];
        reflectSegments(M, from, to - from, M, from + k, k, k - 1 - j, h);
        rightHalf[j] = h;
      } else {
        e[j] = 0;
      }
    } else if (j === k - 2) {
      e[j] = M[d + 1];
    }
  }

  // V = P_0 P_1 ... P_{k-3}, built from the right: only columns j+1.. of P_j are not the identity.
  const V = new Float64Array(k * k);
  for (let i = 0; i < k; i++) V[i * k + i] = 1;
  for (let j = k - 3; j >= 0; j--) {
    if (rightHalf[j] === 0) continue;
    reflectSegments(M, j * k + j + 1, k - 1 - j, V, (j + 1) * k + j + 1, k, k - 1 - j, rightHalf[j]);
  }

  // Implicit-shift QR on the bidiagonal (s, e), deflating from the bottom. Left rotations act on c
  // (as U'c), right ones on V's columns.
  const rotateC = (a: number, b: number, cs: number, sn: number) => {
    const ca = c[a];
    const cb = c[b];
    c[a] = cs * ca + sn * cb;
    c[b] = -sn * ca + cs * cb;
  };
  let end = k; // active block ends at end - 1
  let steps = 0;
  const maxSteps = MAX_QR_STEPS_PER_VALUE * k;
  while (end > 0) {
    // Largest lo < end - 1 with e[lo] negligible (-1 if none): the unreduced block is lo+1 .. end-1.
    let lo = end - 2;
    for (; lo >= 0; lo--) {
      if (Math.abs(e[lo]) <= TINY + EPS * (Math.abs(s[lo]) + Math.abs(s[lo + 1]))) {
        e[lo] = 0;
        break;
      }
    }
    if (lo === end - 2) {
      // s[end-1] has converged.
      const last = end - 1;
      if (s[last] < 0) {
        s[last] = -s[last];
        for (let r = 0; r < k; r++) V[last * k + r] = -V[last * k + r];
      }
      end--;
      continue;
    }
    // A negligible diagonal entry in the block?
    let zs = end - 1;
    for (; zs > lo; zs--) {
      const t = (zs !== end - 1 ? Math.abs(e[zs]) : 0) + (zs !== lo + 1 ? Math.abs(e[zs - 1]) : 0);
      if (Math.abs(s[zs]) <= TINY + EPS * t) {
        s[zs] = 0;
        break;
      }
    }
    if (zs === end - 1) {
      // s[end-1] is zero: chase e[end-2] up and out of the column with right rotations.
      const start = lo + 1;
      let f = e[end - 2];
      e[end - 2] = 0;
      for (let j = end - 2; j >= start; j--) {
        const t = Math.hypot(s[j], f);
        const cs = s[j] / t;
        const sn = f / t;
        s[j] = t;
        if (j !== start) {
          f = -sn * e[j - 1];
          e[j - 1] = cs * e[j - 1];
        }
        rotateColumns(V, k, j, end - 1, cs, sn);
      }
    } else if (zs > lo) {
      // s[zs] is zero: split there, chasing e[zs] along the row with left rotations.
      let f = e[zs];
      e[zs] = 0;
      for (let j = zs + 1; j < end; j++) {
        const t = Math.hypot(s[j], f);
        const cs = s[j] / t;
        const sn = f / t;
        s[j] = t;
        f = -sn * e[j];
        e[j] = cs * e[j];
        rotateC(j, zs, cs, sn);
      }
    } else {
      // One implicit QR step on the block lo+1 .. end-1, shift from its trailing 2×2.
      if (++steps > maxSteps) {
        throw new ForecastError('LinearRegression.fit: the SVD did not converge', 422, 'invalid_data');
      }
      const start = lo + 1;
      const scale = Math.max(Math.abs(s[end - 1]), Math.abs(s[end - 2]), Math.abs(e[end - 2]), Math.abs(s[start]), Math.abs(e[start]));
      const sp = s[end - 1] / scale;
      const spm1 = s[end - 2] / scale;
      const epm1 = e[end - 2] / scale;
      const sk = s[start] / scale;
      const ek = e[start] / scale;
      const bb = ((spm1 + sp) * (spm1 - sp) + epm1 * epm1) / 2;
      const cc = sp * epm1 * (sp * epm1);
      let shift = 0;
      if (bb !== 0 || cc !== 0) {
        shift = Math.sqrt(bb * bb + cc);
        if (bb < 0) shift = -shift;
        shift = cc / (bb + shift);
      }
      let f = (sk + sp) * (sk - sp) + shift;
      let g = sk * ek;
      for (let j = start; j < end - 1; j++) {
        let t = Math.hypot(f, g);
        let cs = f / t;
        let sn = g / t;
        if (j !== start) e[j - 1] = t;
        f = cs * s[j] + sn * e[j];
        e[j] = cs * e[j] - sn * s[j];
        g = sn * s[j + 1];
        s[j + 1] = cs * s[j + 1];
        rotateColumns(V, k, j, j + 1, cs, sn);
        t = Math.hypot(f, g);
        cs = f / t;
        sn = g / t;
        s[j] = t;
        f = cs * e[j] + sn * s[j + 1];
        s[j + 1] = -sn * e[j] + cs * s[j + 1];
        g = sn * e[j + 1];
        e[j + 1] = cs * e[j + 1];
        rotateC(j, j + 1, cs, sn);
      }
      e[end - 2] = f;
    }
  }
  return { s, V };
}

/** Columns a and b (length k, column-major) of V ← (cs·a + sn·b, -sn·a + cs·b). */
function rotateColumns(V: Float64Array, k: number, a: number, b: number, cs: number, sn: number): void {
  const oa = a * k;
  const ob = b * k;
  for (let r = 0; r < k; r++) {
    const va = V[oa + r];
    const vb = V[ob + r];
    V[oa + r] = cs * va + sn * vb;
    V[ob + r] = -sn * va + cs * vb;
  }
}

/**
 * M[j.., j+1..] ← H M[j.., j+1..] and c[j..] ← H c[j..] for H = I - v v'/h, v = v[0..len): row
 * oriented (M is row-major), four rows at a time: w' = v'M, then M[i, ..] -= v_i w'/h.
 */
function leftRankOne(M: Float64Array, k: number, j: number, len: number, v: Float64Array, w: Float64Array, c: Float64Array, h: number): void {
  const c0 = j + 1;
  w.fill(0, c0);
  let vc = 0;
  let i = 0;
  for (; i + 3 < len; i += 4) {
    const r0 = (j + i) * k;
    const r1 = r0 + k;
    const r2 = r1 + k;
    const r3 = r2 + k;
    const v0 = v[i];
    const v1 = v[i + 1];
    const v2 = v[i + 2];
    const v3 = v[i + 3];
    for (let col = c0; col < k; col++) w[col] += v0 * M[r0 + col] + v1 * M[r1 + col] + v2 * M[r2 + col] + v3 * M[r3 + col];
  }
  for (; i < len; i++) {
    const r0 = (j + i) * k;
    const v0 = v[i];
    for (let col = c0; col < k; col++) w[col] += v0 * M[r0 + col];
  }
  for (let t = 0; t < len; t++) vc += v[t] * c[j + t];
  for (let col = c0; col < k; col++) w[col] /= h;
  vc /= h;
  i = 0;
  for (; i + 3 < len; i += 4) {
    const r0 = (j + i) * k;
    const r1 = r0 + k;
    const r2 = r1 + k;
    const r3 = r2 + k;
    const v0 = v[i];
    const v1 = v[i + 1];
    const v2 = v[i + 2];
    const v3 = v[i + 3];
    for (let col = c0; col < k; col++) {
      const wc = w[col];
      M[r0 + col] -= v0 * wc;
      M[r1 + col] -= v1 * wc;
      M[r2 + col] -= v2 * wc;
      M[r3 + col] -= v3 * wc;
    }
  }
  for (; i < len; i++) {
    const r0 = (j + i) * k;
    const v0 = v[i];
    for (let col = c0; col < k; col++) M[r0 + col] -= v0 * w[col];
  }
  for (let t = 0; t < len; t++) c[j + t] -= v[t] * vc;
}
