import { Option, type Command } from 'commander';
import type { MonitoringReport } from '../serve/monitoring.js';
import { ServiceClient } from '../verify/client.js';
import { parseIntOption, table } from './common.js';

interface MonitorCliOptions {
  model: string;
  apiKey?: string;
  json?: boolean;
  watch?: number;
  timeout?: number;
}

interface Card {
  name: string;
  version: string;
  routing: { default_version: string; shadow_version: string | null };
}

/** The service's live monitoring of a model's default and shadow versions, side by side. */
async function readMonitoring(client: ServiceClient, model: string): Promise<{ card: Card; reports: MonitoringReport[] }> {
  const name = encodeURIComponent(model);
  const card = (await client.request<Card>('GET', `/models/${name}`)).body;
  const versions = [card.routing.default_version, ...(card.routing.shadow_version ? [card.routing.shadow_version] : [])];
  const reports = await Promise.all(versions.map(async (v) => (await client.request<MonitoringReport>('GET', `/models/${name}/monitoring?version=${encodeURIComponent(v)}`)).body));
  return { card, reports };
}

const fmt = (x: number | null | undefined, digits = 6) => (x === null || x === undefined || Number.isNaN(x) ? '-' : x.toPrecision(digits));

/** One column per version: state, then each window's model and baseline metrics, then the offline ones. */
export function describeMonitoring(card: Card, reports: readonly MonitoringReport[]): string {
  const header = ['', ...reports.map((r) => `${r.model}@${r.version}${r.version === card.routing.default_version ? ' (default)' : ' (shadow)'}`)];
  const rows: string[][] = [];
  const row = (label: string, cell: (r: MonitoringReport) => string) => rows.push([label, ...reports.map(cell)]);
  row('state', (r) => r.state);
  row('scored / logged', (r) => `${r.log.scored} / ${r.log.logged}`);
  row('drift', (r) => (r.drift.state === 'ok' ? (r.drift.level ?? '-') : r.drift.state));
  const windows = [...new Set(reports.flatMap((r) => r.live.map((w) => w.window)))];
  for (const w of windows) {
    const at = (r: MonitoringReport) => r.live.find((x) => x.window === w);
    const label = w === 'all' ? 'since deployment' : `last ${w}`;
    row(`${label}: MAE`, (r) => fmt(at(r)?.model.mae));
    row(`${label}: R2`, (r) => fmt(at(r)?.model.r2, 4));
    row(`${label}: hit rate`, (r) => fmt(at(r)?.model.hit_rate, 3));
    row(`${label}: persistence MAE`, (r) => fmt(at(r)?.persistence.mae));
  }
  row('offline test MAE', (r) => fmt(r.offline.test.mae));
  row('offline test R2', (r) => fmt(r.offline.test.r2, 4));
  const reasons = reports.map((r) => `${r.model}@${r.version}: ${r.reason}`);
  return `${table(header, rows)}\n\n${reasons.join('\n')}`;
}

export function registerMonitor(program: Command): void {
  program
    .command('monitor')
    .description("print a served model's live accuracy against its offline evaluation: the default version and its shadow side by side")
    .argument('<url>', 'base URL of the service, e.g. http://127.0.0.1:8000')
    .requiredOption('--model <name>', 'model name')
    .addOption(new Option('--api-key <key>', 'API key sent as x-api-key').env('API_KEY'))
    .option('--json', 'print the monitoring reports as JSON')
    .option('--watch <seconds>', 'print again every N seconds until interrupted', parseIntOption('--watch'))
    .option('--timeout <ms>', 'time-out of one request in ms (default 30000)', parseIntOption('--timeout'))
    .action(async (url: string, opts: MonitorCliOptions) => {
      const client = new ServiceClient({ url, apiKey: opts.apiKey, timeoutMs: opts.timeout, retries: 2 });
      for (;;) {
        const { card, reports } = await readMonitoring(client, opts.model);
        console.log(opts.json ? JSON.stringify(reports, null, 2) : `${new Date().toISOString()}  ${url}\n${describeMonitoring(card, reports)}`);
        if (!opts.watch) return;
        await new Promise((resolve) => setTimeout(resolve, opts.watch! * 1000));
      }
    });
}
