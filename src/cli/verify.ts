import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { loadBundle } from '../bundle/io.js';
import { ForecastError } from '../errors.js';
import { ServiceRequestError, verifyDeployment, type DateDifference, type VerifyReport } from '../verify/index.js';
import { formatNumber, metricsRow, parseIntOption, progressReporter, table } from './common.js';

interface VerifyCliOptions {
  url: string;
  apiKey?: string;
  model?: string;
  batch?: number;
  timeout?: number;
  retries?: number;
  json?: boolean;
  chart: boolean;
  chartDir?: string;
}

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description(
      "prove a deployed service reproduces a bundle's evaluation: send the bundle's bars, read the forecast of every evaluation date, " +
        'compare bit for bit, explain the dates that differ, and chart deployed vs offline forecasts',
    )
    .argument('<bundle>', 'bundle folder (the offline evaluation to reproduce)')
    .requiredOption('--url <url>', 'base URL of the deployed service, e.g. http://127.0.0.1:8000 or https://ID.execute-api.REGION.amazonaws.com')
    // commander reads API_KEY itself, so the key need not appear on the command line (and in `ps`).
    .addOption(new Option('--api-key <key>', 'API key sent as x-api-key').env('API_KEY'))
    .option('--model <name>', 'model NAME or NAME@VERSION to verify against (default: the bundle\'s own name, from its manifest)')
    .option('--batch <n>', 'bars per request (default 1000)', parseIntOption('--batch'))
    .option('--timeout <ms>', 'time-out of one request attempt in ms (default 30000)', parseIntOption('--timeout'))
    .option('--retries <n>', 'retries of a request on 429, 5xx, time-outs and network errors (default 5)', parseIntOption('--retries'))
    .option('--json', 'print the report as JSON')
    .option('--chart-dir <dir>', 'folder for the deployment chart, deployment.svg and .png (default ./verify-<name>-<version>)')
    .option('--no-chart', 'do not draw the chart')
    .action(async (dir: string, opts: VerifyCliOptions) => {
      const bundle = await loadBundle(dir);
      // The bundle's own name, not the service's default model: a service with several models would
      // otherwise be sent this bundle's bars for another model, and answer with a history conflict.
      const model = opts.model ?? bundle.manifest.name;
      const progress = progressReporter();
      let report: VerifyReport;
      try {
        report = await verifyDeployment(bundle, {
          url: opts.url,
          apiKey: opts.apiKey,
          model,
          batch: opts.batch,
          timeoutMs: opts.timeout,
          retries: opts.retries,
          onProgress: progress.update,
          onRetry: (r) => process.stderr.write(`retrying ${r.method} ${r.path} in ${r.delayMs} ms (attempt ${r.attempt + 1}; ${r.cause})\n`),
        });
      } catch (err) {
        throw withModelHint(err, model, opts.model === undefined);
      } finally {
        progress.stop();
      }
      let chart: { svg: string; png: string } | null = null;
      if (opts.chart) {
        const outDir = opts.chartDir ?? `verify-${bundle.manifest.name}-${bundle.manifest.version}`;
        try {
          // vega and resvg are loaded only when a chart is drawn.
          const { deploymentComparisonSpec, writeChart } = await import('../report/charts.js');
          chart = await writeChart(
            deploymentComparisonSpec({
              dates: report.forecasts.map((f) => f.date),
              offline: report.forecasts.map((f) => f.offline),
              deployed: report.forecasts.map((f) => f.deployed),
              verdict: { passed: report.passed, differing: report.differing },
              title: `${bundle.id}: deployed (${report.endpoint}) vs offline forecasts`,
            }),
            join(outDir, 'deployment'),
          );
        } catch (err) {
          // The verdict stands without the picture.
          process.stderr.write(`warning: the chart could not be drawn: ${(err as Error).message}\n`);
        }
      }
      if (opts.json) console.log(JSON.stringify({ ...report, chart }, null, 2));
      else console.log(describe(report, chart));
      if (!report.passed) {
        const first = report.differences.map((d) => d.date).slice(0, 3).join(', ');
        throw new ForecastError(
          `verification failed: the service's forecasts differ from ${report.bundle}'s evaluation on ${report.differing} of ${report.dates} dates (first: ${first})`,
          422,
          'verification_failed',
        );
      }
    });
}

/**
 * A service error that the wrong model explains, with the option that names the right one: an
 * unknown model (the service serves the bundle under another name), or a stored history that is not
 * the bundle's (the bars went to another model's history).
 */
function withModelHint(err: unknown, model: string, defaulted: boolean): unknown {
  if (!(err instanceof ServiceRequestError) || (err.serviceCode !== 'unknown_model' && err.serviceCode !== 'history_conflict')) return err;
  const target = defaulted ? `model '${model}', the bundle's name` : `model '${model}' (--model)`;
  const hint = `verify sent the bars to ${target}; if the service serves this bundle under another name, pass --model NAME or --model NAME@VERSION`;
  return new ServiceRequestError(`${err.message}. ${hint}`, err.httpStatus, err.serviceCode, err.serviceDetails, err.serviceMessage);
}

function describe(r: VerifyReport, chart: { svg: string; png: string } | null): string {
  const out: string[] = [];
  out.push(`verify ${r.bundle} against ${r.endpoint}${r.servedModel ? ` (served as ${r.servedModel})` : ''}`);
  out.push(
    `sent ${r.history.barsSent} bars (${r.history.added} new to the service) and read ${r.dates} forecasts: ` +
      `${r.requests} requests, ${r.retries} retries, ${(r.durationMs / 1000).toFixed(1)} s`,
  );
  out.push('');
  if (r.passed) out.push(`PASS: all ${r.dates} evaluation forecasts equal the bundle's, bit for bit`);
  else {
    out.push(`FAIL: ${r.differing} of ${r.dates} evaluation forecasts differ from the bundle's${r.withoutForecast ? ` (${r.withoutForecast} without a forecast)` : ''}`);
    out.push('');
    out.push(
      table(
        ['date', 'offline', 'deployed', 'cause', 'features'],
        r.differences.map((d) => [d.date, formatNumber(d.offline), formatNumber(d.deployed), d.cause, d.features.join(', ') || '-']),
      ),
    );
    out.push('');
    // Dates with the same explanation (typically: the same wrong leaf) are listed once.
    const byExplanation = new Map<string, string[]>();
    for (const d of r.differences) byExplanation.set(explain(d), [...(byExplanation.get(explain(d)) ?? []), d.date]);
    for (const [text, dates] of byExplanation) out.push(`  ${dates.join(', ')}: ${text}`);
    if (r.differing > r.differences.length) out.push(`  ... and ${r.differing - r.differences.length} more (--json lists every date)`);
    for (const note of r.notes) out.push(`  note: ${note}`);
  }
  out.push('');
  const rows = [metricsRow('offline (bundle)', r.metrics.offline)];
  if (r.metrics.deployed) rows.push(metricsRow('deployed (service)', r.metrics.deployed));
  out.push(table(['forecasts', 'n', 'MAE', 'MSE', 'R2'], rows));
  if (chart) out.push(`\nchart: ${chart.svg}, ${chart.png}`);
  return out.join('\n');
}

function explain(d: DateDifference): string {
  return d.provisional ? `${d.explanation} (the service marked it provisional)` : d.explanation;
}
