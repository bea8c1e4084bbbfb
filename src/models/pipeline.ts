import { parseLegacyFloat } from '../data/legacy-float.js';
import type { FeatureSet } from '../features/types.js';
import type { Matrix } from './matrix.js';
import { createMatrix } from './matrix.js';
import type { PolynomialFeatures } from './polynomial.js';
import type { StandardScaler } from './scaler.js';
import type { Estimator } from './estimator.js';

/**
 * The pipeline from one bar's raw features to a forecast: scaler, (round trip), expansion, model.
 * Declared here, beside its implementation, so that the bundle stage (which stores pipelines) builds
 * on the models stage and never the other way round.
 */
export interface ForecastPipeline {
  readonly featureSet: FeatureSet;
  /** Forecast of the next bar's return from one raw feature row (all finite). */
  predictFeatures(features: Float64Array): number;
}

/**
 * The seed wrote its scaled matrices to CSV with Python's shortest round-trip repr and read them
 * back with pandas' legacy parser, which moves some values by an ulp (FEATURES.md §5, "The CSV
 * round trip is part of the recipe"). JavaScript's `String(x)` prints the same digits and the same
 * decimal exponent (leading zeros add nothing to the parser's integer), so this reproduces it.
 */
export function csvRoundTrip(x: number): number {
  return parseLegacyFloat(String(x));
}

/**
 * Raw features → StandardScaler → (CSV round trip) → polynomial expansion → model. The one code
 * path from features to a forecast, used by training, evaluation, prediction and the service alike.
 */
export class FeaturePipeline implements ForecastPipeline {
  private readonly scaled: Float64Array;
  private readonly expanded: Float64Array;

  constructor(
    readonly featureSet: FeatureSet,
    readonly scaler: StandardScaler,
    readonly expansion: PolynomialFeatures | null,
    readonly model: Estimator,
    readonly roundTrip: boolean,
  ) {
    const k = featureSet.featureNames.length;
    this.scaled = new Float64Array(k);
    this.expanded = new Float64Array(expansion ? expansion.state!.nOutputFeatures : k);
  }

  /** Scale, round-trip and expand a matrix of raw feature rows into model inputs. */
  transform(X: Matrix): Matrix {
    const scaled = this.scaler.transform(X);
    if (this.roundTrip) for (let i = 0; i < scaled.data.length; i++) scaled.data[i] = csvRoundTrip(scaled.data[i]);
    return this.expansion ? this.expansion.transform(scaled) : scaled;
  }

  predict(X: Matrix): Float64Array {
    return this.model.predict(this.transform(X));
  }

  /** One row, no allocation: the service's hot path. Not re-entrant (shares scratch buffers). */
  predictFeatures(features: Float64Array): number {
    const s = this.scaled;
    s.set(features);
    this.scaler.transformRowInPlace(s);
    if (this.roundTrip) for (let i = 0; i < s.length; i++) s[i] = csvRoundTrip(s[i]);
    if (!this.expansion) return this.model.predictRow(s);
    this.expansion.transformRow(s, this.expanded);
    return this.model.predictRow(this.expanded);
  }
}

/** Rows `[start, end)` of a matrix as a new matrix (copies). */
export function takeRows(X: Matrix, start: number, end: number): Matrix {
  const out = createMatrix(end - start, X.cols);
  out.data.set(X.data.subarray(start * X.cols, end * X.cols));
  return out;
}
