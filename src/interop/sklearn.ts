/**
 * Fitted scikit-learn estimators read from their pickles (or joblib files) into this project's
 * JSON-able model states. Everything goes through the safe reader in `pickle.ts`: nothing from
 * the file is executed. Known layouts: scikit-learn 0.19 (the reference `scaler_ml.pkl` and
 * `dtree_model.pkl`, module paths `sklearn.tree.tree`, `sklearn.preprocessing.data`, ...) and
 * modern releases (`sklearn.tree._classes`, `sklearn.preprocessing._data`, ...).
 */
import type { ScalerState } from '../models/scaler.js';
import type { LinearState, TreeState } from '../models/types.js';
import {
  type NdArray,
  type PickleOptions,
  type PyDict,
  type PyInstance,
  type PyValue,
  PickleError,
  isInstance,
  isNdArray,
  loadPickle,
  pyTypeName,
  typedToNumbers,
} from './pickle.js';

export const SCALER_CLASSES = ['sklearn.preprocessing.data.StandardScaler', 'sklearn.preprocessing._data.StandardScaler'] as const;
export const TREE_REGRESSOR_CLASSES = ['sklearn.tree.tree.DecisionTreeRegressor', 'sklearn.tree._classes.DecisionTreeRegressor'] as const;
export const TREE_CLASS = 'sklearn.tree._tree.Tree';
export const LINEAR_CLASSES = ['sklearn.linear_model.base.LinearRegression', 'sklearn.linear_model._base.LinearRegression'] as const;

/** DecisionTreeRegressor's constructor parameters, as the pickle recorded them. */
export interface TreeHyperparameters {
  criterion: string;
  splitter: string;
  maxDepth: number | null;
  minSamplesSplit: number;
  minSamplesLeaf: number;
  minWeightFractionLeaf: number;
  maxFeatures: number | string | null;
  randomState: number | null;
  maxLeafNodes: number | null;
  minImpurityDecrease: number;
  /** scikit-learn < 0.25 only. */
  minImpuritySplit?: number | null;
  /** scikit-learn >= 0.22 only. */
  ccpAlpha?: number;
}

export interface SklearnTree {
  className: string;
  state: TreeState;
  params: TreeHyperparameters;
  /** `_sklearn_version` recorded in the pickle, e.g. `0.19.1`; null when absent. */
  sklearnVersion: string | null;
}

/** LinearRegression's constructor parameters, as the pickle recorded them. */
export interface LinearHyperparameters {
  fitIntercept: boolean;
  /** scikit-learn >= 0.24 only. */
  positive?: boolean;
}

export interface SklearnLinear {
  className: string;
  state: LinearState;
  params: LinearHyperparameters;
  sklearnVersion: string | null;
}

/** A fitted regressor read from a pickle: what {@link readSklearnModel} returns. */
export type SklearnModel = ({ kind: 'decision_tree_regressor' } & SklearnTree) | ({ kind: 'linear_regression' } & SklearnLinear);

// ---------------------------------------------------------------------------------------------

function wrongClass(v: PyValue, expected: readonly string[]): PickleError {
  return new PickleError(
    `pickle holds a ${pyTypeName(v)}, expected ${expected.length > 1 ? 'one of ' : ''}${expected.join(', ')}`,
    'sklearn_wrong_class',
    { found: pyTypeName(v) },
  );
}

function stateOf(inst: PyInstance): PyDict {
  if (!(inst.state instanceof Map)) {
    throw new PickleError(`${inst.className} has no attribute dict (state is ${pyTypeName(inst.state)})`, 'sklearn_missing_field');
  }
  return inst.state;
}

class Fields {
  constructor(
    readonly owner: string,
    readonly d: PyDict,
  ) {}

  has(name: string): boolean {
    return this.d.has(name);
  }

  raw(name: string): PyValue {
    if (!this.d.has(name)) {
      throw new PickleError(`${this.owner} has no ${name}: not a fitted estimator, or an unknown layout`, 'sklearn_missing_field', { field: name });
    }
    return this.d.get(name) as PyValue;
  }

