import type { Matrix } from './matrix.js';

/**
 * A model input the estimator cannot take: scikit-learn refuses NaN, and the tree refuses values
 * infinite once rounded to float32. Typed, so that a caller predicting for stored bars can answer
 * "no forecast for this bar" instead of failing the request.
 */
export class ModelInputError extends RangeError {
  constructor(
    /** Index of the input (after scaling and expansion). */
    readonly input: number,
    readonly value: number,
    message: string,
  ) {
    super(message);
    this.name = 'ModelInputError';
  }
}

/** A fitted regressor in scikit-learn's shape. */
export interface Regressor<State> {
  fit(X: Matrix, y: Float64Array): this;
  predict(X: Matrix): Float64Array;
  /** Predict one (already expanded) row: the service's hot path. */
  predictRow(x: ArrayLike<number>): number;
  /** The fitted state: a plain JSON-able record, what the bundle stores. */
  readonly state: State | null;
}

/**
 * A fitted regression tree in scikit-learn's `tree_` layout (one output). JSON-able: node arrays
 * as plain number arrays. Leaves have `feature = -2`, `threshold = -2`, children `-1`.
 */
export interface TreeState {
  kind: 'decision_tree_regressor';
  nFeatures: number;
  /** Depth of the deepest leaf (root = 0). */
  maxDepth: number;
  nodeCount: number;
  leftChild: number[];
  rightChild: number[];
  feature: number[];
  threshold: number[];
  impurity: number[];
  nNodeSamples: number[];
  weightedNNodeSamples: number[];
  /** Mean target of each node's training rows. */
  value: number[];
}

/** A fitted least-squares linear model (scikit-learn's `coef_`, `intercept_`). */
export interface LinearState {
  kind: 'linear_regression';
  nFeatures: number;
  coef: number[];
  intercept: number;
}

export type ModelState = TreeState | LinearState;

