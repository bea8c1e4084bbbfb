import type { BarSeries } from '../data/bars.js';
import type { BundleManifest } from '../bundle/types.js';
import { ForecastError } from '../errors.js';
import { getFeatureSet } from '../features/index.js';
import type { FeatureSetName } from '../features/types.js';
import { readSklearnModel, readSklearnScaler } from '../interop/index.js';
import { csvRoundTrip, FeaturePipeline, modelFromState, PolynomialFeatures, regressionMetrics, StandardScaler, takeRows } from '../models/index.js';
import { featureDistribution } from '../monitor/drift.js';
import { baselines } from './baselines.js';
import { DEFAULT_LEARN_FRACTION, REFERENCE_RECIPE } from './recipe.js';
import { manifestFeatureSet, manifestHeader, modelRows } from './train.js';

export interface ImportOptions {
  modelPickle: Uint8Array;
  scalerPickle: Uint8Array;
  series: BarSeries;
  source: { file: string; sha256: string };
  featureSet: FeatureSetName;
  learnRows?: number;
  name?: string;
  version?: string;
}

/**
 * A bundle from scikit-learn artifacts: the pickled scaler and model, with features computed by this
 * project from the CSV, evaluated on the test rows exactly like a trained bundle.
 */
export function importSklearn(options: ImportOptions): { manifest: BundleManifest; pipeline: FeaturePipeline } {
  const featureSet = getFeatureSet(options.featureSet);
  const scalerState = readSklearnScaler(options.scalerPickle);
  const imported = readSklearnModel(options.modelPickle);
  const k = featureSet.featureNames.length;
  if (scalerState.mean.length !== k)
    throw new ForecastError(`the scaler was fitted on ${scalerState.mean.length} features; the ${featureSet.name} feature set has ${k}`, 422, 'incompatible_artifacts');
  const expansionWidth = PolynomialFeatures.outputCount(k);
  let expansion: PolynomialFeatures | null = null;
  if (imported.state.nFeatures === expansionWidth) expansion = PolynomialFeatures.fromState({ degree: 2, nInputFeatures: k, nOutputFeatures: expansionWidth });
  else if (imported.state.nFeatures !== k)
    throw new ForecastError(
      `the model takes ${imported.state.nFeatures} inputs; the ${featureSet.name} feature set gives ${k} (or ${expansionWidth} after degree-2 expansion)`,
      422,
      'incompatible_artifacts',
    );

  const table = featureSet.computeBatch(options.series);
  const rows = modelRows(table);
  const n = rows.X.rows;
  const learnRows = options.learnRows ?? (featureSet.name === 'reference' ? REFERENCE_RECIPE.learnRows! : Math.round(n * DEFAULT_LEARN_FRACTION));
  if (learnRows < 1 || learnRows >= n)
    throw new ForecastError(`--learn-rows ${learnRows} does not fit: the data has ${n} model rows`, 422, 'invalid_option');
  // The seed evaluated its model on scaled matrices read back from CSV (FEATURES.md §5).
  const roundTrip = featureSet.name === 'reference';
  const pipeline = new FeaturePipeline(featureSet, StandardScaler.fromState(scalerState), expansion, modelFromState(imported.state), roundTrip);
  const testX = takeRows(rows.X, learnRows, n);
  const yPred = pipeline.predict(testX);
  // The seed read its test targets back from CSV too (FEATURES.md §5).
  const yTrue = roundTrip ? rows.y.slice(learnRows, n).map(csvRoundTrip) : rows.y.slice(learnRows, n);
  // The learn rows' targets as the seed read them, for the training-mean baseline.
  const yLearn = roundTrip ? rows.y.slice(0, learnRows).map(csvRoundTrip) : rows.y.slice(0, learnRows);
  const testMetrics = regressionMetrics(yTrue, yPred);
  const manifest: BundleManifest = {
    ...manifestHeader({ name: options.name ?? `${featureSet.name}-sklearn`, version: options.version, origin: 'import-sklearn', series: options.series, source: options.source }),
    featureSet: manifestFeatureSet(featureSet, roundTrip),
    scaler: scalerState,
    expansion: expansion?.state ?? null,
    model: imported.state,
    hyperparameters: { model: imported.className, sklearnVersion: imported.sklearnVersion, ...imported.params },
    training: { learnRows, fitRows: [0, 0], folds: [] },
    metrics: { test: testMetrics, cv: null, baselines: baselines(yLearn, yTrue, testMetrics) },
    evaluation: { dates: rows.dates.slice(learnRows), yTrue: Array.from(yTrue), yPred: Array.from(yPred) },
    // The raw features of the learn rows (which the imported scaler was fitted on, as the seed did):
    // the reference of the service's drift report.
    featureDistribution: featureDistribution(featureSet.featureNames, takeRows(rows.X, 0, learnRows)),
  };
  return { manifest, pipeline };
}
