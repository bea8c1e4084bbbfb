import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DRIFT_BINS,
  DriftHistogram,
  driftLevel,
  driftReport,
  featureDistribution,
  MIN_DRIFT_ROWS,
  populationStabilityIndex,
  PSI_EPSILON,
  type FeatureDistribution,
} from '../../src/monitor/drift.js';

/** mulberry32 and Box-Muller: seeded standard normal draws. */
function normals(seed: number, n: number, mean = 0, sd = 1): number[] {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;
  };
  return Array.from({ length: n }, () => mean + sd * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

const column = (xs: readonly number[]) => xs.map((x) => [x]);
const histogramOf = (d: FeatureDistribution, rows: readonly ArrayLike<number>[]) => {
  const h = new DriftHistogram(d);
  for (const r of rows) h.add(r);
  return h;
};
const sum = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0);

describe('featureDistribution: quantile bins of the training rows', () => {
  it('1..100 in deciles: edges 11, 21, ..., 91 and a tenth in each bin (bin k is [e_{k-1}, e_k))', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i); // order does not matter
    const d = featureDistribution(['x'], column(values));
    expect(d.bins).toBe(DRIFT_BINS);
    expect(d.features).toHaveLength(1);
    const f = d.features[0];
    expect(f.name).toBe('x');
    expect(f.edges).toEqual([11, 21, 31, 41, 51, 61, 71, 81, 91]);
    expect(f.proportions).toEqual(new Array(10).fill(0.1));
    expect([f.rows, f.nonFinite]).toEqual([100, 0]);
    // A value on an edge belongs to the bin the edge opens.
    const h = histogramOf(d, [[10.999], [11], [20.999], [21], [91], [1e9], [-1e9]]);
    expect(Array.from(h.counts[0])).toEqual([2, 2, 1, 0, 0, 0, 0, 0, 0, 2]);
  });

  it('ties merge edges and an edge at the minimum is dropped: every bin holds training rows', () => {
    // 60 zeros, then 1..40: the 10%..50% quantiles are all 0 (the minimum).
    const values = [...new Array(60).fill(0), ...Array.from({ length: 40 }, (_, i) => i + 1)];
    const f = featureDistribution(['x'], column(values)).features[0];
    expect(f.edges).toEqual([1, 11, 21, 31]);
    expect(f.proportions).toEqual([0.6, 0.1, 0.1, 0.1, 0.1]);
    // A constant feature: one bin.
    const c = featureDistribution(['c'], column(new Array(30).fill(-0))).features[0];
    expect(c.edges).toEqual([]);
    expect(c.proportions).toEqual([1]);
  });

  it('non-finite values are left out and counted; a Matrix and an array of rows give the same', () => {
    const rows = [[1, NaN], [2, 5], [3, Infinity], [4, 6], [Number.NEGATIVE_INFINITY, 7]];
    const d = featureDistribution(['a', 'b'], rows, 4);
    expect(d.features.map((f) => [f.rows, f.nonFinite])).toEqual([[4, 1], [3, 2]]);
    expect(d.features[0].edges).toEqual([2, 3, 4]);
    const m = { rows: 5, cols: 2, data: Float64Array.from(rows.flat()) };
    expect(featureDistribution(['a', 'b'], m, 4)).toEqual(d);
    // No finite value at all: no edge, shares of zero.
    expect(featureDistribution(['z'], column([NaN, NaN])).features[0]).toEqual({ name: 'z', edges: [], proportions: [0], rows: 0, nonFinite: 2 });
  });

  it('is plain JSON: it survives a round trip unchanged', () => {
    const d = featureDistribution(['a', 'b'], normals(1, 500).map((x, i) => [x, i % 7]));
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
  });

  it('property: strictly increasing finite edges, no empty bin, shares summing to 1, bins as defined', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.double({ noNaN: true }), fc.integer({ min: -3, max: 3 }), fc.constant(NaN)), { minLength: 1, maxLength: 300 }), fc.integer({ min: 2, max: 20 }), (values, bins) => {
        const f = featureDistribution(['x'], column(values), bins).features[0];
        const finite = values.filter(Number.isFinite);
        expect(f.rows).toBe(finite.length);
        expect(f.nonFinite).toBe(values.length - finite.length);
        expect(f.edges.length).toBeLessThanOrEqual(bins - 1);
        f.edges.forEach((e, j) => {
          expect(Number.isFinite(e)).toBe(true);
          if (j > 0) expect(e).toBeGreaterThan(f.edges[j - 1]);
        });
        expect(f.proportions).toHaveLength(f.edges.length + 1);
        if (finite.length === 0) return;
        expect(Math.abs(sum(f.proportions) - 1)).toBeLessThanOrEqual(1e-12);
        expect(f.proportions.every((p) => p > 0)).toBe(true);
        // Bin k = the number of edges <= v, counted naively.
        const naive = new Array(f.edges.length + 1).fill(0);
        for (const v of finite) naive[f.edges.filter((e) => e <= v).length]++;
        expect(f.proportions).toEqual(naive.map((c) => c / finite.length));
      }),
    );
  });
});

