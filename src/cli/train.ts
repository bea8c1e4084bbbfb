import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { BundleManifest } from '../bundle/types.js';
import type { BarSeries } from '../data/bars.js';
import { getFeatureSet } from '../features/index.js';
import { readSklearnModel, type SklearnModel } from '../interop/index.js';
import { compareTrees, describeTreeDifference } from '../models/tree/index.js';
import { compareLinearModels, describeLinearDifference, FeaturePipeline, modelFromState, regressionMetrics, takeRows } from '../models/index.js';
import { DEFAULT_LEARN_FRACTION, MODERN_RECIPE, REFERENCE_RECIPE, type Recipe } from '../training/recipe.js';
import { modelRows, train } from '../training/train.js';
import { meanFoldBaselines } from '../training/baselines.js';
import {
  bundleIdentity,
  checkBundleOut,
  forceOption,
  METRICS_HEADER,
  metricsRow,
  metricsRows,
  parseIntOption,
  progressReporter,
  readSource,
  skipNullRowsOption,
  table,
  writeBundleOut,
} from './common.js';
import { ForecastError } from '../errors.js';

const MODEL_KIND = { tree: 'decision_tree_regressor', linear: 'linear_regression' } as const;
const KIND_CLASS = { decision_tree_regressor: 'DecisionTreeRegressor', linear_regression: 'LinearRegression' } as const;

/**
 * The pickle to compare with, read and checked before training: a missing file or a pickle of the
 * other model kind is an option error, found before the slow part and before anything is written.
 */
