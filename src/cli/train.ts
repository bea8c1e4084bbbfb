import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { writeBundle } from '../bundle/io.js';
import { getFeatureSet } from '../features/index.js';
import { readSklearnTree } from '../interop/index.js';
import { compareTrees } from '../models/tree/index.js';
import { FeaturePipeline, modelFromState, regressionMetrics, takeRows } from '../models/index.js';
import { modelRows, train } from '../training/train.js';
import { metricsRow, parseIntOption, progressReporter, readSource, table } from './common.js';
import { ForecastError } from '../errors.js';

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train and evaluate a model on a CSV of daily bars and write a bundle')
    .requiredOption('--csv <file>', 'Yahoo CSV (Date,Open,High,Low,Close,Adj Close,Volume) or date,open,high,low,close,volume')
    .requiredOption('--out <dir>', 'bundle folder to write')
    .option('--features <set>', 'feature set: reference (the seed, quirks included) or causal', 'causal')
    .option('--model <kind>', 'tree or linear', 'tree')
    .option('--learn-rows <n>', 'model rows used for learning (the rest are the test set)', parseIntOption('--learn-rows'))
    .option('--cv <k>', 'TimeSeriesSplit folds over the learn rows', parseIntOption('--cv'))
    .option('--max-depth <d>', 'tree: maximum depth', parseIntOption('--max-depth'))
    .option('--min-samples-split <s>', 'tree: minimum rows to split a node', parseIntOption('--min-samples-split'))
    .option('--min-samples-leaf <m>', 'tree: minimum rows in a leaf', parseIntOption('--min-samples-leaf'))
    .option('--max-leaf-nodes <l>', 'tree: grow best-first up to this many leaves', parseIntOption('--max-leaf-nodes'))
    .option('--random-state <seed>', 'tree: random_state', parseIntOption('--random-state'))
    .option('--name <name>', 'model name (default: <features>-<model>)')
    .option('--model-version <version>', 'model version (default: a timestamp)')
    .option('--compare-sklearn-pickle <file>', 'compare the grown tree with a pickled scikit-learn tree, node by node')
    .action(async (opts) => {
      const features = checkChoice('--features', opts.features, ['reference', 'causal']) as 'reference' | 'causal';
      const model = checkChoice('--model', opts.model, ['tree', 'linear']) as 'tree' | 'linear';
      const { series, source } = await readSource(opts.csv, getFeatureSet(features).numberParsing);
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
            name: opts.name,
            version: opts.modelVersion,
            onProgress: progress.update,
          });
        } finally {
          progress.stop();
        }
      })();
      const m = result.manifest;
      await writeBundle(opts.out, m, series);
      console.log(`recipe: ${result.recipe.name}; features: ${features}; model: ${model}; learn rows: ${m.training.learnRows}; test rows: ${m.evaluation.dates.length}`);
      if (result.tree) console.log(`tree: ${result.tree.nodes} nodes, ${result.tree.leaves} leaves, depth ${result.tree.depth}`);
      console.log('');
      const rows = m.training.folds.map((f) => metricsRow(`fold ${f.fold} (train ${f.train[0]}..${f.train[1] - 1}, validate ${f.validation[0]}..${f.validation[1] - 1})`, f.metrics));
      if (m.metrics.cv) rows.push(metricsRow('cross-validation mean', m.metrics.cv));
      rows.push(metricsRow(`test (${m.evaluation.dates[0]} .. ${m.evaluation.dates.at(-1)})`, m.metrics.test));

      if (opts.compareSklearnPickle) {
        const pickled = readSklearnTree(await readFile(opts.compareSklearnPickle));
        const diff = compareTrees(m.model as never, pickled.state as never);
        console.log(diff === null ? `tree equals ${opts.compareSklearnPickle} in every node, bit for bit` : `tree differs from ${opts.compareSklearnPickle}: ${describeDiff(diff)}`);
        // The pickled tree's test metrics, through this bundle's scaler and features.
        const p = result.pipeline;
        const other = new FeaturePipeline(p.featureSet, p.scaler, p.expansion, modelFromState(pickled.state), p.roundTrip);
        const mr = modelRows(p.featureSet.computeBatch(series));
        const pred = other.predict(takeRows(mr.X, m.training.learnRows, mr.X.rows));
        rows.push(metricsRow('test, pickled tree', regressionMetrics(mr.y.slice(m.training.learnRows), pred)));
      }
      console.log(table(['rows', 'n', 'MAE', 'MSE', 'R2'], rows));
      console.log(`\nbundle written to ${opts.out} (${m.name}@${m.version})`);
    });
}

function describeDiff(diff: unknown): string {
  return typeof diff === 'string' ? diff : JSON.stringify(diff);
}

export function checkChoice(option: string, value: string, choices: string[]): string {
  if (!choices.includes(value)) throw new ForecastError(`${option} must be one of ${choices.join(', ')}; got "${value}"`, 400, 'invalid_option');
  return value;
}
