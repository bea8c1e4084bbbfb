/** Unit tests of the tree's building blocks: seeding, rand_r, introsort, the frontier heap, compareTrees, the API. */
import { describe, expect, it } from 'vitest';
import { matrixFromRows } from '../../src/models/matrix.js';
import type { TreeState } from '../../src/models/types.js';
import { DecisionTreeRegressor, compareTrees, describeTreeDifference } from '../../src/models/tree/index.js';
import { type FrontierRecord, popFrontier, pushFrontier } from '../../src/models/tree/frontier.js';
import { introsort, introsortGuided } from '../../src/models/tree/introsort.js';
import { RandR, splitterSeed } from '../../src/models/tree/random.js';

describe('random numbers', () => {
  it("derives the splitter state like numpy's RandomState(seed).randint(0, 2^31 - 1)", () => {
    // Values printed by numpy 1.24 (FEATURES.md §7 gives the first two).
    expect(splitterSeed(1)).toBe(1791095845);
    expect(splitterSeed(7)).toBe(327741615);
    expect(splitterSeed(0)).toBe(209652396);
    expect(splitterSeed(42)).toBe(1608637542);
    expect(() => splitterSeed(-1)).toThrow(RangeError);
    expect(() => splitterSeed(2 ** 32)).toThrow(RangeError);
  });

  it("draws scikit-learn's rand_r sequence", () => {
    const r = new RandR(1791095845);
    expect([1, 2, 3, 4, 5, 6].map(() => r.next())).toEqual([1558888167, 1844802812, 774929513, 370465367, 647095288, 1194540911]);
    const zero = new RandR(0);
    const one = new RandR(1);
    expect(zero.next()).toBe(one.next());
    const k = new RandR(5);
    for (let i = 0; i < 1000; i++) {
      const v = k.int(3, 10);
      expect(v >= 3 && v < 10).toBe(true);
    }
  });
});

describe('introsort', () => {
  function lcg(seed: number): () => number {
    let s = seed >>> 0;
    return () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 32;
    };
  }

  it('sorts, moving samples along', () => {
    const rnd = lcg(1);
    const n = 1000;
    const Xf = Float32Array.from({ length: n }, () => Math.floor(rnd() * 50));
    const orig = Xf.slice();
    const samples = Int32Array.from({ length: n }, (_, i) => i);
    introsort(Xf, samples, 0, n);
    for (let i = 1; i < n; i++) expect(Xf[i - 1] <= Xf[i]).toBe(true);
    for (let i = 0; i < n; i++) expect(orig[samples[i]]).toBe(Xf[i]);
  });

  it('guided by a presorted order, leaves exactly the order plain introsort leaves', () => {
    const rnd = lcg(7);
    for (let trial = 0; trial < 300; trial++) {
      const n = 2 + Math.floor(rnd() * 400);
      const start = Math.floor(rnd() * 5);
      const total = start + n + 3;
      const kind = trial % 4;
      const Xf = new Float32Array(total);
      for (let i = 0; i < total; i++) {
        const r = rnd();
        Xf[i] =
          kind === 0 ? Math.floor(r * 10) // heavy ties
          : kind === 1 ? (r < 0.02 ? 0.5 : r) // a few ties
          : kind === 2 ? (r < 0.3 ? (r < 0.15 ? -0 : 0) : r - 0.5) // -0 next to 0
          : Math.fround(r * 1e-6); // distinct, mostly
      }
      const samples = Int32Array.from({ length: total }, (_, i) => 1000 + i);
      const plainX = Xf.slice();
      const plainS = samples.slice();
      introsort(plainX, plainS, start, n);

      // The presorted order of the node: any sorted order (here a stable one).
      const order = Array.from({ length: n }, (_, k) => start + k).sort((a, b) => Xf[a] - Xf[b] || a - b);
      const offset = 17;
      const sortedVal = new Float32Array(offset + total);
      const sortedIdx = new Int32Array(offset + total);
      order.forEach((src, k) => {
        sortedVal[offset + start + k] = Xf[src];
        sortedIdx[offset + start + k] = samples[src];
      });
      const tiePrefix = new Int32Array(total);
      for (let p = start + 1; p < start + n; p++) tiePrefix[p] = tiePrefix[p - 1] + (sortedVal[offset + p] === sortedVal[offset + p - 1] ? 1 : 0);
      const guidedX = Xf.slice();
      const guidedS = samples.slice();
      introsortGuided(guidedX, guidedS, start, n, { sortedVal, sortedIdx, offset, tiePrefix });
      expect(Array.from(guidedS)).toEqual(Array.from(plainS));
      expect(Array.from(guidedX).map((v) => Object.is(v, -0))).toEqual(Array.from(plainX).map((v) => Object.is(v, -0)));
    }
  });
});

