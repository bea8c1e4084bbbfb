import type { BarSeries } from '../data/bars.js';
import type { BundleManifest, FoldReport } from '../bundle/types.js';
import { BUNDLE_FORMAT_VERSION } from '../bundle/types.js';
import { ForecastError } from '../errors.js';
import { getFeatureSet } from '../features/index.js';
import type { FeatureSet, FeatureSetName, FeatureTable } from '../features/types.js';
import {
  csvRoundTrip,
  DecisionTreeRegressor,
  FeaturePipeline,
  LinearRegression,
  PolynomialFeatures,
  regressionMetrics,
  StandardScaler,
  TimeSeriesSplit,
  takeRows,
  type Estimator,
  type Matrix,
} from '../models/index.js';
import { createMatrix } from '../models/matrix.js';
import { featureDistribution } from '../monitor/drift.js';
import { baselines, meanOfMetrics } from './baselines.js';
import { DEFAULT_LEARN_FRACTION, MODERN_RECIPE, REFERENCE_RECIPE, type Recipe, type TreeHyperparameters } from './recipe.js';

export interface TrainOptions {
  series: BarSeries;
  /** Name and sha256 of the source data, recorded in the manifest. */
  source: { file: string; sha256: string };
  featureSet: FeatureSetName;
  model: 'tree' | 'linear';
  learnRows?: number;
  cvSplits?: number;
  tree?: Partial<Omit<TreeHyperparameters, 'thresholdRule'>>;
  name?: string;
  version?: string;
  onProgress?: (step: string, done: number, total: number) => void;
}

export interface ModelRows {
  /** Raw (unscaled) features, one row per model row. */
  X: Matrix;
  y: Float64Array;
  dates: string[];
  /** Index of each model row's bar in the history. */
  barIndex: number[];
}

/** The model rows of a feature table (FEATURES.md §4): features defined, target and look-ahead known. */
export function modelRows(table: FeatureTable): ModelRows {
  const start = table.modelRowStart;
  const end = table.modelRowEnd;
  const n = Math.max(0, end - start);
  const k = table.values.cols;
  const X = createMatrix(n, k);
  X.data.set(table.values.data.subarray(start * k, end * k));
  const y = table.target.slice(start, end);
  const dates = table.dates.slice(start, end);
  const barIndex = Array.from({ length: n }, (_, i) => start + i);
  return { X, y, dates, barIndex };
}

/** Which recipe applies: the reference recipe only for reference features with no hyperparameters given. */
export function chooseRecipe(options: Pick<TrainOptions, 'featureSet' | 'model' | 'tree' | 'learnRows' | 'cvSplits'>): Recipe {
  const anyHyper = options.tree && Object.values(options.tree).some((v) => v !== undefined);
  return options.featureSet === 'reference' && options.model === 'tree' && !anyHyper ? REFERENCE_RECIPE : MODERN_RECIPE;
}

export interface TrainResult {
  manifest: BundleManifest;
  pipeline: FeaturePipeline;
  recipe: Recipe;
  tree: { nodes: number; leaves: number; depth: number } | null;
}

function makeModel(kind: 'tree' | 'linear', hyper: TreeHyperparameters): Estimator {
  if (kind === 'linear') return new LinearRegression();
  return new DecisionTreeRegressor({
    maxDepth: hyper.maxDepth ?? undefined,
    minSamplesSplit: hyper.minSamplesSplit,
    minSamplesLeaf: hyper.minSamplesLeaf,
    maxLeafNodes: hyper.maxLeafNodes ?? undefined,
    randomState: hyper.randomState,
    thresholdRule: hyper.thresholdRule,
  });
}

/**
 * Trains and evaluates a model the way the seed did (FEATURES.md §4-§5): model rows split into
 * learn and test rows; a scaler fitted on the learn rows; TimeSeriesSplit folds over the learn rows,
 * the final model being the last fold's; test-set forecasts and metrics.
 */