  private bad(name: string, v: PyValue, expected: string): PickleError {
    return new PickleError(`${this.owner}.${name} is a ${pyTypeName(v)}, expected ${expected}`, 'sklearn_invalid_field', { field: name });
  }

  /** A Python int or float (or a numpy scalar, or a 0-d/1-element array). */
  number(name: string, v: PyValue = this.raw(name)): number {
    if (typeof v === 'number') return v;
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (typeof v === 'bigint') throw this.bad(name, v, 'a number within 2^53');
    if (isNdArray(v) && v.data && v.data.length === 1) return typedToNumbers(v.data, `${this.owner}.${name}`)[0];
    throw this.bad(name, v, 'a number');
  }

  int(name: string, v: PyValue = this.raw(name)): number {
    const x = this.number(name, v);
    if (!Number.isSafeInteger(x)) throw this.bad(name, v, 'an integer');
    return x;
  }

  optNumber(name: string): number | null {
    const v = this.d.get(name);
    return v === undefined || v === null ? null : this.number(name, v);
  }

  string(name: string): string {
    const v = this.raw(name);
    if (typeof v !== 'string') throw this.bad(name, v, 'a str');
    return v;
  }

  array(name: string): NdArray {
    const v = this.raw(name);
    if (!isNdArray(v)) throw this.bad(name, v, 'a numpy array');
    if (!v.built) throw new PickleError(`${this.owner}.${name} is an array whose data was never set`, 'sklearn_invalid_field', { field: name });
    return v;
  }

  /** A 1-D float vector (`(n,)`, or `(1, n)` when `allowRow`). */
  vector(name: string, allowRow = false): number[] {
    const a = this.array(name);
    if (!a.data) throw this.bad(name, a, 'a numeric array');
    const ok = a.shape.length === 1 || (allowRow && a.shape.length === 2 && a.shape[0] === 1);
    if (!ok) throw this.bad(name, a, `a vector, not shape (${a.shape.join(', ')})`);
    return typedToNumbers(a.data, `${this.owner}.${name}`);
  }
}

function versionOf(f: Fields): string | null {
  const v = f.d.get('_sklearn_version');
  return typeof v === 'string' ? v : null;
}

function load(buf: Uint8Array, options?: PickleOptions): PyValue {
  return loadPickle(buf, options);
}

// ---------------------------------------------------------------------------------------------
// StandardScaler

export function scalerFromPickled(obj: PyValue): { state: ScalerState; className: string; sklearnVersion: string | null } {
  if (!isInstance(obj, ...SCALER_CLASSES)) throw wrongClass(obj, SCALER_CLASSES);
  const f = new Fields('StandardScaler', stateOf(obj));
  const withMean = f.d.get('with_mean') !== false;
  const withStd = f.d.get('with_std') !== false;
  const scale = f.raw('scale_') === null ? null : f.vector('scale_');
  const mean = f.raw('mean_') === null ? null : f.vector('mean_');
  const variance = f.raw('var_') === null ? null : f.vector('var_');
  const p = (mean ?? scale ?? variance)?.length;
  if (p === undefined) throw new PickleError('StandardScaler has neither mean_ nor scale_: nothing to apply', 'sklearn_missing_field');
  if ((withMean && !mean) || (withStd && !scale)) throw new PickleError('StandardScaler is not fitted (mean_/scale_ missing)', 'sklearn_missing_field');
  for (const [n, v] of [['mean_', mean], ['var_', variance], ['scale_', scale]] as const) {
    if (v && v.length !== p) throw new PickleError(`StandardScaler.${n} has ${v.length} values, mean_ has ${p}`, 'sklearn_invalid_field');
  }
  // with_mean=False / with_std=False leave mean_ / scale_ as None: subtracting 0 and dividing by 1
  // is exactly what scikit-learn's transform then does.
  const nSeen = f.raw('n_samples_seen_');
  let nSamplesSeen: number;
  if (isNdArray(nSeen)) {
    // Per-feature counts appear when the training data had NaNs; a single count is all we model.
    const counts = nSeen.data ? typedToNumbers(nSeen.data, 'StandardScaler.n_samples_seen_') : [];
    if (counts.length === 0 || counts.some((c) => c !== counts[0])) {
      throw new PickleError('StandardScaler.n_samples_seen_ differs per feature (NaNs in the training data): not supported', 'sklearn_unsupported');
    }
    nSamplesSeen = counts[0];
  } else nSamplesSeen = f.int('n_samples_seen_', nSeen);
  return {
    className: obj.className,
    sklearnVersion: versionOf(f),
    state: {
      mean: mean ?? new Array<number>(p).fill(0),
      variance: variance ?? new Array<number>(p).fill(1),
      scale: scale ?? new Array<number>(p).fill(1),
      nSamplesSeen,
    },
  };
}

