import type { Command } from 'commander';
import { loadBundle } from '../bundle/io.js';
import { readSource, skipNullRowsOption } from './common.js';

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description("forecast the next bar's return for every bar of a CSV whose features are defined")
    .argument('<dir>', 'bundle folder')
    .requiredOption('--csv <file>', 'bars to forecast from (the whole history the features need)')
    .addOption(skipNullRowsOption())
    .option('--json', 'print [{"date":"YYYY-MM-DD","y_pred":n}]')
    .action(async (dir: string, opts: { csv: string; json?: boolean; skipNullRows?: boolean }) => {
      const bundle = await loadBundle(dir);
      const { featureSet } = bundle.pipeline;
      const { series } = await readSource(opts.csv, featureSet.numberParsing, { skipNullRows: opts.skipNullRows });
      const table = featureSet.computeBatch(series);
      const k = table.values.cols;
      const row = new Float64Array(k);
      const out: { date: string; y_pred: number }[] = [];
      for (let i = 0; i < table.dates.length; i++) {
        row.set(table.values.data.subarray(i * k, (i + 1) * k));
        if (!row.every(Number.isFinite)) continue;
        out.push({ date: table.dates[i], y_pred: bundle.pipeline.predictFeatures(row) });
      }
      // JSON.stringify and String print the shortest decimal that reads back as the same double.
      if (opts.json) console.log(JSON.stringify(out));
      else {
        console.log('date,y_pred');
        for (const r of out) console.log(`${r.date},${String(r.y_pred)}`);
      }
      if (featureSet.lookahead > 0 && out.length > 0)
        console.error(`note: the ${featureSet.name} feature set looks ${featureSet.lookahead} bar ahead; the forecast for ${out.at(-1)!.date} uses provisional features`);
    });
}
