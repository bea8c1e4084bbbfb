import type { Matrix } from '../matrix.js';
import { ModelInputError, type Regressor, type TreeState } from '../types.js';
import { GrowOptions, INT32_MAX, ThresholdRule, growTree } from './grower.js';

export type { ThresholdRule } from './grower.js';

export interface DecisionTreeRegressorOptions {
  /** Deepest level a node may be split at (root = 0); unlimited when absent. */
  maxDepth?: number;
  /** Fewest samples a node needs to be split (>= 2). Default 2. */
  minSamplesSplit?: number;
  /** Fewest samples each child of a split must keep (>= 1). Default 1. */
  minSamplesLeaf?: number;
  /** When set, the tree grows best-first to at most this many leaves (>= 2); depth-first otherwise. */
  maxLeafNodes?: number;
  /** scikit-learn's `random_state` (an integer in [0, 2^32 - 1]). Default 0. */
  randomState?: number;
  /**
   * How a split's threshold is placed between the two neighbouring float32 values a < b:
   * `'modern'` (scikit-learn >= 0.20) `a / 2 + b / 2` in double; `'sklearn-0.19'`
   * `f32(a + b) / 2`, the formula of the pickled reference model (FEATURES.md §5).
   */
  thresholdRule?: ThresholdRule;
}

/**
 * scikit-learn 1.2.1's `DecisionTreeRegressor` (squared error, splitter "best", all features,
 * unit sample weights, one output), grown bit for bit like scikit-learn's (FEATURES.md §7). X is
 * rounded to float32 for fit and predict, as scikit-learn does.
 */
export class DecisionTreeRegressor implements Regressor<TreeState> {
  readonly maxDepth: number | undefined;
  readonly minSamplesSplit: number;
  readonly minSamplesLeaf: number;
  readonly maxLeafNodes: number | undefined;
  readonly randomState: number;
  readonly thresholdRule: ThresholdRule;

  private fitted: TreeState | null = null;
  private left = new Int32Array(0);
  private right = new Int32Array(0);
  private feat = new Int32Array(0);
  private thr = new Float64Array(0);
  private val = new Float64Array(0);

  constructor(options: DecisionTreeRegressorOptions = {}) {
    const {
      maxDepth,
      minSamplesSplit = 2,
      minSamplesLeaf = 1,
      maxLeafNodes,
      randomState = 0,
      thresholdRule = 'modern',
    } = options;
    if (maxDepth !== undefined) checkInt('maxDepth', maxDepth, 1);
    checkInt('minSamplesSplit', minSamplesSplit, 2);
    checkInt('minSamplesLeaf', minSamplesLeaf, 1);
    if (maxLeafNodes !== undefined) checkInt('maxLeafNodes', maxLeafNodes, 2);
    if (!Number.isInteger(randomState) || randomState < 0 || randomState > 0xffffffff) {
      throw new RangeError(`randomState must be an integer in [0, 2^32 - 1], got ${randomState}`);
    }
    if (thresholdRule !== 'modern' && thresholdRule !== 'sklearn-0.19') {
      throw new RangeError(`thresholdRule must be 'modern' or 'sklearn-0.19', got ${String(thresholdRule)}`);
    }
    this.maxDepth = maxDepth;
    this.minSamplesSplit = minSamplesSplit;
    this.minSamplesLeaf = minSamplesLeaf;
    this.maxLeafNodes = maxLeafNodes;
    this.randomState = randomState;
    this.thresholdRule = thresholdRule;
  }

  /** A predictor for a stored tree (the bundle's state). */
  static fromState(state: TreeState): DecisionTreeRegressor {
    validateState(state);
    const model = new DecisionTreeRegressor();
    model.load(state);
    return model;
  }

  get state(): TreeState | null {
    return this.fitted;
  }

