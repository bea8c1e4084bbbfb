/**
 * Bundle format version 2: the manifest's optional featureDistribution (the training quantile bins
 * of every feature, the reference of the drift report). A version-1 bundle without it still loads;
 * a malformed one is a BundleError naming the field.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLE_FORMAT_VERSION, loadBundle } from '../../src/bundle/index.js';
import { DriftHistogram, driftReport } from '../../src/monitor/drift.js';
import { writeTinyBundle } from '../serve/helpers/bundles.js';
import { editManifest, refusal, tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
let n = 0;
const fresh = () => writeTinyBundle(join(tmp.dir, `b${n++}`), { name: 'acme', version: '1', featureSet: 'causal' });

describe('bundle format version 2: featureDistribution', () => {
  it('a new bundle is version 2 and records one distribution per feature, shares summing to 1', async () => {
    expect(BUNDLE_FORMAT_VERSION).toBe(2);
    const bundle = await loadBundle(await fresh());
    const m = bundle.manifest;
    expect(m.formatVersion).toBe(2);
    const d = m.featureDistribution!;
    expect(d.bins).toBe(10);
    expect(d.features.map((f) => f.name)).toEqual(m.featureSet.featureNames);
    for (const f of d.features) {
      expect(f.proportions).toHaveLength(f.edges.length + 1);
      expect(Math.abs(f.proportions.reduce((s, p) => s + p, 0) - 1), f.name).toBeLessThanOrEqual(1e-12);
      expect(f.rows + f.nonFinite, f.name).toBe(m.training.learnRows);
    }
    // The loaded distribution drives a histogram and a report.
    const h = new DriftHistogram(d);
    expect(driftReport(d, h).state).toBe('insufficient_data');
  });

  it('an old (version 1) bundle without it still loads, and reports drift as unavailable', async () => {
    const dir = await fresh();
    editManifest(dir, (m) => {
      m.formatVersion = 1;
      delete m.featureDistribution;
    });
    const bundle = await loadBundle(dir);
    expect(bundle.manifest.formatVersion).toBe(1);
    expect(bundle.manifest.featureDistribution).toBeUndefined();
    const report = driftReport(bundle.manifest.featureDistribution, undefined);
    expect(report.state).toBe('unavailable');
    expect(report.features).toEqual([]);
  });

  it('a bundle newer than version 2 is refused as a newer format', async () => {
    const dir = await fresh();
    editManifest(dir, (m) => (m.formatVersion = 3));
    const err = await refusal(dir);
    expect(err.code).toBe('bundle_newer_format');
    expect(err.message).toMatch(/format version 3, newer than this program reads \(2\)/);
  });

  it('a malformed featureDistribution is a BundleError naming the field', async () => {
    const cases: [string, (m: Record<string, any>) => void, RegExp][] = [
      ['not an object', (m) => (m.featureDistribution = 'deciles'), /featureDistribution is not an object/],
      ['null', (m) => (m.featureDistribution = null), /featureDistribution is not an object/],
      ['bins', (m) => (m.featureDistribution.bins = 1), /featureDistribution\.bins is not a whole number of at least 2/],
      ['one feature short', (m) => m.featureDistribution.features.pop(), /featureDistribution\.features does not have one entry per feature \(17\)/],
      ['name', (m) => (m.featureDistribution.features[2].name = 'close'), /featureDistribution\.features\[2\]\.name is not the feature set's "close_to_high"/],
      ['edges out of order', (m) => m.featureDistribution.features[1].edges.reverse(), /featureDistribution\.features\[1\]\.edges are not at most 9 finite, strictly increasing numbers/],
      ['edge not a number', (m) => (m.featureDistribution.features[0].edges[0] = '0.1'), /featureDistribution\.features\[0\]\.edges/],
      ['proportions length', (m) => m.featureDistribution.features[3].proportions.push(0), /featureDistribution\.features\[3\]\.proportions are not \d+ shares between 0 and 1/],
      ['proportions sum', (m) => (m.featureDistribution.features[4].proportions[0] += 0.01), /featureDistribution\.features\[4\]\.proportions sum to [\d.]+, not 1/],
      ['rows', (m) => (m.featureDistribution.features[5].rows = -1), /featureDistribution\.features\[5\]\.rows is not a whole non-negative number/],
      ['nonFinite', (m) => delete m.featureDistribution.features[6].nonFinite, /featureDistribution\.features\[6\]\.nonFinite/],
    ];
    for (const [what, edit, message] of cases) {
      const dir = await fresh();
      editManifest(dir, edit);
      const err = await refusal(dir);
      expect(err.message, what).toMatch(message);
      expect(err.message, what).toContain('manifest.json in');
      expect(err.code, what).toBe('bundle_invalid');
      expect(err.status, what).toBe(422);
    }
  });
});
