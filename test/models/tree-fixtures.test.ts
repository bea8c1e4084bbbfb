/**
 * Every synthetic scikit-learn 1.2.1 fixture (scripts/sklearn_fixtures.py) regrown bit for bit:
 * all node fields of `tree_` and the predictions.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { matrixFromRows } from '../../src/models/matrix.js';
import type { TreeState } from '../../src/models/types.js';
import { DecisionTreeRegressor, compareTrees, describeTreeDifference } from '../../src/models/tree/index.js';

const FIXTURES = new URL('../fixtures/sklearn/', import.meta.url);

type Num = number | 'NaN' | 'Infinity' | '-Infinity';

interface SyntheticFixture {
  name: string;
  description: string;
  params: { maxDepth: number | null; minSamplesSplit: number; minSamplesLeaf: number; maxLeafNodes: number | null; randomState: number };
  X: Num[][];
  y: Num[];
  tree: TreeState;
  predict: { X: Num[][]; y: Num[] };
}

function num(v: Num): number {
  return typeof v === 'number' ? v : Number(v);
}

function decodeTree(t: TreeState): TreeState {
  return { ...t, threshold: t.threshold.map(num), impurity: t.impurity.map(num), value: t.value.map(num), weightedNNodeSamples: t.weightedNNodeSamples.map(num) };
}

const files = readdirSync(FIXTURES).filter((f) => /^synthetic_\d+\.json$/.test(f)).sort();

describe('DecisionTreeRegressor against scikit-learn 1.2.1 fixtures', () => {
  it('has at least 100 synthetic fixtures', () => {
    expect(files.length).toBeGreaterThanOrEqual(100);
  });

  for (const file of files) {
    const fx = JSON.parse(readFileSync(new URL(file, FIXTURES), 'utf8')) as SyntheticFixture;
    it(`${fx.name}: ${fx.description}`, () => {
      const p = fx.params;
      const model = new DecisionTreeRegressor({
        maxDepth: p.maxDepth ?? undefined,
        minSamplesSplit: p.minSamplesSplit,
        minSamplesLeaf: p.minSamplesLeaf,
        maxLeafNodes: p.maxLeafNodes ?? undefined,
        randomState: p.randomState,
      });
      model.fit(matrixFromRows(fx.X.map((r) => r.map(num))), Float64Array.from(fx.y.map(num)));
      const expected = decodeTree(fx.tree);
      const diff = compareTrees(model.state as TreeState, expected);
      expect(describeTreeDifference(diff)).toBe('identical');

      const got = model.predict(matrixFromRows(fx.predict.X.map((r) => r.map(num))));
      const want = fx.predict.y.map(num);
      for (let i = 0; i < want.length; i++) expect(Object.is(got[i], want[i]), `prediction ${i}: ${got[i]} != ${want[i]}`).toBe(true);

      // The state round-trips through JSON and fromState predicts the same.
      const again = DecisionTreeRegressor.fromState(JSON.parse(JSON.stringify(model.state)) as TreeState);
      expect(Array.from(again.predict(matrixFromRows(fx.predict.X.map((r) => r.map(num)))))).toEqual(Array.from(got));
    });
  }
});
