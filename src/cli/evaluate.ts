import { basename, join } from 'node:path';
import type { Command } from 'commander';
import { addBundleFiles, loadBundle } from '../bundle/io.js';
import type { LoadedBundle } from '../bundle/types.js';
import { METRICS_HEADER, metricsRows, progressReporter, readSource, skipNullRowsOption, table } from './common.js';

/**
 * `evaluate BUNDLE --csv LATER.csv`: the bundle scored on bars after its history by the live
 * monitoring itself (./evaluate-later.ts), printed as `forecast monitor` prints it.
 */
async function evaluateOnLaterBars(bundle: LoadedBundle, csv: string, opts: { json?: boolean; skipNullRows?: boolean }): Promise<void> {
  const { series } = await readSource(csv, bundle.manifest.featureSet.numberParsing, { skipNullRows: opts.skipNullRows });
  // fastify, the store and the monitoring are loaded only for this: the other commands start without them.
  const [{ evaluateLater }, { describeMonitoring }] = await Promise.all([import('./evaluate-later.js'), import('./monitor.js')]);
  const progress = progressReporter();
  const file = basename(csv);
  const result = await (async () => {
    try {
      return await evaluateLater(bundle, series, file, (done, total) => progress.update(`forecasting the bars of ${file} one request each`, done, total));
    } finally {
      progress.stop();
    }
  })();
  if (opts.json) {
    console.log(JSON.stringify(result.report, null, 2));
    return;
  }
  const m = bundle.manifest;
  console.log(`${bundle.id}: ${m.featureSet.name} features, ${m.model.kind}, trained on ${m.source.file} (${m.source.firstDate} .. ${m.source.lastDate})`);
  console.log(
    `scored on ${file}: ${result.newBars} bar${result.newBars === 1 ? '' : 's'} after its history (${result.firstDate} .. ${result.lastDate}), ` +
      `each sent as one request to the service run in this process, and scored by its live monitoring` +
      (result.oldBars > 0 ? `; ${result.oldBars} earlier bar${result.oldBars === 1 ? '' : 's'} equal to the bundle's history, skipped` : ''),
  );
  console.log(`(the last bar's forecast is logged but not scored: its next bar is not in the file)\n`);
  console.log(describeMonitoring(result.card, [result.report]));
}

