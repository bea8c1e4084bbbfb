import { describe, expect, it } from 'vitest';
import {
  PickleError,
  readSklearnLinear,
  readSklearnModel,
  readSklearnScaler,
  readSklearnTree,
  treeDepth,
} from '../../src/interop/index.js';
import { LinearRegression } from '../../src/models/linear.js';
import { matrixFromRows } from '../../src/models/matrix.js';
import type { TreeState } from '../../src/models/types.js';
import { fixture, fixtureJson } from './fixtures.js';

function errorOf(fn: () => unknown): PickleError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PickleError);
    return e as PickleError;
  }
  throw new Error('expected an error');
}

const bytes = (s: string) => Buffer.from(s, 'latin1');

/** scikit-learn's apply(): X is float32 for trees, thresholds are doubles. */
function predictTree(t: TreeState, x: number[]): number {
  let i = 0;
  while (t.leftChild[i] !== -1) i = Math.fround(x[t.feature[i]]) <= t.threshold[i] ? t.leftChild[i] : t.rightChild[i];
  return t.value[i];
}

describe('StandardScaler', () => {
  const want = fixtureJson('scaler.json');
  it.each(['scaler_p2.pkl', 'scaler_p4.pkl', 'scaler_p5.pkl', 'scaler_joblib.pkl', 'scaler_joblib_zlib.pkl'])('%s reads as the fitted state', (file) => {
    const s = readSklearnScaler(fixture(file));
    expect(s).toEqual({ mean: want.mean, variance: want.var, scale: want.scale, nSamplesSeen: want.n_samples_seen });
    // The constant column: variance 0, scale 1 (scikit-learn's _handle_zeros_in_scale).
    expect(s.variance[4]).toBe(0);
    expect(s.scale[4]).toBe(1);
  });

  it('a scaler that was never fitted names the missing field', () => {
    const p = bytes('\x80\x02csklearn.preprocessing._data\nStandardScaler\n)\x81}X\x09\x00\x00\x00with_mean\x88sb.');
    const err = errorOf(() => readSklearnScaler(p));
    expect(err.message).toBe('StandardScaler has no scale_: not a fitted estimator, or an unknown layout');
    expect(err.code).toBe('sklearn_missing_field');
  });

  it('refuses other classes by name', () => {
    const err = errorOf(() => readSklearnScaler(fixture('tree.pkl')));
    expect(err.message).toBe(
      'pickle holds a sklearn.tree._classes.DecisionTreeRegressor, expected one of sklearn.preprocessing.data.StandardScaler, sklearn.preprocessing._data.StandardScaler',
    );
    expect(err.code).toBe('sklearn_wrong_class');
  });

  it('refuses a malicious scaler before building anything', () => {
    expect(errorOf(() => readSklearnScaler(fixture('malicious_nested_scaler.pkl'))).message).toContain(
      'pickle refers to posix.system, which is not an allowed class',
    );
  });
});