  fit(X: Matrix, y: Float64Array): this {
    const { rows: n, cols } = X;
    if (n < 1) throw new Error('DecisionTreeRegressor.fit: no rows');
    if (cols < 1) throw new Error('DecisionTreeRegressor.fit: no columns');
    if (y.length !== n) throw new Error(`DecisionTreeRegressor.fit: ${y.length} targets for ${n} rows`);
    const X32 = new Float32Array(X.data.subarray(0, n * cols));
    for (let i = 0; i < X32.length; i++) {
      if (!Number.isFinite(X32[i])) {
        throw new Error(`DecisionTreeRegressor.fit: X[${Math.floor(i / cols)}][${i % cols}] is not finite in float32 (${X.data[i]})`);
      }
    }
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(y[i])) throw new Error(`DecisionTreeRegressor.fit: y[${i}] is not finite (${y[i]})`);
    }
    const options: GrowOptions = {
      maxDepth: this.maxDepth ?? INT32_MAX,
      minSamplesSplit: this.minSamplesSplit,
      minSamplesLeaf: this.minSamplesLeaf,
      maxLeafNodes: this.maxLeafNodes ?? -1,
      randomState: this.randomState,
      thresholdRule: this.thresholdRule,
    };
    const tree = growTree(X32, n, cols, y, options);
    this.load({ kind: 'decision_tree_regressor', nFeatures: cols, ...tree });
    return this;
  }

  predict(X: Matrix): Float64Array {
    const state = this.requireFitted();
    if (X.cols !== state.nFeatures) {
      throw new Error(`DecisionTreeRegressor.predict: expected ${state.nFeatures} columns, got ${X.cols}`);
    }
    const out = new Float64Array(X.rows);
    // Rows are read in place (no per-row view): predict is also the evaluation's and verify's hot loop.
    for (let r = 0; r < X.rows; r++) out[r] = this.val[this.leafOf(X.data, r * X.cols)];
    return out;
  }

  /**
   * The leaf value for one row: from the root go left while `f32(x[feature]) <= threshold` (the
   * comparison in double, like scikit-learn's float32 X against its double thresholds).
   */
  predictRow(x: ArrayLike<number>): number {
    return this.val[this.leafOf(x)];
  }

  /** scikit-learn's `apply`: the id of the leaf a row lands in. */
  applyRow(x: ArrayLike<number>): number {
    return this.leafOf(x);
  }

  /**
   * scikit-learn's `decision_path` for one row, with what each split compared: every split node from
   * the root to the row's leaf, the row's input there as the tree compares it (float32), and the
   * child the row did not take. The traversal is `leafOf`'s, so a path always ends where predict does.
   */
  decisionPath(x: ArrayLike<number>): { node: number; feature: number; threshold: number; value: number; goesLeft: boolean; other: number }[] {
    if (this.fitted === null) this.requireFitted();
    const path: { node: number; feature: number; threshold: number; value: number; goesLeft: boolean; other: number }[] = [];
    this.leafOf(x, 0, (node, value, goesLeft) =>
      path.push({ node, feature: this.feat[node], threshold: this.thr[node], value, goesLeft, other: goesLeft ? this.right[node] : this.left[node] }),
    );
    return path;
  }

  /** Every value a leaf holds: the forecasts this tree can give. */
  leafValues(): ReadonlySet<number> {
    const { left, val } = this;
    if (this.fitted === null) this.requireFitted();
    this.leaves ??= new Set(Array.from(val).filter((_, node) => left[node] === -1));
    return this.leaves;
  }

  /** Whether a leaf under `node` (itself included) holds exactly `value`. */
  subtreeHolds(node: number, value: number): boolean {
    const { left, right, val } = this;
    const stack = [node];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (left[n] === -1) {
        if (Object.is(val[n], value)) return true;
      } else stack.push(left[n], right[n]);
    }
    return false;
  }

  private leaves: Set<number> | null = null;

  /** The leaf of the row whose first value is `x[offset]`; `visit` is told of every split on the way. */
  private leafOf(x: ArrayLike<number>, offset = 0, visit?: (node: number, value: number, goesLeft: boolean) => void): number {
    if (this.fitted === null) this.requireFitted();
    const { left, right, feat, thr } = this;
    let node = 0;
    while (left[node] !== -1) {
      const v = Math.fround(x[offset + feat[node]]);
      // scikit-learn refuses NaN and values infinite in float32; so does this (FEATURES.md §3).
      if (v - v !== 0) {
        const value = x[offset + feat[node]];
        throw new ModelInputError(feat[node], value, `DecisionTreeRegressor: feature ${feat[node]} is not finite in float32 (${value})`);
      }
      const goesLeft = v <= thr[node];
      visit?.(node, v, goesLeft);
      node = goesLeft ? left[node] : right[node];
    }
    return node;
  }

  private requireFitted(): TreeState {
    if (this.fitted === null) throw new Error('DecisionTreeRegressor is not fitted');
    return this.fitted;
  }

  private load(state: TreeState): void {
    this.fitted = state;
    this.leaves = null;
    this.left = Int32Array.from(state.leftChild);
    this.right = Int32Array.from(state.rightChild);
    this.feat = Int32Array.from(state.feature);
    this.thr = Float64Array.from(state.threshold);
    this.val = Float64Array.from(state.value);
  }
}

function checkInt(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
}

function validateState(state: TreeState): void {
  if (state.kind !== 'decision_tree_regressor') throw new Error(`not a decision tree state: ${String(state.kind)}`);
  const n = state.nodeCount;
  const arrays = ['leftChild', 'rightChild', 'feature', 'threshold', 'impurity', 'nNodeSamples', 'weightedNNodeSamples', 'value'] as const;
  for (const key of arrays) {
    if (!Array.isArray(state[key]) || state[key].length !== n) throw new Error(`tree state: ${key} must have ${n} entries`);
  }
  for (let i = 0; i < n; i++) {
    const l = state.leftChild[i];
    const r = state.rightChild[i];
    if (l === -1 && r === -1) continue;
    if (!(l > i && l < n && r > i && r < n)) throw new Error(`tree state: node ${i} has invalid children ${l}, ${r}`);
    const f = state.feature[i];
    if (!(Number.isInteger(f) && f >= 0 && f < state.nFeatures)) throw new Error(`tree state: node ${i} has invalid feature ${f}`);
  }
}