describe('frontier', () => {
  it("pops in the order of libstdc++'s push_heap / pop_heap, ties included", () => {
    // Expected sequence printed by a C++ program running the same script with std::push_heap /
    // std::pop_heap on a std::vector, compared by improvement with <.
    const expected = '0 5 7 12 13 6 15 17 21 20 25 28 30 23 26 38 29 39 34 41 36 44 45 37 46 47 50 52 58 48 57 51 55 42 22 63 69 65 66 70 71 72 80 76 77 84 89 90 81 98 99 96 100 102 82 105 112 109 113 101 106 117 116 108 118 85 120 121 124 119 125 128 129 122 91 126 94 83 130 137 139 18 133 143 144 134 145 140 146 147 148 149 160 161 152 163 156 169 162 171 168 170 141 178 177 182 186 190 191 193 194 185 188 197 199 136 202 203 204 206 184 214 217 220 212 223 234 235 237 225 240 244 245 258 259 227 242 256 243 228 252 255 260 254 241 229 232 216 218 221 222 201 192 207 209 215 210 196 187 43 67 172 183 165 1 166 74 159 33 73 158 157 31 3 257 150 251 239 175 250 135 248 246 153 138 35 32 97 54 238 127 49 173 11 4 224 64 142 123 60 8 211 208 230 198 93 14 16 179 10 174 110 219 40 59 95 155 176 56 88 53 226 62 86 61 9 231 27 181 103 213 236 75 92 151 164 111 253 24 2 233 68 114 19 205 189 79 87 78 249 115 180 247 200 195 132 131 167 154 104 107';
    const heap: FrontierRecord[] = [];
    const out: number[] = [];
    let s = 12345;
    const rnd = () => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return (s >>> 16) & 0x7fff;
    };
    let id = 0;
    const rec = (nodeId: number, improvement: number): FrontierRecord => ({
      nodeId, improvement, start: 0, end: 0, pos: 0, depth: 0, isLeaf: false, impurity: 0, impurityLeft: 0, impurityRight: 0,
    });
    for (let step = 0; step < 400; step++) {
      if (heap.length === 0 || rnd() % 3 !== 0) pushFrontier(heap, rec(id++, rnd() % 5));
      else out.push(popFrontier(heap).nodeId);
    }
    while (heap.length > 0) out.push(popFrontier(heap).nodeId);
    expect(out.join(' ')).toBe(expected);
  });
});

describe('compareTrees', () => {
  const base: TreeState = {
    kind: 'decision_tree_regressor', nFeatures: 2, maxDepth: 1, nodeCount: 3,
    leftChild: [1, -1, -1], rightChild: [2, -1, -1], feature: [1, -2, -2], threshold: [0.5, -2, -2],
    impurity: [1, 0, 0], nNodeSamples: [4, 2, 2], weightedNNodeSamples: [4, 2, 2], value: [0.5, 0, 1],
  };
  const clone = (): TreeState => JSON.parse(JSON.stringify(base)) as TreeState;

  it('returns null for identical trees and the first differing node and field otherwise', () => {
    expect(compareTrees(base, clone())).toBeNull();
    const b = clone();
    b.value[2] = 1 + Number.EPSILON;
    b.impurity[1] = 1e-300;
    expect(compareTrees(base, b)).toEqual({ node: 1, field: 'impurity', a: 0, b: 1e-300 });
    const c = clone();
    c.value[1] = -0;
    expect(describeTreeDifference(compareTrees(base, c))).toBe('node 1: value 0 != -0');
    const d = clone();
    d.nFeatures = 3;
    expect(compareTrees(base, d)?.field).toBe('nFeatures');
    const e = clone();
    e.maxDepth = 2;
    expect(compareTrees(base, e)).toEqual({ node: null, field: 'maxDepth', a: 1, b: 2 });
  });

  it('reports a different node count after the common nodes', () => {
    const big = clone();
    big.nodeCount = 5;
    big.leftChild = [1, 3, -1, -1, -1];
    big.rightChild = [2, 4, -1, -1, -1];
    big.feature = [1, 0, -2, -2, -2];
    big.threshold = [0.5, 0.25, -2, -2, -2];
    for (const k of ['impurity', 'nNodeSamples', 'weightedNNodeSamples', 'value'] as const) big[k] = [...base[k], 0, 0];
    expect(compareTrees(base, big)?.node).toBe(1);
    const prefix = clone();
    const longer = { ...clone(), nodeCount: 4, leftChild: [1, -1, -1, -1], rightChild: [2, -1, -1, -1], feature: [1, -2, -2, -2], threshold: [0.5, -2, -2, -2], impurity: [1, 0, 0, 0], nNodeSamples: [4, 2, 2, 0], weightedNNodeSamples: [4, 2, 2, 0], value: [0.5, 0, 1, 0] };
    expect(compareTrees(prefix, longer)).toEqual({ node: 3, field: 'nodeCount', a: 3, b: 4 });
  });
});