describe('populationStabilityIndex and the levels', () => {
  it('is Σ (a − e) ln(a / e) over shares floored at 1e-4; 0 for equal shares; NaN without counts', () => {
    expect(populationStabilityIndex([0.5, 0.5], [10, 10])).toBe(0);
    const expected = (0.8 - 0.5) * Math.log(0.8 / 0.5) + (0.2 - 0.5) * Math.log(0.2 / 0.5);
    expect(populationStabilityIndex([0.5, 0.5], [8, 2])).toBeCloseTo(expected, 15);
    const floored = (PSI_EPSILON - 0.5) * Math.log(PSI_EPSILON / 0.5) + (1 - 0.5) * Math.log(1 / 0.5);
    expect(populationStabilityIndex([0.5, 0.5], [0, 4])).toBeCloseTo(floored, 15);
    expect(populationStabilityIndex([0.5, 0.5], [0, 0])).toBeNaN();
    expect(() => populationStabilityIndex([1], [1, 2])).toThrow(RangeError);
  });

  it('the conventional thresholds: < 0.1 stable, < 0.25 moderate, else significant', () => {
    expect([0, 0.0999, 0.1, 0.2499, 0.25, 3].map(driftLevel)).toEqual(['stable', 'stable', 'moderate', 'moderate', 'significant', 'significant']);
  });

  it('property: PSI >= 0', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.nat(1000)), { minLength: 1, maxLength: 12 }), (bins) => {
        const e = bins.map(([p]) => p);
        const a = bins.map(([, c]) => c);
        const psi = populationStabilityIndex(e, a);
        if (sum(a) > 0) expect(psi).toBeGreaterThanOrEqual(0);
        else expect(psi).toBeNaN();
      }),
    );
  });
});

describe('DriftHistogram', () => {
  const train = normals(7, 2000).map((x, i) => [x, 3 * normals(1000 + i, 1)[0] + 10]);
  const d = featureDistribution(['a', 'b'], train);

  it('counts rows per bin, non-finite values apart, and refuses a row of the wrong width', () => {
    const h = histogramOf(d, [[0, 10], [NaN, 10], [0, Infinity]]);
    expect(h.total).toBe(3);
    expect(Array.from(h.nonFinite)).toEqual([1, 1]);
    expect(h.counts.map((c) => sum(Array.from(c)))).toEqual([2, 2]);
    expect(() => h.add([1])).toThrow(/a row of 1 features; the distribution has 2/);
    expect(h.total).toBe(3);
  });

  it('merging two histograms gives the histogram of both; counts survive a JSON round trip', () => {
    const live = normals(9, 300, 0.3).map((x, i) => [x, i % 3 === 0 ? NaN : x * 3 + 10]);
    const one = histogramOf(d, live.slice(0, 120));
    const two = histogramOf(d, live.slice(120));
    const both = histogramOf(d, live);
    expect(one.merge(two).toCounts()).toEqual(both.toCounts());
    const copy = DriftHistogram.fromCounts(d, JSON.parse(JSON.stringify(both)));
    expect(copy.toCounts()).toEqual(both.toCounts());
    expect(copy.total).toBe(300);
    // The same bins, as another process would rebuild them from the bundle: mergeable too.
    const elsewhere = DriftHistogram.fromCounts(JSON.parse(JSON.stringify(d)), both.toCounts());
    expect(new DriftHistogram(d).merge(elsewhere).toCounts()).toEqual(both.toCounts());
  });

  it('refuses to merge over other bins, and counts that do not fit the distribution', () => {
    const other = featureDistribution(['a', 'b'], normals(8, 100).map((x) => [x, x]));
    expect(() => new DriftHistogram(d).merge(new DriftHistogram(other))).toThrow(/different bins/);
    const good = histogramOf(d, [[0, 10]]).toCounts();
    const bad: [string, (c: any) => void, RegExp][] = [
      ['total', (c) => (c.total = -1), /total/],
      ['features', (c) => c.features.pop(), /1 features; the distribution has 2/],
      ['name', (c) => (c.features[1].name = 'z'), /features\[1\] is not "b"/],
      ['counts', (c) => (c.features[0].counts = [1]), /features\[0\]\.counts/],
      ['fraction', (c) => (c.features[0].counts[0] = 0.5), /features\[0\]\.counts/],
      ['sum', (c) => (c.total = 2), /does not add up to total 2/],
    ];
    for (const [what, edit, message] of bad) {
      const c = structuredClone(good);
      edit(c);
      expect(() => DriftHistogram.fromCounts(d, c), what).toThrow(message);
    }
  });

  it('property: merge of two histograms equals one histogram of both', () => {
    const row = fc.tuple(fc.oneof(fc.double(), fc.integer({ min: -3, max: 3 })), fc.oneof(fc.double({ min: 0, max: 20 }), fc.constant(NaN)));
    fc.assert(
      fc.property(fc.array(row), fc.array(row), (xs, ys) => {
        expect(histogramOf(d, xs).merge(histogramOf(d, ys)).toCounts()).toEqual(histogramOf(d, [...xs, ...ys]).toCounts());
      }),
    );
  });
});

