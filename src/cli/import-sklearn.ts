import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ForecastError } from '../errors.js';
import { getFeatureSet } from '../features/index.js';
import { importSklearn } from '../training/import.js';
import { bundleIdentity, checkBundleOut, forceOption, METRICS_HEADER, metricsRows, parseIntOption, readSource, skipNullRowsOption, table, writeBundleOut } from './common.js';
import { checkChoice } from './train.js';

async function readArtifact(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new ForecastError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 404, 'file_not_found');
  }
}

export function registerImportSklearn(program: Command): void {
  program
    .command('import-sklearn')
    .description('make a bundle from pickled scikit-learn artifacts (read without Python, nothing executed), evaluated on the CSV\'s test rows')
    .requiredOption('--model <file>', 'pickled DecisionTreeRegressor or LinearRegression')
    .requiredOption('--scaler <file>', 'pickled (or joblib-dumped) StandardScaler')
    .requiredOption('--csv <file>', 'the bars the model was evaluated on')
    .requiredOption('--out <dir>', 'bundle folder to write; models/NAME/VERSION names the bundle NAME@VERSION, as `forecast serve --models models` serves it')
    .addOption(forceOption())
    .addOption(skipNullRowsOption())
    .option('--features <set>', 'feature set the model was trained on: reference or causal', 'reference')
    .option('--learn-rows <n>', 'model rows that were used for learning (default 7,000 for the reference set)', parseIntOption('--learn-rows'))
    .option('--name <name>', 'model name (default: NAME of an --out ending in NAME/VERSION, else <features>-sklearn)')
    .option('--model-version <version>', 'model version (default: VERSION of an --out ending in NAME/VERSION, else a UTC timestamp such as 20261126T174301)')
    .action(async (opts) => {
      const features = checkChoice('--features', opts.features, ['reference', 'causal']) as 'reference' | 'causal';
      const identity = bundleIdentity(opts.out, opts);
      await checkBundleOut(opts.out, opts.force);
      const [modelPickle, scalerPickle] = await Promise.all([readArtifact(opts.model), readArtifact(opts.scaler)]);
      const { series, source } = await readSource(opts.csv, getFeatureSet(features).numberParsing, { skipNullRows: opts.skipNullRows });
      const { manifest } = importSklearn({ modelPickle, scalerPickle, series, source, featureSet: features, learnRows: opts.learnRows, name: identity.name, version: identity.version });
      await writeBundleOut(opts.out, manifest, series, opts.force);
      console.log(`imported ${String(manifest.hyperparameters.model)} (scikit-learn ${String(manifest.hyperparameters.sklearnVersion ?? 'unknown')}) with the ${features} feature set`);
      const rows = metricsRows(`test (${manifest.evaluation.dates[0]} .. ${manifest.evaluation.dates.at(-1)})`, manifest.metrics.test, manifest.metrics.baselines);
      console.log(table(METRICS_HEADER, rows));
      console.log(`\nbundle written to ${opts.out} (${manifest.name}@${manifest.version})`);
    });
}
