import type { Command } from 'commander';
import { loadBundle } from '../bundle/io.js';
import { ForecastError } from '../errors.js';
import { auditCausality, type CausalityAudit } from '../verify/index.js';
import { parseIntOption, readSource, skipNullRowsOption, table } from './common.js';

export function registerAuditCausality(program: Command): void {
  program
    .command('audit-causality')
    .description(
      "replay a history bar by bar through a bundle's feature engine and report every feature whose value for a date changed after later bars " +
        'arrived (a look-ahead), with the forecasts it changes',
    )
    .argument('<bundle>', 'bundle folder (its feature set and model)')
    .option('--csv <file>', "bars to replay, read with the feature set's number parsing (default: the bundle's history)")
    .option('--horizon <bars>', 'bars after each date watched one by one to measure how late a change comes (default 5)', parseIntOption('--horizon'))
    .option('--json', 'print the audit as JSON')
    .option('--fail-on-leak', 'exit 1 when a feature reads later bars')
    .addOption(skipNullRowsOption())
    .action(async (dir: string, opts: { csv?: string; horizon?: number; json?: boolean; failOnLeak?: boolean; skipNullRows?: boolean }) => {
      if (opts.horizon !== undefined && opts.horizon < 1) throw new ForecastError('--horizon must be at least 1', 400, 'invalid_option');
      const bundle = await loadBundle(dir);
      const { featureSet } = bundle.pipeline;
      const series = opts.csv ? (await readSource(opts.csv, featureSet.numberParsing, { skipNullRows: opts.skipNullRows })).series : bundle.history;
      const audit = auditCausality(featureSet, series, bundle.pipeline, { horizon: opts.horizon });
      const source = opts.csv ?? `${bundle.manifest.historyFile} of the bundle`;
      if (opts.json) console.log(JSON.stringify({ bundle: bundle.id, source, leak: audit.leaks.length > 0, ...audit }, null, 2));
      else console.log(describe(bundle.id, source, audit));
      if (opts.failOnLeak && audit.leaks.length > 0)
        throw new ForecastError(`look-ahead found: ${audit.leaks.map((l) => l.feature).join(', ')} of the ${audit.featureSet} feature set read later bars`, 422, 'lookahead_found');
    });
}

function describe(id: string, source: string, a: CausalityAudit): string {
  const out: string[] = [];
  const bars = (n: number) => `${n} bar${n === 1 ? '' : 's'}`;
  out.push(`causality audit of ${id}: ${a.featureSet} feature set (declared look-ahead: ${bars(a.declaredLookahead)})`);
  out.push(`replayed ${source}, ${bars(a.bars)} (${a.firstDate ?? '-'} .. ${a.lastDate ?? '-'}), one at a time through the incremental engine;`);
  out.push("each date's features as first seen (its bar the newest) against their values after the last bar");
  out.push('');
  if (a.leaks.length === 0) {
    out.push(`no feature changed after later bars arrived: every ${a.featureSet} feature is final when its bar is the newest`);
    if (a.declaredLookahead > 0) out.push(`(the set declares a look-ahead of ${bars(a.declaredLookahead)} that this history did not show)`);
    return out.join('\n');
  }
  out.push(
    table(
      ['feature', 'dates changed', 'first', 'last', 'changed until', 'largest change', 'forecasts changed'],
      a.leaks.map((l) => [
        l.feature,
        String(l.datesChanged),
        l.firstDate,
        l.lastDate,
        l.delayBars === null ? `> ${bars(a.horizon)} later` : `${bars(l.delayBars)} later`,
        l.maxAbsChange.toPrecision(6),
        a.forecasts ? String(l.forecastsChanged) : '-',
      ]),
    ),
  );
  out.push('');
  const names = a.leaks.map((l) => l.feature).join(', ');
  out.push(`LOOK-AHEAD: ${names} ${a.leaks.length === 1 ? 'reads' : 'read'} later bars: a forecast made when its bar is the newest uses provisional values.`);
  if (a.forecasts)
    out.push(`Forecasts from first-seen features differ from those from final features on ${a.forecasts.changed} of ${a.forecasts.compared} dates with defined features.`);
  if (a.declaredLookahead === 0) out.push(`The ${a.featureSet} set declares no look-ahead: its definition is wrong.`);
  return out.join('\n');
}