describe('driftReport', () => {
  const train = normals(11, 5000);
  const d = featureDistribution(['x'], column(train));

  it('the training data against itself: PSI 0, stable', () => {
    const r = driftReport(d, histogramOf(d, column(train)));
    expect(r.state).toBe('ok');
    expect(r.rows).toBe(5000);
    expect(r.features).toHaveLength(1);
    expect(r.features[0].psi).toBeCloseTo(0, 12);
    expect(r.features[0].level).toBe('stable');
    expect(r.level).toBe('stable');
  });

  it(`a fresh sample of the same distribution is stable, even of only ${MIN_DRIFT_ROWS} rows; shifted by +2σ it is significant`, () => {
    for (let seed = 0; seed < 20; seed++) expect(driftReport(d, histogramOf(d, column(normals(100 + seed, MIN_DRIFT_ROWS)))).level, `seed ${seed}`).not.toBe('significant');
    const same = driftReport(d, histogramOf(d, column(normals(12, 1000))));
    expect(same.features[0].level).toBe('stable');
    expect(same.features[0].psi).toBeLessThan(0.1);
    const shifted = driftReport(d, histogramOf(d, column(normals(13, 1000, 2))));
    expect(shifted.features[0].level).toBe('significant');
    expect(shifted.features[0].psi).toBeGreaterThan(1);
    expect(shifted.level).toBe('significant');
    expect(shifted.reason).toMatch(/significant drift .* in x over 1000 live rows/);
    // A small shift (0.4σ: PSI about 0.4² = 0.16) lands between the thresholds.
    const moderate = driftReport(d, histogramOf(d, column(normals(14, 5000, 0.4))));
    expect(moderate.features[0].level).toBe('moderate');
  });

  it(`insufficient below ${MIN_DRIFT_ROWS} live rows; per feature, too few finite values give no PSI`, () => {
    const few = driftReport(d, histogramOf(d, column(normals(15, MIN_DRIFT_ROWS - 1))));
    expect(few.state).toBe('insufficient_data');
    expect(few.features).toEqual([{ name: 'x', psi: null, level: null, count: MIN_DRIFT_ROWS - 1, non_finite: 0 }]);
    expect(few.reason).toBe(`${MIN_DRIFT_ROWS - 1} live rows; drift is reported from ${MIN_DRIFT_ROWS} on`);
    expect(driftReport(d, histogramOf(d, column(normals(15, MIN_DRIFT_ROWS)))).state).toBe('ok');

    const d2 = featureDistribution(['x', 'y'], train.map((x) => [x, x]));
    const n = 2 * MIN_DRIFT_ROWS;
    const r = driftReport(d2, histogramOf(d2, normals(16, n).map((x, i) => [x, i <= MIN_DRIFT_ROWS ? NaN : x])));
    expect(r.state).toBe('ok');
    expect(r.features[0].psi).not.toBeNull();
    expect(r.features[1]).toEqual({ name: 'y', psi: null, level: null, count: MIN_DRIFT_ROWS - 1, non_finite: MIN_DRIFT_ROWS + 1 });
    expect(r.level).toBe(r.features[0].level);
  });

  it('unavailable without a distribution (a bundle from before format version 2)', () => {
    const r = driftReport(undefined, undefined);
    expect(r).toMatchObject({ state: 'unavailable', level: null, features: [], rows: 0 });
    expect(r.reason).toMatch(/records no training feature distribution/);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });
});