async function readComparisonPickle(path: string, model: 'tree' | 'linear'): Promise<SklearnModel> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    throw new ForecastError(`--compare-sklearn-pickle: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 404, 'file_not_found');
  }
  const pickled = readSklearnModel(buf);
  if (pickled.kind !== MODEL_KIND[model])
    throw new ForecastError(
      `--compare-sklearn-pickle ${path} holds a ${KIND_CLASS[pickled.kind]}, but --model ${model} grows a ${KIND_CLASS[MODEL_KIND[model]]}: ` +
        `compare with a pickled ${KIND_CLASS[MODEL_KIND[model]]}, or train --model ${model === 'tree' ? 'linear' : 'tree'}`,
      400,
      'invalid_option',
    );
  return pickled;
}

/** The comparison line, and the pickled model's test metrics through this bundle's scaler and features. */
function comparePickled(pickled: SklearnModel, path: string, m: BundleManifest, pipeline: FeaturePipeline, series: BarSeries): { line: string; row: string[] } {
  let line: string;
  if (pickled.kind === 'decision_tree_regressor' && m.model.kind === 'decision_tree_regressor') {
    const diff = compareTrees(m.model, pickled.state);
    line = diff === null ? `tree equals ${path} in every node, bit for bit` : `tree differs from ${path}: ${describeTreeDifference(diff)}`;
  } else if (pickled.kind === 'linear_regression' && m.model.kind === 'linear_regression') {
    line = `linear model vs ${path}: ${describeLinearDifference(compareLinearModels(m.model, pickled.state))}`;
  } else throw new ForecastError(`--compare-sklearn-pickle ${path} holds a ${KIND_CLASS[pickled.kind]}; the trained model is a ${KIND_CLASS[m.model.kind]}`, 400, 'invalid_option');
  const other = new FeaturePipeline(pipeline.featureSet, pipeline.scaler, pipeline.expansion, modelFromState(pickled.state), pipeline.roundTrip);
  const mr = modelRows(pipeline.featureSet.computeBatch(series));
  const pred = other.predict(takeRows(mr.X, m.training.learnRows, mr.X.rows));
  const what = pickled.kind === 'decision_tree_regressor' ? 'tree' : 'linear model';
  return { line, row: metricsRow(`test, pickled ${what}`, regressionMetrics(mr.y.slice(m.training.learnRows), pred)) };
}

/** Fewer test rows than this, or a smaller share of the model rows, and the test metrics are mostly noise. */
const MIN_TEST_ROWS = 30;
const MIN_TEST_SHARE = 0.1;

/**
 * A warning when a bundle's test set is too small for its metrics to mean much (a year of bars, 252,
 * leaves the causal set 52 model rows, 6 of them for testing); null otherwise.
 */
function smallTestSetWarning(m: BundleManifest): string | null {
  const testRows = m.evaluation.dates.length;
  const modelRows = m.training.learnRows + testRows;
  if (testRows >= MIN_TEST_ROWS && testRows >= MIN_TEST_SHARE * modelRows) return null;
  const share = ((100 * testRows) / modelRows).toFixed(1);
  // Bars that give no model row: the features' warm-up, and the last bar (its next return is unknown).
  const unused = m.source.bars - modelRows;
  const barsForEnoughTestRows = Math.ceil(MIN_TEST_ROWS / (1 - DEFAULT_LEARN_FRACTION)) + unused;
  const advice =
    testRows < MIN_TEST_ROWS
      ? `use a longer history: of its ${m.source.bars} bars, ${unused} give no model row (the features' warm-up), and about ${barsForEnoughTestRows} bars give ${MIN_TEST_ROWS} test rows at the default split`
      : 'give the test set more rows with a lower --learn-rows';
  return `warning: the test set is only ${testRows} rows (${share}% of ${modelRows} model rows): its metrics say little; ${advice}`;
}

/** A recipe setting's default for --help, read from the recipes so the help cannot drift from them. */
function recipeDefault(pick: (r: Recipe) => number | null, show: (x: number | null) => string = String): string {
  const [modern, reference] = [pick(MODERN_RECIPE), pick(REFERENCE_RECIPE)];
  return modern === reference ? `default ${show(modern)}` : `default ${show(modern)}; ${show(reference)} under the reference recipe`;
}

const SPLIT_HELP = `
How the model rows are split: a model row is a bar whose features and next-bar return are all
defined (the first bars go to the features' warm-up). The rows stay in time order, never shuffled:
the oldest --learn-rows rows are learned from, the rest, the most recent, are the test set, scored
once at the end. The --cv folds are TimeSeriesSplit folds over the learn rows; the bundle's model is
the last fold's.

Recipes: --features reference --model tree with no tree option given trains the seed system's
reference recipe (its learn rows, scikit-learn 0.19's threshold rule, its CSV round trip); anything
else trains the modern recipe.`;

export function registerTrain(program: Command): void {
  const learnShare = `${Math.round(DEFAULT_LEARN_FRACTION * 100)}% of the model rows`;
  program
    .command('train')
    .description('train and evaluate a model on a CSV of daily bars and write a bundle')
    .requiredOption('--csv <file>', 'Yahoo CSV (Date,Open,High,Low,Close,Adj Close,Volume) or date,open,high,low,close,volume')
    .requiredOption('--out <dir>', 'bundle folder to write; models/NAME/VERSION names the bundle NAME@VERSION, as `forecast serve --models models` serves it')
    .addOption(forceOption())
    .addOption(skipNullRowsOption())
    .option('--features <set>', 'feature set: reference (the seed, quirks included) or causal', 'causal')
    .option('--model <kind>', 'tree or linear', 'tree')
    .option(
      '--learn-rows <n>',
      `the oldest model rows, learned from; the rest are the test set (${recipeDefault((r) => r.learnRows, (x) => (x === null ? learnShare : String(x)))})`,
      parseIntOption('--learn-rows'),
    )
    .option('--cv <k>', `TimeSeriesSplit folds over the learn rows (${recipeDefault((r) => r.cvSplits)})`, parseIntOption('--cv'))
    .option('--max-depth <d>', `tree: maximum depth (${recipeDefault((r) => r.tree.maxDepth, (x) => (x === null ? 'none' : String(x)))})`, parseIntOption('--max-depth'))
    .option('--min-samples-split <s>', `tree: minimum rows to split a node (${recipeDefault((r) => r.tree.minSamplesSplit)})`, parseIntOption('--min-samples-split'))
    .option('--min-samples-leaf <m>', `tree: minimum rows in a leaf (${recipeDefault((r) => r.tree.minSamplesLeaf)})`, parseIntOption('--min-samples-leaf'))
    .option(
      '--max-leaf-nodes <l>',
      `tree: grow best-first up to this many leaves (${recipeDefault((r) => r.tree.maxLeafNodes, (x) => (x === null ? 'none' : String(x)))})`,
      parseIntOption('--max-leaf-nodes'),
    )
    .option('--random-state <seed>', `tree: random_state (${recipeDefault((r) => r.tree.randomState)})`, parseIntOption('--random-state'))
    .option('--name <name>', 'model name (default: NAME of an --out ending in NAME/VERSION, else <features>-<model>)')
    .option('--model-version <version>', 'model version (default: VERSION of an --out ending in NAME/VERSION, else a UTC timestamp such as 20261126T174301)')
    .option('--compare-sklearn-pickle <file>', 'compare with a pickled scikit-learn model of the same kind: a tree node by node, bit for bit; a linear model by coefficient distance')
    .addHelpText('after', SPLIT_HELP)
    .action(async (opts) => {
      const features = checkChoice('--features', opts.features, ['reference', 'causal']) as 'reference' | 'causal';
      const model = checkChoice('--model', opts.model, ['tree', 'linear']) as 'tree' | 'linear';
      const identity = bundleIdentity(opts.out, opts);
      await checkBundleOut(opts.out, opts.force);
      const pickled = opts.compareSklearnPickle ? await readComparisonPickle(opts.compareSklearnPickle, model) : null;
      const { series, source } = await readSource(opts.csv, getFeatureSet(features).numberParsing, { skipNullRows: opts.skipNullRows });
      const progress = progressReporter();
      const result = (() => {
        try {
          return train({
            series,
            source,
            featureSet: features,
            model,
            learnRows: opts.learnRows,
            cvSplits: opts.cv,
            tree: {
              maxDepth: opts.maxDepth,
              minSamplesSplit: opts.minSamplesSplit,
              minSamplesLeaf: opts.minSamplesLeaf,
              maxLeafNodes: opts.maxLeafNodes,
              randomState: opts.randomState,
            },
            name: identity.name,
            version: identity.version,
            onProgress: progress.update,
          });
        } finally {
          progress.stop();
        }
      })();
      const m = result.manifest;
      // Checked before writing: the bundle of a run that fails is never left behind.
      if (pickled && pickled.state.nFeatures !== m.model.nFeatures)
        throw new ForecastError(
          `--compare-sklearn-pickle ${opts.compareSklearnPickle}: the pickled model takes ${pickled.state.nFeatures} inputs; the trained one takes ` +
            `${m.model.nFeatures} (the ${features} set's ${m.featureSet.featureNames.length} features${m.expansion ? ' after degree-2 expansion' : ''}): it was not trained on these features`,
          422,
          'incompatible_artifacts',
        );
      const comparison = pickled ? comparePickled(pickled, opts.compareSklearnPickle, m, result.pipeline, series) : null;
      await writeBundleOut(opts.out, m, series, opts.force);
      console.log(`recipe: ${result.recipe.name}; features: ${features}; model: ${model}; learn rows: ${m.training.learnRows}; test rows: ${m.evaluation.dates.length}`);
      if (result.tree) console.log(`tree: ${result.tree.nodes} nodes, ${result.tree.leaves} leaves, depth ${result.tree.depth}`);
      console.log('');
      const rows = m.training.folds.flatMap((f) =>
        metricsRows(`fold ${f.fold} (train ${f.train[0]}..${f.train[1] - 1}, validate ${f.validation[0]}..${f.validation[1] - 1})`, f.metrics, f.baselines),
      );
      if (m.metrics.cv) {
        rows.push(metricsRow('cross-validation mean', m.metrics.cv));
        const b = meanFoldBaselines(m.training.folds, m.metrics.cv);
        if (b)
          rows.push(
            [...metricsRow('  baseline: persistence (y = 1)', b.persistence), b.beatsPersistence ? 'yes' : 'no'],
            [...metricsRow("  baseline: training mean (each fold's)", b.trainingMean), b.beatsTrainingMean ? 'yes' : 'no'],
          );
      }
      rows.push(...metricsRows(`test (${m.evaluation.dates[0]} .. ${m.evaluation.dates.at(-1)})`, m.metrics.test, m.metrics.baselines));

      if (comparison) {
        console.log(comparison.line);
        rows.push(comparison.row);
      }
      console.log(table(METRICS_HEADER, rows));
      console.log(`\nbundle written to ${opts.out} (${m.name}@${m.version})`);
      const warning = smallTestSetWarning(m);
      if (warning) console.error(warning);
    });
}

export function checkChoice(option: string, value: string, choices: string[]): string {
  if (!choices.includes(value)) throw new ForecastError(`${option} must be one of ${choices.join(', ')}; got "${value}"`, 400, 'invalid_option');
  return value;
}
