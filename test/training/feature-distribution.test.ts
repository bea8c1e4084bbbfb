/** `forecast train` and `forecast import-sklearn` record the training distribution of every feature: its learn rows, raw. */
import { describe, expect, it } from 'vitest';
import { BUNDLE_FORMAT_VERSION } from '../../src/bundle/index.js';
import { generateSyntheticBars } from '../../src/data/index.js';
import { getFeatureSet } from '../../src/features/index.js';
import { takeRows } from '../../src/models/index.js';
import { DriftHistogram, driftReport, featureDistribution } from '../../src/monitor/drift.js';
import { modelRows, train } from '../../src/training/train.js';
import { needsReference, tempDir, writeReferenceBundle } from '../helpers/reference.js';

const sumOf = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0);

describe('train() records featureDistribution over the learn rows, before scaling', () => {
  for (const featureSet of ['causal', 'reference'] as const) {
    it(`${featureSet} features`, () => {
      const series = generateSyntheticBars({ seed: 5, bars: 900 });
      const { manifest } = train({ series, source: { file: 'synthetic', sha256: '0' }, featureSet, model: 'tree', tree: { maxDepth: 4 } });
      expect(manifest.formatVersion).toBe(BUNDLE_FORMAT_VERSION);
      const d = manifest.featureDistribution!;
      const names = getFeatureSet(featureSet).featureNames;
      expect(d.features.map((f) => f.name)).toEqual([...names]);
      for (const f of d.features) expect(Math.abs(sumOf(f.proportions) - 1), f.name).toBeLessThanOrEqual(1e-12);
      // The same as computed here from the raw model rows' first learnRows rows.
      const rows = modelRows(getFeatureSet(featureSet).computeBatch(series));
      const learn = takeRows(rows.X, 0, manifest.training.learnRows);
      expect(d).toEqual(featureDistribution(names, learn));
      // The learn rows against their own distribution: no drift.
      const h = new DriftHistogram(d);
      for (let i = 0; i < learn.rows; i++) h.add(learn.data.subarray(i * learn.cols, (i + 1) * learn.cols));
      const report = driftReport(d, h);
      expect(report.state).toBe('ok');
      for (const f of report.features) expect(f.psi, f.name).toBeCloseTo(0, 12);
    });
  }
});

needsReference('MSFT.csv', 'dtree_model.pkl', 'scaler_ml.pkl').describe('importSklearn() records featureDistribution (MSFT reference)', () => {
  it('one entry per reference feature over the 7,000 learn rows, shares summing to 1', async () => {
    const { manifest, series } = await writeReferenceBundle(tempDir());
    expect(manifest.formatVersion).toBe(BUNDLE_FORMAT_VERSION);
    const d = manifest.featureDistribution!;
    expect(d.features.map((f) => f.name)).toEqual(manifest.featureSet.featureNames);
    expect(manifest.training.learnRows).toBe(7000);
    for (const f of d.features) {
      expect(f.rows + f.nonFinite, f.name).toBe(7000);
      expect(Math.abs(sumOf(f.proportions) - 1), f.name).toBeLessThanOrEqual(1e-12);
    }
    const rows = modelRows(getFeatureSet('reference').computeBatch(series));
    expect(d).toEqual(featureDistribution(manifest.featureSet.featureNames, takeRows(rows.X, 0, 7000)));
  });
});
