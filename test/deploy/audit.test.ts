/**
 * `forecast audit-causality`: a feature that reads later bars is found by replaying a history, not
 * by trusting a feature set's declaration. Reference set: `atr` and nothing else; causal set: nothing.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBundle, writeBundle, type LoadedBundle, sha256 } from '../../src/bundle/index.js';
import type { Bar, BarSeries } from '../../src/data/bars.js';
import { generateSyntheticBars, writeBarsCsv } from '../../src/data/index.js';
import { causalFeatureSet, referenceFeatureSet } from '../../src/features/index.js';
import type { FeatureSet } from '../../src/features/types.js';
import { train } from '../../src/training/train.js';
import { auditCausality, type CausalityAudit } from '../../src/verify/index.js';
import { runCli } from '../helpers/cli.js';
import { needsReference, referenceFile, tempDir } from '../helpers/reference.js';

const series = generateSyntheticBars({ seed: 3, bars: 700, startDate: '2016-01-04' });

async function trainedBundle(dir: string, featureSet: 'reference' | 'causal'): Promise<LoadedBundle> {
  const { manifest } = train({
    series,
    source: { file: 'synthetic(seed=3)', sha256: sha256(writeBarsCsv(series)) },
    featureSet,
    model: 'tree',
    tree: { maxDepth: 8 },
    name: featureSet,
    version: '1',
  });
  await writeBundle(dir, manifest, series);
  return loadBundle(dir);
}

/**
 * A feature set that declares no look-ahead but has one: `centred` averages a close with its
 * neighbours, the later one two bars ahead once it arrives.
 */
function centredSet(): FeatureSet {
  const names = ['close', 'centred'];
  return {
    name: 'causal',
    featureNames: names,
    numberParsing: 'exact',
    lookahead: 0,
    caveats: [],
    warmupBars: 1,
    computeBatch: () => {
      throw new Error('not used');
    },
    createEngine: () => {
      const closes: number[] = [];
      return {
        get length() {
          return closes.length;
        },
        append: (bar: Bar) => void closes.push(bar.close),
        featuresAt: (i: number, out: Float64Array) => {
          const later = closes[Math.min(i + 2, closes.length - 1)];
          out[0] = closes[i];
          out[1] = i === 0 ? Number.NaN : (closes[i - 1] + closes[i] + later) / 3;
        },
      };
    },
  };
}

