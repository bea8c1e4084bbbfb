import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { writeBundle } from '../bundle/io.js';
import { ForecastError } from '../errors.js';
import { getFeatureSet } from '../features/index.js';
import { importSklearn } from '../training/import.js';
import { metricsRow, parseIntOption, readSource, table } from './common.js';
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
    .requiredOption('--out <dir>', 'bundle folder to write')
    .option('--features <set>', 'feature set the model was trained on: reference or causal', 'reference')
    .option('--learn-rows <n>', 'model rows that were used for learning (default 7,000 for the reference set)', parseIntOption('--learn-rows'))
    .option('--name <name>', 'model name (default: <features>-sklearn)')
    .option('--model-version <version>', 'model version (default: a timestamp)')
    .action(async (opts) => {
      const features = checkChoice('--features', opts.features, ['reference', 'causal']) as 'reference' | 'causal';
      const [modelPickle, scalerPickle] = await Promise.all([readArtifact(opts.model), readArtifact(opts.scaler)]);
      const { series, source } = await readSource(opts.csv, getFeatureSet(features).numberParsing);
      const { manifest } = importSklearn({ modelPickle, scalerPickle, series, source, featureSet: features, learnRows: opts.learnRows, name: opts.name, version: opts.modelVersion });
      await writeBundle(opts.out, manifest, series);
      console.log(`imported ${String(manifest.hyperparameters.model)} (scikit-learn ${String(manifest.hyperparameters.sklearnVersion ?? 'unknown')}) with the ${features} feature set`);
      console.log(table(['rows', 'n', 'MAE', 'MSE', 'R2'], [metricsRow(`test (${manifest.evaluation.dates[0]} .. ${manifest.evaluation.dates.at(-1)})`, manifest.metrics.test)]));
      console.log(`\nbundle written to ${opts.out} (${manifest.name}@${manifest.version})`);
    });
}
