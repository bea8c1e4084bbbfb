import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateSyntheticBars } from '../../src/data/index.js';
import { getFeatureSet } from '../../src/features/index.js';
import { regressionMetrics } from '../../src/models/metrics.js';
import { baselines } from '../../src/training/baselines.js';
import { modelRows, train } from '../../src/training/train.js';
import { needsReference, referenceFile, writeReferenceBundle, tempDir } from '../helpers/reference.js';

const plainMean = (xs: ArrayLike<number>) => Array.from(xs).reduce((s, x) => s + x, 0) / xs.length;
const constant = (n: number, x: number) => new Array<number>(n).fill(x);

describe('baselines: persistence and the training mean, scored on the model\'s rows', () => {
  const trainTargets = [1.0, 1.02, 0.98, 1.04];
  const evalTargets = [1.01, 0.99, 1.03];

  it('persistence forecasts 1 and the training mean forecasts the mean of the training targets, each scored on the evaluation rows', () => {
    const b = baselines(trainTargets, evalTargets, { mae: 0, mse: 0, r2: 1, rows: 3 });
    expect(b.persistence.prediction).toBe(1);
    expect(b.persistence.metrics).toEqual(regressionMetrics(evalTargets, [1, 1, 1]));
    expect(b.trainingMean.prediction).toBeCloseTo(1.01, 15);
    expect(b.trainingMean.metrics).toEqual(regressionMetrics(evalTargets, constant(3, b.trainingMean.prediction)));
    expect(b.persistence.metrics.rows).toBe(3);
  });

  it('the model beats a baseline only with a strictly lower MSE', () => {
    const persistenceMse = regressionMetrics(evalTargets, [1, 1, 1]).mse;
    const model = (mse: number) => ({ mae: 0, mse, r2: 0, rows: 3 });
    expect(baselines(trainTargets, evalTargets, model(persistenceMse / 2)).persistence.modelBeats).toBe(true);
    expect(baselines(trainTargets, evalTargets, model(persistenceMse)).persistence.modelBeats).toBe(false);
    expect(baselines(trainTargets, evalTargets, model(persistenceMse * 2)).persistence.modelBeats).toBe(false);
    // The training mean (1.01) is closer to these targets than 1 is: a model can beat one and not the other.
    const between = baselines(trainTargets, evalTargets, model(persistenceMse * 0.99));
    expect([between.persistence.modelBeats, between.trainingMean.modelBeats]).toEqual([true, false]);
  });
});

describe('train() records the baselines of the test set and of every fold', () => {
  const series = generateSyntheticBars({ seed: 3, bars: 900 });
  const { manifest } = train({ series, source: { file: 'synthetic', sha256: '0' }, featureSet: 'causal', model: 'linear', cvSplits: 3 });
  const y = modelRows(getFeatureSet('causal').computeBatch(series)).y;
  const { learnRows } = manifest.training;

  it('test baselines: on the test rows, the training mean being the learn rows\' mean target', () => {
    const b = manifest.metrics.baselines!;
    const yTest = manifest.evaluation.yTrue;
    expect(b.persistence.metrics).toEqual(regressionMetrics(yTest, constant(yTest.length, 1)));
    expect(b.trainingMean.prediction).toBeCloseTo(plainMean(y.slice(0, learnRows)), 14);
    expect(b.trainingMean.metrics.rows).toBe(yTest.length);
    expect(b.persistence.modelBeats).toBe(manifest.metrics.test.mse < b.persistence.metrics.mse);
  });

  it('fold baselines: on each fold\'s validation rows, the training mean being that fold\'s training rows\' mean target', () => {
    expect(manifest.training.folds).toHaveLength(3);
    for (const f of manifest.training.folds) {
      const yValidation = Array.from(y.slice(...f.validation));
      expect(f.baselines!.persistence.metrics).toEqual(regressionMetrics(yValidation, constant(yValidation.length, 1)));
      expect(f.baselines!.trainingMean.prediction).toBeCloseTo(plainMean(y.slice(...f.train)), 14);
      expect(f.baselines!.trainingMean.metrics.rows).toBe(f.validation[1] - f.validation[0]);
    }
    // Each fold learns from more rows than the one before, so their training means differ.
    expect(new Set(manifest.training.folds.map((f) => f.baselines!.trainingMean.prediction)).size).toBe(3);
  });
});

needsReference('MSFT.csv', 'MSFT_y_learn.csv', 'dtree_model.pkl', 'scaler_ml.pkl').describe('importSklearn() records baselines on the same test rows (MSFT reference)', () => {
  it('persistence on the 961 test rows, and the mean of the seed\'s own learn targets (MSFT_y_learn.csv)', async () => {
    const { manifest } = await writeReferenceBundle(tempDir());
    const b = manifest.metrics.baselines!;
    const yTest = manifest.evaluation.yTrue;
    expect(b.persistence.metrics.rows).toBe(961);
    expect(b.persistence.metrics).toEqual(regressionMetrics(yTest, constant(961, 1)));
    const seedLearnTargets = readFileSync(referenceFile('MSFT_y_learn.csv'), 'utf8').trim().split('\n').slice(1).map(Number);
    expect(seedLearnTargets).toHaveLength(7000);
    expect(b.trainingMean.prediction).toBeCloseTo(plainMean(seedLearnTargets), 14);
    expect(b.trainingMean.metrics).toEqual(regressionMetrics(yTest, constant(961, b.trainingMean.prediction)));
    expect(manifest.training.folds).toEqual([]);
  });
});
