import type { Matrix } from './matrix.js';
import { createMatrix } from './matrix.js';

export interface PolynomialState {
  degree: 2;
  nInputFeatures: number;
  nOutputFeatures: number;
}

/**
 * scikit-learn's PolynomialFeatures(degree=2, include_bias=True): `[1, x0..xk, xi*xj for i <= j]`
 * in lexicographic order, one multiply per product (FEATURES.md §5, §7 "Inputs").
 */
export class PolynomialFeatures {
  state: PolynomialState | null = null;

  constructor(readonly degree: 2 = 2) {
    if (degree !== 2) throw new Error('PolynomialFeatures: only degree 2 is supported');
  }

  static fromState(state: PolynomialState): PolynomialFeatures {
    const p = new PolynomialFeatures(state.degree);
    p.state = state;
    return p;
  }

  static outputCount(k: number): number {
    return 1 + k + (k * (k + 1)) / 2;
  }

  fit(X: Matrix): this {
    this.state = { degree: 2, nInputFeatures: X.cols, nOutputFeatures: PolynomialFeatures.outputCount(X.cols) };
    return this;
  }

  /** The inputs each output column multiplies, in output order: `[]` (the bias), `[i]`, then `[i, j]` for i <= j. */
  outputTerms(): number[][] {
    const k = this.fitted().nInputFeatures;
    const out: number[][] = [[]];
    for (let i = 0; i < k; i++) out.push([i]);
    for (let i = 0; i < k; i++) for (let j = i; j < k; j++) out.push([i, j]);
    return out;
  }

  /** Output column names in scikit-learn's `get_feature_names_out` style (`1`, `x0`, `x0 x1`, `x0^2`). */
  featureNames(inputNames?: readonly string[]): string[] {
    const name = (i: number) => inputNames?.[i] ?? `x${i}`;
    return this.outputTerms().map((t) => (t.length === 0 ? '1' : t.length === 1 ? name(t[0]) : t[0] === t[1] ? `${name(t[0])}^2` : `${name(t[0])} ${name(t[1])}`));
  }

  private fitted(): PolynomialState {
    if (!this.state) throw new Error('PolynomialFeatures is not fitted');
    return this.state;
  }

  /** Expand one row into `out` (length nOutputFeatures): the service's allocation-free path. */
  transformRow(x: ArrayLike<number>, out: Float64Array | Float32Array): void {
    const k = this.fitted().nInputFeatures;
    out[0] = 1;
    for (let i = 0; i < k; i++) out[1 + i] = x[i];
    let o = 1 + k;
    for (let i = 0; i < k; i++) {
      const xi = x[i];
      for (let j = i; j < k; j++) out[o++] = xi * x[j];
    }
  }

  transform(X: Matrix): Matrix {
    const { nInputFeatures: k, nOutputFeatures: m } = this.fitted();
    if (X.cols !== k) throw new Error(`PolynomialFeatures expects ${k} columns, got ${X.cols}`);
    const out = createMatrix(X.rows, m);
    for (let r = 0; r < X.rows; r++) {
      this.transformRow(X.data.subarray(r * k, (r + 1) * k), out.data.subarray(r * m, (r + 1) * m));
    }
    return out;
  }
}
