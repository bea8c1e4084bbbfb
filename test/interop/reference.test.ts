import { expect, it } from 'vitest';
import { loadPickle, PickleError, readSklearnModel, readSklearnScaler, readSklearnTree } from '../../src/interop/index.js';
import { needsReference } from '../helpers/reference.js';
import { reference } from './fixtures.js';

const withReference = needsReference('scaler_ml.pkl', 'dtree_model.pkl');

const FEATURES = [
  'return', 'close_to_open', 'close_to_high', 'close_to_low', 'macd_diff', 'ma_50_200', 'sar', 'stochastic_oscillator', 'cci',
  'rsi', '5d_volatility', '21d_volatility', '60d_volatility', 'bollinger', 'atr', 'on_balance_volume', 'chaikin_oscillator',
];

withReference.describe('reference scaler_ml.pkl (scikit-learn 0.19, joblib)', () => {
  it('holds 17 means, variances and scales fitted on 7,000 rows', () => {
    const s = readSklearnScaler(reference('scaler_ml.pkl'));
    expect(s.mean).toHaveLength(17);
    expect(s.variance).toHaveLength(17);
    expect(s.scale).toHaveLength(17);
    expect(s.nSamplesSeen).toBe(7000);
    // scale_ is sqrt(var_) (no constant feature), so the three arrays decode consistently.
    s.variance.forEach((v, j) => expect(Math.sqrt(v), FEATURES[j]).toBe(s.scale[j]));
    expect(s.mean[0]).toBeCloseTo(1.001, 3); // mean daily return ratio
    const lines = FEATURES.map(
      (f, j) => `${String(j).padStart(2)} ${f.padEnd(22)} mean ${s.mean[j].toPrecision(17).padStart(24)}  var ${s.variance[j].toPrecision(17).padStart(24)}  scale ${s.scale[j].toPrecision(17).padStart(24)}`,
    );
    console.log(`scaler_ml.pkl, n_samples_seen_ ${s.nSamplesSeen}:\n${lines.join('\n')}`);
  });

  it('reads every array, not only the first (pickletools stops at the first raw block)', () => {
    const obj = loadPickle(reference('scaler_ml.pkl'));
    expect((obj as { className: string }).className).toBe('sklearn.preprocessing.data.StandardScaler');
  });

  it('every truncation is reported as truncated, including cuts inside the raw array bytes', () => {
    const buf = reference('scaler_ml.pkl');
    let inArray = 0;
    for (let n = 1; n < buf.length; n++) {
      try {
        loadPickle(buf.subarray(0, n));
        throw new Error(`cut at ${n} decoded`);
      } catch (e) {
        expect(e).toBeInstanceOf(PickleError);
        expect((e as PickleError).code).toBe('pickle_truncated');
        if ((e as Error).message.includes('joblib array data')) inArray++;
      }
    }
    expect(inArray).toBeGreaterThanOrEqual(3 * 17 * 8 - 3);
  });
});

withReference.describe('reference dtree_model.pkl (scikit-learn 0.19)', () => {
  const tree = withReference.present ? readSklearnTree(reference('dtree_model.pkl')) : null!;
  const t = withReference.present ? tree.state : null!;

  it('is a 99-node, 50-leaf, 19-level tree over 171 features', () => {
    expect(tree.className).toBe('sklearn.tree.tree.DecisionTreeRegressor');
    expect(tree.sklearnVersion).toBe('0.19.1');
    expect(t.nodeCount).toBe(99);
    expect(t.leftChild.filter((c) => c === -1)).toHaveLength(50);
    expect(t.maxDepth).toBe(19);
    expect(t.nFeatures).toBe(171);
    for (const k of ['leftChild', 'rightChild', 'feature', 'threshold', 'impurity', 'nNodeSamples', 'weightedNNodeSamples', 'value'] as const) {
      expect(t[k], k).toHaveLength(99);
    }
  });

  it('records the hyperparameters of the README (0.19 grew it one level past max_depth)', () => {
    expect(tree.params).toEqual({
      criterion: 'mse',
      splitter: 'best',
      maxDepth: 18,
      minSamplesSplit: 5,
      minSamplesLeaf: 1,
      minWeightFractionLeaf: 0,
      maxFeatures: null,
      randomState: 1,
      maxLeafNodes: 50,
      minImpurityDecrease: 0,
      minImpuritySplit: null,
    });
  });

  it('is internally consistent: sample counts add up, values are weighted means, thresholds are 0.19 float32 midpoints', () => {
    expect(t.nNodeSamples[0]).toBe(5250); // the last TimeSeriesSplit fold of 7,000 rows
    let leafRows = 0;
    for (let i = 0; i < t.nodeCount; i++) {
      expect(t.weightedNNodeSamples[i]).toBe(t.nNodeSamples[i]);
      expect(t.impurity[i]).toBeGreaterThanOrEqual(-1e-12);
      const l = t.leftChild[i];
      const r = t.rightChild[i];
      if (l === -1) {
        leafRows += t.nNodeSamples[i];
        expect([t.feature[i], t.threshold[i], r]).toEqual([-2, -2, -1]);
        continue;
      }
      expect(t.feature[i]).toBeGreaterThanOrEqual(0);
      expect(t.feature[i]).toBeLessThan(171);
      expect(t.nNodeSamples[l] + t.nNodeSamples[r]).toBe(t.nNodeSamples[i]);
      const mixed = (t.value[l] * t.nNodeSamples[l] + t.value[r] * t.nNodeSamples[r]) / t.nNodeSamples[i];
      expect(Math.abs(mixed - t.value[i])).toBeLessThan(1e-12);
      // FEATURES.md §5: threshold = float32(a + b) / 2, so twice the threshold is a float32.
      expect(Math.fround(2 * t.threshold[i])).toBe(2 * t.threshold[i]);
    }
    expect(leafRows).toBe(5250);
  });

  it('dispatches as a tree model', () => {
    expect(readSklearnModel(reference('dtree_model.pkl')).kind).toBe('decision_tree_regressor');
  });
});