describe('auditCausality', () => {
  it('finds atr, one bar late, in the reference set and nothing else', () => {
    const a = auditCausality(referenceFeatureSet, series);
    expect(a.leaks.map((l) => l.feature)).toEqual(['atr']);
    const atr = a.leaks[0];
    expect(atr.delayBars).toBe(1);
    // Up to the newest bars (the recipe's dropped final row keeps the last ones provisional, FEATURES.md §4).
    expect(atr.lastDate >= series.date[series.date.length - 3]).toBe(true);
    expect(atr.datesChanged).toBeGreaterThan(50);
    expect(atr.maxAbsChange).toBeGreaterThan(0);
    expect(a.declaredLookahead).toBe(1);
    expect(a.forecasts).toBeNull();
  });

  it('finds nothing in the causal set', () => {
    const a = auditCausality(causalFeatureSet, series);
    expect(a.leaks).toEqual([]);
    expect(a).toMatchObject({ featureSet: 'causal', declaredLookahead: 0, bars: 700, firstDate: series.date[0], lastDate: series.date[699] });
  });

  it('does not trust the declaration: an undeclared two-bar look-ahead is found and measured', () => {
    const a = auditCausality(centredSet(), series);
    // Bars 1 .. n-2: each first seen without its later neighbour (bar 0 is undefined, bar n-1 never completed).
    expect(a.leaks.map((l) => [l.feature, l.delayBars, l.datesChanged])).toEqual([['centred', 2, 698]]);
    // A horizon shorter than the delay still finds the leak, without measuring its delay.
    expect(auditCausality(centredSet(), series, null, { horizon: 1 }).leaks[0].delayBars).toBeNull();
  });

  it('counts the forecasts a leak moves, through the bundle pipeline', async () => {
    const tmp = tempDir('forecast-audit-');
    try {
      const bundle = await trainedBundle(join(tmp, 'ref'), 'reference');
      const a = auditCausality(bundle.pipeline.featureSet, series, bundle.pipeline);
      expect(a.forecasts!.compared).toBeGreaterThan(400);
      // With one leaking feature, "all features first seen" and "atr alone first seen" move the same forecasts.
      expect(a.leaks[0].forecastsChanged).toBe(a.forecasts!.changed);
      expect(a.forecasts!.changed).toBeLessThanOrEqual(a.leaks[0].datesChanged);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('forecast audit-causality', () => {
  const tmp = tempDir('forecast-audit-cli-');
  beforeAll(async () => {
    await trainedBundle(join(tmp, 'reference'), 'reference');
    await trainedBundle(join(tmp, 'causal'), 'causal');
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('names atr on a reference bundle, exit 0 unless --fail-on-leak', async () => {
    const r = await runCli('audit-causality', join(tmp, 'reference'));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^atr\s+\d+\s/m);
    expect(r.stdout).toContain('LOOK-AHEAD: atr reads later bars');
    const strict = await runCli('audit-causality', join(tmp, 'reference'), '--fail-on-leak');
    expect(strict.code).toBe(1);
    expect(strict.stderr).toContain('look-ahead found: atr of the reference feature set read later bars');
  });

  it('reports nothing on a causal bundle, even with --fail-on-leak; --json is machine-readable', async () => {
    const r = await runCli('audit-causality', join(tmp, 'causal'), '--fail-on-leak', '--json');
    expect(r.code).toBe(0);
    const audit = JSON.parse(r.stdout) as CausalityAudit & { leak: boolean; bundle: string };
    expect(audit).toMatchObject({ bundle: 'causal@1', leak: false, leaks: [], featureSet: 'causal', bars: 700 });
    expect(audit.forecasts!.changed).toBe(0);
  });

  it('replays another CSV with --csv', async () => {
    const other: BarSeries = generateSyntheticBars({ seed: 4, bars: 400 });
    const csv = join(tmp, 'other.csv');
    writeFileSync(csv, writeBarsCsv(other));
    const r = await runCli('audit-causality', join(tmp, 'reference'), '--csv', csv, '--json');
    expect(r.code).toBe(0);
    const audit = JSON.parse(r.stdout) as CausalityAudit;
    expect(audit.bars).toBe(400);
    expect(audit.leaks.map((l) => l.feature)).toEqual(['atr']);
  });
});

needsReference('MSFT.csv', 'dtree_model.pkl', 'scaler_ml.pkl').describe('audit-causality on the reference MSFT bundle', () => {
  const tmp = tempDir('forecast-audit-msft-');
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('names atr and nothing else, on the scikit-learn tree imported from the pickles', async () => {
    const dir = join(tmp, 'msft');
    const made = await runCli(
      'import-sklearn', '--model', referenceFile('dtree_model.pkl'), '--scaler', referenceFile('scaler_ml.pkl'),
      '--features', 'reference', '--csv', referenceFile('MSFT.csv'), '--out', dir, '--name', 'msft', '--model-version', '1',
    );
    expect(made.code).toBe(0);
    const r = await runCli('audit-causality', dir, '--json');
    const audit = JSON.parse(r.stdout) as CausalityAudit;
    expect(audit.bars).toBe(8163);
    expect(audit.leaks.map((l) => [l.feature, l.delayBars])).toEqual([['atr', 1]]);
    // The look-ahead moves real forecasts of the seed's tree, not only feature values.
    expect(audit.forecasts!.changed).toBeGreaterThan(0);
  });
});