export function train(options: TrainOptions): TrainResult {
  const progress = options.onProgress ?? (() => undefined);
  const featureSet = getFeatureSet(options.featureSet);
  const recipe = chooseRecipe(options);
  const hyper: TreeHyperparameters = { ...recipe.tree, ...stripUndefined(options.tree ?? {}) };
  const cvSplits = options.cvSplits ?? recipe.cvSplits;

  progress('features', 0, 1);
  const table = featureSet.computeBatch(options.series);
  const rows = modelRows(table);
  // The seed's targets went through the same CSV round trip as its features (FEATURES.md §5).
  if (recipe.csvRoundTrip) rows.y = rows.y.map(csvRoundTrip);
  progress('features', 1, 1);
  const n = rows.X.rows;
  const learnRows = options.learnRows ?? recipe.learnRows ?? Math.round(n * DEFAULT_LEARN_FRACTION);
  if (!Number.isInteger(learnRows) || learnRows < cvSplits + 1 || learnRows >= n)
    throw new ForecastError(
      `--learn-rows ${learnRows} does not fit: the data has ${n} model rows; learn rows must be at least ${cvSplits + 1} and leave at least one test row`,
      422,
      'invalid_option',
    );

  const learnX = takeRows(rows.X, 0, learnRows);
  const scaler = new StandardScaler().fit(learnX);
  const expansion = recipe.polynomialDegree ? new PolynomialFeatures(recipe.polynomialDegree).fit(learnX) : null;
  // The pipeline transforms matrices exactly as it transforms one served row.
  const scaffold = new FeaturePipeline(featureSet, scaler, expansion, makeModel(options.model, hyper), recipe.csvRoundTrip);
  const inputs = scaffold.transform(rows.X);

  const folds: FoldReport[] = [];
  let finalModel: Estimator | null = null;
  let fitRows: [number, number] = [0, learnRows];
  const splits = [...new TimeSeriesSplit({ nSplits: cvSplits }).split(learnRows)];
  for (const [f, split] of splits.entries()) {
    progress('cross-validation', f, splits.length);
    const model = makeModel(options.model, hyper);
    const [ts, te] = split.train;
    const [vs, ve] = split.test;
    model.fit(takeRows(inputs, ts, te), rows.y.slice(ts, te));
    const pred = model.predict(takeRows(inputs, vs, ve));
    const yValidation = rows.y.slice(vs, ve);
    const metrics = regressionMetrics(yValidation, pred);
    folds.push({ fold: f + 1, train: [ts, te], validation: [vs, ve], metrics, baselines: baselines(rows.y.slice(ts, te), yValidation, metrics) });
    finalModel = model;
    fitRows = [ts, te];
  }
  progress('cross-validation', splits.length, splits.length);
  if (!finalModel) throw new ForecastError('no cross-validation fold was produced', 422, 'invalid_option');
  const model = finalModel;

  const pipeline = new FeaturePipeline(featureSet, scaler, expansion, model, recipe.csvRoundTrip);
  const testPred = model.predict(takeRows(inputs, learnRows, n));
  const yTest = rows.y.slice(learnRows, n);
  const testMetrics = regressionMetrics(yTest, testPred);
  const series = options.series;
  const state = model.state!;
  const treeInfo =
    state.kind === 'decision_tree_regressor'
      ? { nodes: state.nodeCount, leaves: state.leftChild.filter((c) => c === -1).length, depth: state.maxDepth }
      : null;

  const manifest: BundleManifest = {
    ...manifestHeader({ name: options.name ?? `${options.featureSet}-${options.model}`, version: options.version, origin: 'train', series, source: options.source }),
    featureSet: manifestFeatureSet(featureSet, recipe.csvRoundTrip),
    scaler: scaler.state!,
    expansion: expansion?.state ?? null,
    model: state,
    hyperparameters: options.model === 'tree' ? { model: 'tree', recipe: recipe.name, ...hyper } : { model: 'linear', recipe: recipe.name },
    training: { learnRows, fitRows, folds },
    // The training mean is the learn rows' (all the test set's past), as the scaler is fitted on them.
    metrics: { test: testMetrics, cv: meanOfMetrics(folds.map((f) => f.metrics)), baselines: baselines(rows.y.slice(0, learnRows), yTest, testMetrics) },
    evaluation: { dates: rows.dates.slice(learnRows), yTrue: Array.from(yTest), yPred: Array.from(testPred) },
    // The raw features of the learn rows (the scaler's rows): the reference of the service's drift report.
    featureDistribution: featureDistribution(featureSet.featureNames, learnX),
  };
  return { manifest, pipeline, recipe, tree: treeInfo };
}

/** The identity and provenance fields every manifest starts with. */
export function manifestHeader(o: {
  name: string;
  version?: string;
  origin: BundleManifest['origin'];
  series: BarSeries;
  source: { file: string; sha256: string };
}): Pick<BundleManifest, 'formatVersion' | 'name' | 'version' | 'createdAt' | 'origin' | 'source' | 'historyFile'> {
  const now = new Date().toISOString();
  const dates = o.series.date;
  return {
    formatVersion: BUNDLE_FORMAT_VERSION,
    name: o.name,
    // Default version: a sortable UTC timestamp, e.g. 20261126T174301.
    version: o.version ?? now.replace(/[-:]/g, '').replace(/\..*/, ''),
    createdAt: now,
    origin: o.origin,
    source: { file: o.source.file, sha256: o.source.sha256, firstDate: dates[0], lastDate: dates[dates.length - 1], bars: dates.length },
    historyFile: 'history.csv',
  };
}

/** The feature-set record of a manifest: what a loader needs to rebuild the same features. */
export function manifestFeatureSet(featureSet: FeatureSet, csvRoundTrip: boolean): BundleManifest['featureSet'] {
  return {
    name: featureSet.name,
    featureNames: [...featureSet.featureNames],
    lookahead: featureSet.lookahead,
    numberParsing: featureSet.numberParsing,
    caveats: [...featureSet.caveats],
    csvRoundTrip,
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
