import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { loadBundle } from '../bundle/io.js';
import { getFeatureSet } from '../features/index.js';
import { ForecastError } from '../errors.js';
import { modelRows } from '../training/train.js';
import { readSource, skipNullRowsOption } from './common.js';
import { checkChoice } from './train.js';

export function registerFeatures(program: Command): void {
  program
    .command('features')
    .description('write the model-row feature matrix of a CSV (scaled by a bundle\'s scaler when given)')
    .requiredOption('--csv <file>', 'bars')
    .requiredOption('--out <file>', 'CSV to write: date, the features, y (next bar\'s return)')
    .option('--set <name>', 'feature set: reference or causal', 'causal')
    .option('--bundle <dir>', 'scale with this bundle\'s StandardScaler')
    .addOption(skipNullRowsOption())
    .action(async (opts: { csv: string; out: string; set: string; bundle?: string; skipNullRows?: boolean }) => {
      const set = getFeatureSet(checkChoice('--set', opts.set, ['reference', 'causal']) as 'reference' | 'causal');
      const bundle = opts.bundle ? await loadBundle(opts.bundle) : null;
      if (bundle && bundle.manifest.featureSet.name !== set.name)
        throw new ForecastError(`bundle ${bundle.id} uses the ${bundle.manifest.featureSet.name} feature set, not ${set.name}`, 422, 'invalid_option');
      const { series } = await readSource(opts.csv, set.numberParsing, { skipNullRows: opts.skipNullRows });
      const rows = modelRows(set.computeBatch(series));
      const X = bundle ? bundle.pipeline.scaler.transform(rows.X) : rows.X;
      const lines = [['date', ...set.featureNames, 'y'].join(',')];
      for (let i = 0; i < X.rows; i++) {
        const cells = Array.from(X.data.subarray(i * X.cols, (i + 1) * X.cols), String);
        lines.push([rows.dates[i], ...cells, String(rows.y[i])].join(','));
      }
      await writeFile(opts.out, lines.join('\n') + '\n');
      console.log(`${X.rows} model rows x ${X.cols} features (${bundle ? `scaled by ${bundle.id}` : 'unscaled'}) written to ${opts.out}`);
    });
}