export function registerEvaluate(program: Command): void {
  program
    .command('evaluate')
    .description(
      'verify a bundle, print its test-set metrics and forecasts, and draw its evaluation charts (SVG and PNG) into the bundle folder; ' +
        "with --csv, score it instead on later bars, as the service's live monitoring scores them",
    )
    .argument('<dir>', 'bundle folder')
    .option('--json', 'print metrics and forecasts as JSON (with --csv: the monitoring report)')
    .option('--no-charts', 'do not write charts')
    .option(
      '--csv <file>',
      "score the bundle on this CSV's bars after its history: each is sent as one request to the service, run in this process on an " +
        "in-memory store seeded with the bundle's history, and the service's live monitoring report is printed (windows 20/60/250/all, " +
        "baselines, state, drift); bars up to the history's last date must equal the bundle's and are skipped",
    )
    .addOption(skipNullRowsOption())
    .action(async (dir: string, opts: { json?: boolean; charts: boolean; csv?: string; skipNullRows?: boolean }) => {
      // Loading recomputes every evaluation forecast from the bundle's history and refuses a mismatch.
      const bundle = await loadBundle(dir);
      if (opts.csv !== undefined) return evaluateOnLaterBars(bundle, opts.csv, opts);
      const m = bundle.manifest;
      const { dates, yTrue, yPred } = m.evaluation;
      const charts: string[] = [];
      if (opts.charts) {
        // vega and resvg (~0.4 s, ~25 MiB) are loaded only when a chart is drawn.
        const { bundleBaselines, errorHistogramSpec, foldMetricsSpec, forecastScatterSpec, forecastVsActualSpec, rollingErrorSpec, writeChart } =
          await import('../report/charts.js');
        const title = `${bundle.id}: test set`;
        const baselines = bundleBaselines(m.metrics.baselines);
        const written = [
          await writeChart(forecastScatterSpec({ yTrue, yPred, baselines, title: `${title}, forecast vs actual next-day return` }), join(dir, 'evaluation-forecast')),
          await writeChart(forecastVsActualSpec({ dates, yTrue, yPred, title: `${title}, forecast and actual next-day return by date` }), join(dir, 'evaluation-forecast-series')),
          await writeChart(rollingErrorSpec({ dates, yTrue, yPred, baselines, window: 20, title: `${title}, rolling 20-bar MAE of the model and the baselines` }), join(dir, 'evaluation-rolling-mae')),
          await writeChart(errorHistogramSpec({ errors: yPred.map((p, i) => p - yTrue[i]), title: `${title}, forecast error` }), join(dir, 'evaluation-errors')),
        ];
        // Fold rows are model rows, a contiguous run of the history ending with the test dates (the
        // last learnRows before the first test date), so a row's date is read off the history.
        const historyDates = bundle.history.date;
        const firstModelRow = historyDates.indexOf(dates[0]) - m.training.learnRows;
        const rowDate = (row: number): string | undefined => (firstModelRow >= 0 ? historyDates[firstModelRow + row] : undefined);
        const folds = m.training.folds.map((f) => {
          const [t0, t1, v0, v1] = [f.train[0], f.train[1] - 1, f.validation[0], f.validation[1] - 1].map(rowDate);
          if (!t0 || !t1 || !v0 || !v1) return null;
          const baselineScores = f.baselines && { persistence: f.baselines.persistence.metrics, 'training mean': f.baselines.trainingMean.metrics };
          return { fold: f.fold, train: [t0, t1] as const, validation: [v0, v1] as const, metrics: f.metrics, baselines: baselineScores };
        });
        if (folds.length > 0 && folds.every((f) => f !== null))
          written.push(await writeChart(foldMetricsSpec({ folds, title: `${bundle.id}: cross-validation by fold` }), join(dir, 'evaluation-folds')));
        else if (folds.length > 0) process.stderr.write("warning: the folds chart was not drawn: the folds' rows are not in the bundle's history\n");
        for (const w of written) charts.push(w.svg, w.png);
        await addBundleFiles(dir, charts.map((c) => c.slice(dir.length).replace(/^[\\/]+/, '')));
      }
      if (opts.json) {
        console.log(
          JSON.stringify(
            {
              model: bundle.id,
              featureSet: m.featureSet.name,
              metrics: m.metrics,
              folds: m.training.folds,
              forecasts: dates.map((date, i) => ({ date, y_true: yTrue[i], y_pred: yPred[i] })),
              charts,
            },
            null,
            2,
          ),
        );
        return;
      }
      console.log(`${bundle.id}: ${m.featureSet.name} features, ${m.model.kind}, trained on ${m.source.file} (${m.source.firstDate} .. ${m.source.lastDate})`);
      console.log(`evaluation forecasts reproduced from the bundle's history: ${dates.length} of ${dates.length}, bit for bit\n`);
      const rows = m.training.folds.flatMap((f) => metricsRows(`fold ${f.fold}`, f.metrics, f.baselines));
      rows.push(...metricsRows(`test (${dates[0]} .. ${dates.at(-1)})`, m.metrics.test, m.metrics.baselines));
      console.log(table(METRICS_HEADER, rows));
      if (!m.metrics.baselines) console.log('\nbaselines: not recorded in this bundle (it was made before they were): train or import it again to compare the model with doing nothing');
      if (m.featureSet.caveats.length > 0) console.log(`\nfeature-set caveats:\n${m.featureSet.caveats.map((c) => `  - ${c}`).join('\n')}`);
      if (charts.length > 0) console.log(`\ncharts: ${charts.join(', ')}`);
    });
}