describe('DecisionTreeRegressor API', () => {
  const X = matrixFromRows([[0, 1], [1, 1], [2, 0], [3, 0], [4, 1], [5, 0]]);
  const y = Float64Array.from([1, 1, 2, 2, 3, 3]);

  it('validates its parameters', () => {
    expect(() => new DecisionTreeRegressor({ minSamplesSplit: 1 })).toThrow(RangeError);
    expect(() => new DecisionTreeRegressor({ minSamplesLeaf: 0 })).toThrow(RangeError);
    expect(() => new DecisionTreeRegressor({ maxLeafNodes: 1 })).toThrow(RangeError);
    expect(() => new DecisionTreeRegressor({ maxDepth: 0 })).toThrow(RangeError);
    expect(() => new DecisionTreeRegressor({ randomState: 1.5 })).toThrow(RangeError);
    expect(() => new DecisionTreeRegressor({ thresholdRule: 'other' as 'modern' })).toThrow(RangeError);
  });

  it('fits, predicts, and round-trips its state', () => {
    const model = new DecisionTreeRegressor({ randomState: 3 });
    expect(model.state).toBeNull();
    expect(() => model.predictRow([0, 0])).toThrow(/not fitted/);
    model.fit(X, y);
    expect(Array.from(model.predict(X))).toEqual(Array.from(y));
    const state = model.state as TreeState;
    expect(state.kind).toBe('decision_tree_regressor');
    expect(state.nFeatures).toBe(2);
    const again = DecisionTreeRegressor.fromState(JSON.parse(JSON.stringify(state)) as TreeState);
    expect(again.predictRow([2.5, 0])).toBe(model.predictRow([2.5, 0]));
    expect(() => again.predict(matrixFromRows([[1, 2, 3]]))).toThrow(/columns/);
  });

  it("rounds X to float32 for predict, as scikit-learn does", () => {
    // Threshold 0.5 between float32 values 0 and 1; a double just above 0.5 that rounds to
    // float32 0.5 goes left.
    const model = new DecisionTreeRegressor().fit(matrixFromRows([[0], [1]]), Float64Array.from([0, 1]));
    expect((model.state as TreeState).threshold[0]).toBe(0.5);
    expect(model.predictRow([0.5 + 2 ** -40])).toBe(0);
    expect(model.predictRow([0.5 + 2 ** -20])).toBe(1);
  });

  it('refuses non-finite inputs', () => {
    expect(() => new DecisionTreeRegressor().fit(matrixFromRows([[0], [Number.NaN]]), Float64Array.from([0, 1]))).toThrow(/finite/);
    expect(() => new DecisionTreeRegressor().fit(matrixFromRows([[0], [1e39]]), Float64Array.from([0, 1]))).toThrow(/finite/);
    expect(() => new DecisionTreeRegressor().fit(matrixFromRows([[0], [1]]), Float64Array.from([0, Infinity]))).toThrow(/finite/);
    const model = new DecisionTreeRegressor().fit(matrixFromRows([[0], [1]]), Float64Array.from([0, 1]));
    expect(() => model.predictRow([Number.NaN])).toThrow(/finite/);
    expect(() => model.predictRow([Infinity])).toThrow(/finite/);
  });

  it('rejects a malformed state', () => {
    const model = new DecisionTreeRegressor().fit(X, y);
    const bad = JSON.parse(JSON.stringify(model.state)) as TreeState;
    bad.feature[0] = 7;
    expect(() => DecisionTreeRegressor.fromState(bad)).toThrow(/feature/);
    const short = JSON.parse(JSON.stringify(model.state)) as TreeState;
    short.value.pop();
    expect(() => DecisionTreeRegressor.fromState(short)).toThrow(/value/);
  });
});