describe('DecisionTreeRegressor', () => {
  const want = fixtureJson('tree.json');
  it.each(['tree.pkl', 'tree_joblib.pkl'])('%s reads as the expected tree_ arrays', (file) => {
    const { state, params, sklearnVersion, className } = readSklearnTree(fixture(file));
    expect(className).toBe(want.class);
    expect(sklearnVersion).toBe(want.sklearn_version);
    expect(state.kind).toBe('decision_tree_regressor');
    expect(state.nFeatures).toBe(want.n_features_in);
    expect(state.nodeCount).toBe(want.node_count);
    expect(state.maxDepth).toBe(want.max_depth);
    expect(state.leftChild).toEqual(want.children_left);
    expect(state.rightChild).toEqual(want.children_right);
    expect(state.feature).toEqual(want.feature);
    expect(state.threshold).toEqual(want.threshold);
    expect(state.impurity).toEqual(want.impurity);
    expect(state.nNodeSamples).toEqual(want.n_node_samples);
    expect(state.weightedNNodeSamples).toEqual(want.weighted_n_node_samples);
    expect(state.value).toEqual(want.value);
    expect(state.leftChild.filter((c) => c === -1).length).toBe(want.n_leaves);
    expect(params).toEqual({
      criterion: want.params.criterion,
      splitter: want.params.splitter,
      maxDepth: want.params.max_depth,
      minSamplesSplit: want.params.min_samples_split,
      minSamplesLeaf: want.params.min_samples_leaf,
      minWeightFractionLeaf: want.params.min_weight_fraction_leaf,
      maxFeatures: want.params.max_features,
      randomState: want.params.random_state,
      maxLeafNodes: want.params.max_leaf_nodes,
      minImpurityDecrease: want.params.min_impurity_decrease,
      ccpAlpha: want.params.ccp_alpha,
    });
    // Walking the decoded tree gives scikit-learn's predictions.
    expect(want.X_query.map((x: number[]) => predictTree(state, x))).toEqual(want.predictions);
  });

  it('refuses a multi-output tree', () => {
    const err = errorOf(() => readSklearnTree(fixture('tree_multi.pkl')));
    expect(err.message).toBe('multi-output trees are not supported (n_outputs_ = 2)');
    expect(err.code).toBe('sklearn_unsupported');
  });

  it('refuses a scaler', () => {
    expect(errorOf(() => readSklearnTree(fixture('scaler_p4.pkl'))).message).toMatch(
      /^pickle holds a sklearn\.preprocessing\._data\.StandardScaler, expected one of sklearn\.tree\.tree\.DecisionTreeRegressor/,
    );
  });

  it('computes depth from the nodes and rejects arrays that are not a tree', () => {
    expect(treeDepth([-1], [-1])).toBe(0);
    expect(treeDepth([1, -1, 3, -1, -1], [2, -1, 4, -1, -1])).toBe(2);
    expect(() => treeDepth([1, -1, -1], [1, -1, -1])).toThrow(/reached twice/);
    expect(() => treeDepth([1, -1, -1], [5, -1, -1])).toThrow(/outside 1\.\.2/);
    expect(() => treeDepth([-1, -1], [-1, -1])).toThrow(/1 nodes not reachable/);
    expect(() => treeDepth([1, -1], [-1, -1])).toThrow(/only one child/);
  });
});

describe('LinearRegression', () => {
  const want = fixtureJson('linear.json');
  it('reads coef_ and intercept_ exactly, and predicts like scikit-learn', () => {
    const state = readSklearnLinear(fixture('linear.pkl'));
    expect(state).toEqual({ kind: 'linear_regression', nFeatures: 3, coef: want.coef, intercept: want.intercept });
    const pred = LinearRegression.fromState(state).predict(matrixFromRows(want.X_query));
    want.predictions.forEach((p: number, i: number) => expect(pred[i]).toBeCloseTo(p, 13));
  });

  it('refuses a multi-output model', () => {
    const err = errorOf(() => readSklearnLinear(fixture('linear_multi.pkl')));
    expect(err.message).toBe('multi-output LinearRegression is not supported (coef_ has shape (2, 3))');
  });
});

describe('readSklearnModel', () => {
  it('dispatches by class', () => {
    const tree = readSklearnModel(fixture('tree_joblib.pkl'));
    expect(tree.kind).toBe('decision_tree_regressor');
    expect(tree.state.kind).toBe('decision_tree_regressor');
    const lin = readSklearnModel(fixture('linear.pkl'));
    expect(lin.kind).toBe('linear_regression');
    expect(lin.className).toBe('sklearn.linear_model._base.LinearRegression');
    expect(lin.sklearnVersion).toBe('1.2.1');
    expect(lin.params).toEqual({ fitIntercept: true, positive: false });
  });

  it('tells a scaler from a model, and names anything else', () => {
    expect(errorOf(() => readSklearnModel(fixture('scaler_joblib.pkl'))).message).toBe(
      'pickle holds a sklearn.preprocessing._data.StandardScaler, a scaler, not a model: read it as the scaler',
    );
    expect(errorOf(() => readSklearnModel(bytes('\x80\x02]q\x00.'))).message).toMatch(/^pickle holds a list, expected one of /);
  });
});