/** A fitted `StandardScaler` (plain pickle or joblib file) as a {@link ScalerState}. */
export function readSklearnScaler(buf: Uint8Array, options?: PickleOptions): ScalerState {
  return scalerFromPickled(load(buf, options)).state;
}

// ---------------------------------------------------------------------------------------------
// DecisionTreeRegressor

const NODE_FIELDS = ['left_child', 'right_child', 'feature', 'threshold', 'impurity', 'n_node_samples', 'weighted_n_node_samples'] as const;
const TREE_LEAF = -1;

/** Depth of the deepest node (root = 0), checking that the arrays describe one tree rooted at 0. */
export function treeDepth(left: readonly number[], right: readonly number[]): number {
  const n = left.length;
  if (n === 0) throw new PickleError('tree has no nodes', 'sklearn_invalid_field');
  const depth = new Int32Array(n).fill(-1);
  depth[0] = 0;
  let max = 0;
  const queue = [0];
  let seen = 1;
  for (let q = 0; q < queue.length; q++) {
    const i = queue[q];
    const l = left[i];
    const r = right[i];
    if (l === TREE_LEAF || r === TREE_LEAF) {
      if (l !== r) throw new PickleError(`tree node ${i} has only one child`, 'sklearn_invalid_field');
      continue;
    }
    for (const c of [l, r]) {
      if (!Number.isInteger(c) || c <= 0 || c >= n) throw new PickleError(`tree node ${i} has child ${c} outside 1..${n - 1}`, 'sklearn_invalid_field');
      if (depth[c] !== -1) throw new PickleError(`tree node ${c} is reached twice: not a tree`, 'sklearn_invalid_field');
      depth[c] = depth[i] + 1;
      if (depth[c] > max) max = depth[c];
      queue.push(c);
      seen++;
    }
  }
  if (seen !== n) throw new PickleError(`tree has ${n - seen} nodes not reachable from the root`, 'sklearn_invalid_field');
  return max;
}

