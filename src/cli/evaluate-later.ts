/**
 * `forecast evaluate BUNDLE --csv LATER.csv`: the offline twin of live monitoring. The bundle is
 * served in-process by the real app (`buildApp`, an in-memory SQLite store seeded from the bundle's
 * history, as a fresh deployment's), the file's bars after the history are sent one per request to
 * `POST /models/{name}/forecast` as a client would send each day's new bar, and the answer is the
 * service's own `GET /models/{name}/monitoring` report: the forecasts are logged, scored and judged
 * by the live code path itself, so offline and live figures are computed one way.
 *
 * Loaded by `evaluate` only when --csv is given: it brings in fastify and the store.
 */
import { randomBytes } from 'node:crypto';
import type { LoadedBundle } from '../bundle/types.js';
import type { BarSeries } from '../data/bars.js';
import { ForecastError } from '../errors.js';
import { buildApp } from '../serve/app.js';
import { seriesToSplitJson } from '../serve/bar-table.js';
import type { MonitoringReport } from '../serve/monitoring.js';

/** The model card's part that `describeMonitoring` reads. */
export interface LaterCard {
  name: string;
  version: string;
  routing: { default_version: string; shadow_version: string | null };
}

export interface LaterEvaluation {
  card: LaterCard;
  report: MonitoringReport;
  /** Bars of the file dated up to the history's last date: checked by the service to equal the stored ones, then left alone. */
  oldBars: number;
  /** Bars after the history, each sent as one request. */
  newBars: number;
  historyLastDate: string;
  firstDate: string;
  lastDate: string;
}

/** The largest body the service accepts (config.ts): the first request carries every old bar of the file. */
const MAX_BODY_BYTES = 1024 * 1024 * 1024;

interface ErrorAnswer {
  error?: { code?: string; message?: string; details?: Record<string, unknown> };
}

/** The service's message of a refusal, for a command-line user: without the HTTP-only hints of a conflict. */
function refusal(status: number, body: ErrorAnswer, text: string): { code: string; message: string } {
  const code = body.error?.code ?? String(status);
  const message = body.error?.message ?? text.slice(0, 500);
  if (code !== 'conflict') return { code, message };
  // "row N: the bar of D is already stored with close=X, submitted close=Y (and K more...); send ?replace=true ..."
  return { code, message: message.replace(/^row \d+: /, '').replace(/; send \?replace=true to replace stored bars$/, '') };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

/**
 * Scores `bundle` on the bars of `later` (a file named `file`) after its history, through the real
 * service in this process; resolves with its monitoring report of the bundle's version.
 */
export async function evaluateLater(
  bundle: LoadedBundle,
  later: BarSeries,
  file: string,
  onProgress: (done: number, total: number) => void = () => undefined,
): Promise<LaterEvaluation> {
  const h = bundle.history;
  const historyLastDate = h.date[h.date.length - 1];
  const n = later.date.length;
  // The file's bars are in date order (the CSV reader refuses any other): the old ones come first.
  let first = 0;
  while (first < n && later.date[first] <= historyLastDate) first++;
  if (first === n)
    throw new ForecastError(
      `${file} has no bar after ${historyLastDate}, the last date of ${bundle.id}'s history${n ? ` (its bars run ${later.date[0]} .. ${later.date[n - 1]})` : ''}: ` +
        'evaluate --csv scores a bundle on bars after its training data',
      422,
      'no_later_bars',
    );
  // An old date the history does not hold would be inserted into it, changing the features the bundle was evaluated on.
  const known = new Set(h.date);
  for (let i = 0; i < first; i++)
    if (!known.has(later.date[i]))
      throw new ForecastError(
        `${file}: the bar of ${later.date[i]} is not in ${bundle.id}'s history (${h.date[0]} .. ${historyLastDate}), yet is dated before its end: ` +
          `bars up to ${historyLastDate} must be the bundle's own, and the bars to score come after it`,
        422,
        'not_in_history',
        { date: later.date[i] },
      );

  const key = randomBytes(24).toString('hex');
  const app = await buildApp({ apiKeys: [key], logger: false, bundles: [bundle], sqlitePath: ':memory:', maxBodyBytes: MAX_BODY_BYTES });
  try {
    const name = encodeURIComponent(bundle.manifest.name);
    const version = encodeURIComponent(bundle.manifest.version);
    const headers = { 'x-api-key': key, 'content-type': 'application/json' };
    const get = async <T>(url: string): Promise<T> => {
      const res = await app.inject({ method: 'GET', url, headers: { 'x-api-key': key } });
      const body = parseJson(res.body);
      if (res.statusCode !== 200) {
        const r = refusal(res.statusCode, body as ErrorAnswer, res.body);
        throw new ForecastError(`the service serving ${bundle.id} in this process answered GET ${url} with ${res.statusCode} ${r.code}: ${r.message}`, res.statusCode, r.code);
      }
      return body as T;
    };
    const total = n - first;
    // Request 1: the old bars (the service checks them against the stored history, a 409 naming the
    // first that differs) with the first new bar, so that it, as on a fresh deployment, is the first
    // newest bar whose forecast is logged. Then every later bar in a request of its own.
    for (let i = first; i < n; i++) {
      const start = i === first ? 0 : i;
      const res = await app.inject({
        method: 'POST',
        url: `/models/${name}/forecast`,
        headers,
        payload: JSON.stringify(seriesToSplitJson(later, { start, end: i + 1, dates: 'iso', index: false })),
      });
      if (res.statusCode !== 200) {
        const r = refusal(res.statusCode, parseJson(res.body) as ErrorAnswer, res.body);
        if (r.code === 'conflict')
          throw new ForecastError(
            `${file}: its bars up to ${historyLastDate} must equal ${bundle.id}'s history, and one differs (the service answered 409 conflict): ${r.message}`,
            409,
            'conflict',
          );
        throw new ForecastError(`${file}: the service serving ${bundle.id} in this process refused the bar of ${later.date[i]}: ${res.statusCode} ${r.code}: ${r.message}`, res.statusCode, r.code);
      }
      onProgress(i - first + 1, total);
    }
    const card = await get<LaterCard>(`/models/${name}?version=${version}`);
    const report = await get<MonitoringReport>(`/models/${name}/monitoring?version=${version}`);
    return { card, report, oldBars: first, newBars: total, historyLastDate, firstDate: later.date[first], lastDate: later.date[n - 1] };
  } finally {
    await app.close();
  }
}
