/**
 * The tree's one traversal, as its exporters and verify's diagnosis ask it: the decision path ends
 * where predict ends, its comparisons are predict's (float32 inputs against double thresholds), and
 * the leaf values and subtree queries agree with it. The expansion names its outputs' terms in the
 * order it computes them.
 */
import { describe, expect, it } from 'vitest';
import { createMatrix } from '../../src/models/matrix.js';
import { PolynomialFeatures } from '../../src/models/polynomial.js';
import { DecisionTreeRegressor } from '../../src/models/tree/index.js';

function randomData(rows: number, cols: number, seed: number) {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const X = createMatrix(rows, cols);
  for (let i = 0; i < X.data.length; i++) X.data[i] = next() * 10 - 5;
  const y = Float64Array.from({ length: rows }, (_, r) => Math.sin(X.data[r * cols]) + X.data[r * cols + 1] * 0.1 + next() * 0.01);
  return { X, y };
}

describe('DecisionTreeRegressor: decision paths, leaf values, subtrees', () => {
  const { X, y } = randomData(400, 4, 3);
  const tree = new DecisionTreeRegressor({ maxDepth: 7 }).fit(X, y);
  const state = tree.state!;

  it('walks every row to the leaf predict lands in, comparing what predict compares', () => {
    for (let r = 0; r < 100; r++) {
      const x = X.data.subarray(r * 4, (r + 1) * 4);
      const path = tree.decisionPath(x);
      expect(path.length).toBeGreaterThan(0);
      expect(path[0].node).toBe(0);
      for (let k = 0; k < path.length; k++) {
        const step = path[k];
        expect(step.value).toBe(Math.fround(x[step.feature]));
        expect(step.goesLeft).toBe(step.value <= step.threshold);
        const taken = step.goesLeft ? state.leftChild[step.node] : state.rightChild[step.node];
        expect(step.other).toBe(step.goesLeft ? state.rightChild[step.node] : state.leftChild[step.node]);
        // The next step starts at the child taken; the last child taken is the leaf.
        if (k + 1 < path.length) expect(path[k + 1].node).toBe(taken);
        else expect(taken).toBe(tree.applyRow(x));
      }
    }
  });

  it('knows its leaf values, and which subtree holds a value', () => {
    const leaves = tree.leafValues();
    expect(leaves.size).toBeGreaterThan(1);
    for (let r = 0; r < 50; r++) {
      const x = X.data.subarray(r * 4, (r + 1) * 4);
      const v = tree.predictRow(x);
      expect(leaves.has(v)).toBe(true);
      expect(tree.subtreeHolds(0, v)).toBe(true);
      const path = tree.decisionPath(x);
      // The leaf reached holds it; along the path, the branch taken always does.
      expect(tree.subtreeHolds(tree.applyRow(x), v)).toBe(true);
      for (const step of path) expect(tree.subtreeHolds(step.goesLeft ? state.leftChild[step.node] : state.rightChild[step.node], v)).toBe(true);
    }
    expect(leaves.has(1234.5)).toBe(false);
    expect(tree.subtreeHolds(0, 1234.5)).toBe(false);
  });
});

describe('PolynomialFeatures: output terms', () => {
  it('names and terms in scikit-learn order, one term list per output column', () => {
    const p = new PolynomialFeatures().fit(createMatrix(1, 3));
    expect(p.outputTerms()).toEqual([[], [0], [1], [2], [0, 0], [0, 1], [0, 2], [1, 1], [1, 2], [2, 2]]);
    expect(p.featureNames(['a', 'b', 'c'])).toEqual(['1', 'a', 'b', 'c', 'a^2', 'a b', 'a c', 'b^2', 'b c', 'c^2']);
    expect(p.outputTerms()).toHaveLength(PolynomialFeatures.outputCount(3));
  });
});