function treeStateFrom(tree: PyValue, nFeaturesHint: number | null): TreeState {
  if (!isInstance(tree, TREE_CLASS)) throw wrongClass(tree, [TREE_CLASS]);
  // Tree.__reduce__ gives (Tree, (n_features, n_classes, n_outputs), state).
  const [nFeatArg, nClasses, nOutputs] = tree.args;
  const f = new Fields('tree_', stateOf(tree));
  const nOut = f.int('n_outputs', nOutputs ?? null);
  if (nOut !== 1) throw new PickleError(`multi-output trees are not supported (n_outputs = ${nOut})`, 'sklearn_unsupported');
  if (isNdArray(nClasses) && nClasses.data && typedToNumbers(nClasses.data).some((c) => c !== 1)) {
    throw new PickleError('tree has classes: a classifier, not a regressor', 'sklearn_unsupported');
  }
  const nFeatures = f.int('n_features', nFeatArg ?? null);
  if (nFeaturesHint !== null && nFeaturesHint !== nFeatures) {
    throw new PickleError(`estimator says ${nFeaturesHint} features, its tree_ says ${nFeatures}`, 'sklearn_invalid_field');
  }
  const nodeCount = f.int('node_count');
  const nodes = f.array('nodes');
  if (!nodes.fields || nodes.shape.length !== 1) throw new PickleError('tree_.nodes is not a 1-D structured array', 'sklearn_invalid_field');
  if (nodes.shape[0] !== nodeCount) {
    throw new PickleError(`tree_.nodes has ${nodes.shape[0]} rows but node_count is ${nodeCount}`, 'sklearn_invalid_field');
  }
  const col: Record<string, number[]> = {};
  for (const name of NODE_FIELDS) {
    const c = nodes.fields.get(name);
    if (!c) throw new PickleError(`tree_.nodes has no field ${name}`, 'sklearn_missing_field', { field: name });
    col[name] = typedToNumbers(c, `tree_.nodes.${name}`);
  }
  const values = f.array('values');
  if (!values.data || values.shape.length !== 3 || values.shape[0] !== nodeCount) {
    throw new PickleError(`tree_.values has shape (${values.shape.join(', ')}), expected (${nodeCount}, 1, 1)`, 'sklearn_invalid_field');
  }
  if (values.shape[1] !== 1 || values.shape[2] !== 1) {
    throw new PickleError(
      `tree_.values has shape (${values.shape.join(', ')}): multi-output or classification trees are not supported`,
      'sklearn_unsupported',
    );
  }
  const value = typedToNumbers(values.data, 'tree_.values');
  const maxDepth = treeDepth(col.left_child, col.right_child);
  const recorded = f.d.get('max_depth');
  if (typeof recorded === 'number' && recorded !== maxDepth) {
    throw new PickleError(`tree_.max_depth is ${recorded} but its nodes are ${maxDepth} levels deep`, 'sklearn_invalid_field');
  }
  for (let i = 0; i < nodeCount; i++) {
    const feat = col.feature[i];
    if (col.left_child[i] !== TREE_LEAF && (feat < 0 || feat >= nFeatures)) {
      throw new PickleError(`tree node ${i} splits on feature ${feat}, outside 0..${nFeatures - 1}`, 'sklearn_invalid_field');
    }
  }
  return {
    kind: 'decision_tree_regressor',
    nFeatures,
    maxDepth,
    nodeCount,
    leftChild: col.left_child,
    rightChild: col.right_child,
    feature: col.feature,
    threshold: col.threshold,
    impurity: col.impurity,
    nNodeSamples: col.n_node_samples,
    weightedNNodeSamples: col.weighted_n_node_samples,
    value,
  };
}

function treeParams(f: Fields): TreeHyperparameters {
  const mf = f.d.get('max_features');
  let maxFeatures: number | string | null;
  if (mf === undefined || mf === null) maxFeatures = null;
  else if (typeof mf === 'string') maxFeatures = mf;
  else maxFeatures = f.number('max_features', mf);
  const rs = f.d.get('random_state');
  const params: TreeHyperparameters = {
    criterion: f.string('criterion'),
    splitter: f.string('splitter'),
    maxDepth: f.optNumber('max_depth'),
    minSamplesSplit: f.number('min_samples_split'),
    minSamplesLeaf: f.number('min_samples_leaf'),
    minWeightFractionLeaf: f.number('min_weight_fraction_leaf'),
    maxFeatures,
    randomState: rs === undefined || rs === null ? null : f.int('random_state', rs),
    maxLeafNodes: f.optNumber('max_leaf_nodes'),
    minImpurityDecrease: f.has('min_impurity_decrease') ? f.number('min_impurity_decrease') : 0,
  };
  if (f.has('min_impurity_split')) params.minImpuritySplit = f.optNumber('min_impurity_split');
  if (f.has('ccp_alpha')) params.ccpAlpha = f.number('ccp_alpha');
  return params;
}

