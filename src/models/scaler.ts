import type { Matrix } from './matrix.js';
import { createMatrix } from './matrix.js';
import { pairwiseSum } from './pairwise-sum.js';

/** Fitted state of a StandardScaler: a plain JSON-able record (scikit-learn's `mean_`, `var_`, `scale_`). */
export interface ScalerState {
  mean: number[];
  variance: number[];
  scale: number[];
  nSamplesSeen: number;
}

/**
 * scikit-learn's StandardScaler (with_mean, with_std): population variance (ddof 0), columns
 * summed with numpy's pairwise summation so that the fitted state equals scikit-learn's bit for bit
 * (FEATURES.md §3b.5).
 */
export class StandardScaler {
  state: ScalerState | null = null;

  static fromState(state: ScalerState): StandardScaler {
    const s = new StandardScaler();
    s.state = state;
    return s;
  }

  fit(X: Matrix): this {
    const { rows: n, cols } = X;
    if (n === 0) throw new Error('StandardScaler.fit: no rows');
    const mean = new Array<number>(cols);
    const variance = new Array<number>(cols);
    const scale = new Array<number>(cols);
    const d = X.data;
    for (let j = 0; j < cols; j++) {
      const m = pairwiseSum((i) => d[i * cols + j], 0, n) / n;
      const v =
        pairwiseSum(
          (i) => {
            const c = d[i * cols + j] - m;
            return c * c;
          },
          0,
          n,
        ) / n;
      mean[j] = m;
      variance[j] = v;
      // scikit-learn leaves constant columns unscaled rather than dividing by zero.
      scale[j] = v === 0 ? 1 : Math.sqrt(v);
    }
    this.state = { mean, variance, scale, nSamplesSeen: n };
    return this;
  }

  private fitted(): ScalerState {
    if (!this.state) throw new Error('StandardScaler is not fitted');
    return this.state;
  }

  transform(X: Matrix): Matrix {
    const { mean, scale } = this.fitted();
    if (X.cols !== mean.length) throw new Error(`StandardScaler expects ${mean.length} columns, got ${X.cols}`);
    const out = createMatrix(X.rows, X.cols);
    const cols = X.cols;
    for (let i = 0; i < X.rows; i++) {
      const o = i * cols;
      for (let j = 0; j < cols; j++) out.data[o + j] = (X.data[o + j] - mean[j]) / scale[j];
    }
    return out;
  }

  /** Scale one feature row in place (the service's hot path: no allocation). */
  transformRowInPlace(row: Float64Array): Float64Array {
    const { mean, scale } = this.fitted();
    for (let j = 0; j < row.length; j++) row[j] = (row[j] - mean[j]) / scale[j];
    return row;
  }
}