export function treeFromPickled(obj: PyValue): SklearnTree {
  if (!isInstance(obj, ...TREE_REGRESSOR_CLASSES)) throw wrongClass(obj, TREE_REGRESSOR_CLASSES);
  const f = new Fields('DecisionTreeRegressor', stateOf(obj));
  const nOut = f.has('n_outputs_') ? f.int('n_outputs_') : 1;
  if (nOut !== 1) throw new PickleError(`multi-output trees are not supported (n_outputs_ = ${nOut})`, 'sklearn_unsupported');
  // 0.19 .. 1.1 record n_features_; 0.24+ n_features_in_.
  const nFeat = f.has('n_features_in_') ? f.int('n_features_in_') : f.has('n_features_') ? f.int('n_features_') : null;
  return {
    className: obj.className,
    state: treeStateFrom(f.raw('tree_'), nFeat),
    params: treeParams(f),
    sklearnVersion: versionOf(f),
  };
}

/** A fitted `DecisionTreeRegressor`: its tree as a {@link TreeState}, its hyperparameters, its version. */
export function readSklearnTree(buf: Uint8Array, options?: PickleOptions): SklearnTree {
  return treeFromPickled(load(buf, options));
}

// ---------------------------------------------------------------------------------------------
// LinearRegression

export function linearFromPickled(obj: PyValue): SklearnLinear {
  if (!isInstance(obj, ...LINEAR_CLASSES)) throw wrongClass(obj, LINEAR_CLASSES);
  const f = new Fields('LinearRegression', stateOf(obj));
  const coefArr = f.array('coef_');
  if (coefArr.shape.length === 2 && coefArr.shape[0] !== 1) {
    throw new PickleError(`multi-output LinearRegression is not supported (coef_ has shape (${coefArr.shape.join(', ')}))`, 'sklearn_unsupported');
  }
  const coef = f.vector('coef_', true);
  const ic = f.raw('intercept_');
  if (isNdArray(ic) && ic.size !== 1) {
    throw new PickleError(`multi-output LinearRegression is not supported (intercept_ has ${ic.size} values)`, 'sklearn_unsupported');
  }
  const intercept = f.number('intercept_', ic);
  if (f.has('n_features_in_') && f.int('n_features_in_') !== coef.length) {
    throw new PickleError(`LinearRegression.n_features_in_ is ${f.int('n_features_in_')} but coef_ has ${coef.length} values`, 'sklearn_invalid_field');
  }
  const params: LinearHyperparameters = { fitIntercept: f.d.get('fit_intercept') !== false };
  const positive = f.d.get('positive');
  if (typeof positive === 'boolean') params.positive = positive;
  return {
    className: obj.className,
    sklearnVersion: versionOf(f),
    state: { kind: 'linear_regression', nFeatures: coef.length, coef, intercept },
    params,
  };
}

/** A fitted single-output `LinearRegression` as a {@link LinearState}. */
export function readSklearnLinear(buf: Uint8Array, options?: PickleOptions): LinearState {
  return linearFromPickled(load(buf, options)).state;
}

// ---------------------------------------------------------------------------------------------

/** A fitted regressor (DecisionTreeRegressor or LinearRegression), told apart by class. */
export function readSklearnModel(buf: Uint8Array, options?: PickleOptions): SklearnModel {
  const obj = load(buf, options);
  if (isInstance(obj, ...TREE_REGRESSOR_CLASSES)) return { kind: 'decision_tree_regressor', ...treeFromPickled(obj) };
  if (isInstance(obj, ...LINEAR_CLASSES)) return { kind: 'linear_regression', ...linearFromPickled(obj) };
  if (isInstance(obj, ...SCALER_CLASSES)) {
    throw new PickleError(`pickle holds a ${obj.className}, a scaler, not a model: read it as the scaler`, 'sklearn_wrong_class', {
      found: obj.className,
    });
  }
  throw wrongClass(obj, [...TREE_REGRESSOR_CLASSES, ...LINEAR_CLASSES]);
}
