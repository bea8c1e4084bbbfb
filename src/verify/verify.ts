/**
 * `verify`: proves a deployed service reproduces a bundle's offline evaluation, bit for bit.
 *
 * 1. Sends every bar of the bundle's history, oldest first, in batches. A bar the service already
 *    stores is a no-op; a missing one is stored. A stored bar that really differs is a 409 naming
 *    it, and verify stops there: it never replaces a service's history (`?replace` is not used).
 * 2. Only then re-sends the evaluation bars and reads their forecasts. By now every bar after each
 *    evaluation date is stored, so the reference set's look-ahead `atr` (FEATURES.md §6) is final,
 *    exactly as in the offline evaluation; reading forecasts while sending the history would catch
 *    the last bar of each batch with provisional features.
 * 3. Compares each deployed forecast with `manifest.evaluation.yPred` with Object.is, and diagnoses
 *    the first differing dates (./diagnose.ts).
 */
import type { LoadedBundle } from '../bundle/types.js';
import { ForecastError } from '../errors.js';
import { regressionMetrics, type RegressionMetrics } from '../models/metrics.js';
import { seriesToSplitJson } from '../serve/bar-table.js';
import { ServiceClient, ServiceRequestError, type ServiceClientOptions } from './client.js';
import { MismatchDiagnoser, type Diagnosis } from './diagnose.js';

export interface VerifyOptions extends Omit<ServiceClientOptions, 'url' | 'apiKey'> {
  /** Base URL of the deployed service. */
  url: string;
  apiKey?: string | null;
  /** `NAME` or `NAME@VERSION` to verify against; default the service's default model (`POST /forecast`). */
  model?: string | null;
  /** Bars per request (default 1000). */
  batch?: number;
  /** How many differing dates to diagnose and list (default 10). */
  report?: number;
  onProgress?: (step: string, done: number, total: number) => void;
}

export interface ForecastComparison {
  date: string;
  offline: number;
  deployed: number | null;
  equal: boolean;
}

export interface DateDifference extends Diagnosis {
  date: string;
  offline: number;
  deployed: number | null;
  /** deployed - offline, when there is a deployed value. */
  difference: number | null;
  /** The service's reason for a null forecast. */
  reason?: string;
  /** The service flagged the forecast provisional: a look-ahead bar after the date was not stored. */
  provisional?: boolean;
}

/** A field where the service's model card disagrees with the bundle's manifest. */
export interface CardDifference {
  field: string;
  service: unknown;
  bundle: unknown;
}

export interface VerifyReport {
  /** `name@version` of the bundle verified against. */
  bundle: string;
  /** The forecast endpoint called. */
  endpoint: string;
  /** `name@version` the service answered with. */
  servedModel: string | null;
  passed: boolean;
  /** Evaluation dates, and how many matched bit for bit, differed, or got no forecast. */
  dates: number;
  equal: number;
  differing: number;
  withoutForecast: number;
  /** The first differing dates (up to `report`), each with its diagnosis. */
  differences: DateDifference[];
  metrics: { offline: RegressionMetrics; deployed: RegressionMetrics | null };
  forecasts: ForecastComparison[];
  history: { barsSent: number; serviceBars: number | null; serviceLastDate: string | null; added: number };
  /** Where the service's model card differs from the bundle's manifest (fetched on failure; null if not). */
  card: CardDifference[] | null;
  /** Facts about the service that bear on a failure (its history, its model). */
  notes: string[];
  requests: number;
  retries: number;
  durationMs: number;
}

interface SplitAnswer {
  model?: unknown;
  forecasts?: { date?: unknown; y_pred?: unknown; reason?: unknown; provisional?: unknown }[];
  history?: { bars?: unknown; last_date?: unknown; added?: unknown };
}

interface ServedForecast {
  y_pred: number | null;
  reason?: string;
  provisional?: boolean;
}

const DEFAULT_BATCH = 1000;

/** The split-protocol route for `NAME` or `NAME@VERSION` (names never contain '@'). */
export function forecastPath(model: string | null | undefined): string {
  if (!model) return '/forecast';
  const at = model.indexOf('@');
  if (at < 0) return `/models/${encodeURIComponent(model)}/forecast`;
  const [name, version] = [model.slice(0, at), model.slice(at + 1)];
  if (!name || !version) throw new ForecastError(`--model must be NAME or NAME@VERSION, got "${model}"`, 400, 'invalid_option');
  return `/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}/forecast`;
}

export async function verifyDeployment(bundle: LoadedBundle, options: VerifyOptions): Promise<VerifyReport> {
  const started = performance.now();
  const batch = options.batch ?? DEFAULT_BATCH;
  if (!Number.isInteger(batch) || batch < 1) throw new ForecastError(`--batch must be a positive whole number, got ${batch}`, 400, 'invalid_option');
  const client = new ServiceClient({
    url: options.url,
    apiKey: options.apiKey,
    timeoutMs: options.timeoutMs,
    retries: options.retries,
    backoffMs: options.backoffMs,
    fetch: options.fetch,
    onRetry: options.onRetry,
  });
  const path = forecastPath(options.model);
  const history = bundle.history;
  const n = history.date.length;
  const { dates, yTrue, yPred } = bundle.manifest.evaluation;
  const progress = options.onProgress ?? (() => undefined);
  let servedModel: string | null = null;
  let serviceBars: number | null = null;
  let serviceLastDate: string | null = null;
  let added = 0;

  const send = async (start: number, end: number): Promise<ServedForecast[]> => {
    const frame = seriesToSplitJson(history, { start, end, dates: 'iso', index: false });
    let answer: SplitAnswer;
    try {
      answer = (await client.post<SplitAnswer>(path, frame)).body;
    } catch (err) {
      if (err instanceof ServiceRequestError && err.httpStatus === 409)
        throw new ServiceRequestError(
          `the service's stored history differs from the bundle's: ${err.serviceMessage ?? err.message}. ` +
            `verify never replaces stored bars; the service forecasts from its own history, so its forecasts cannot match this bundle's`,
          409,
          'history_conflict',
          err.serviceDetails,
        );
      if (err instanceof ServiceRequestError && err.httpStatus === 413)
        throw new ServiceRequestError(`${err.message} (${end - start} bars in one request: lower --batch)`, 413, err.serviceCode, err.serviceDetails, err.serviceMessage);
      throw err;
    }
    const forecasts = answer.forecasts;
    if (!Array.isArray(forecasts) || forecasts.length !== end - start)
      throw new ServiceRequestError(`POST ${client.baseUrl}${path} answered without one forecast per bar sent (${end - start} sent)`, 502, 'invalid_response');
    if (typeof answer.model === 'string') servedModel ??= answer.model;
    if (answer.history && typeof answer.history.bars === 'number') {
      serviceBars = answer.history.bars;
      serviceLastDate = typeof answer.history.last_date === 'string' ? answer.history.last_date : null;
      if (typeof answer.history.added === 'number') added += answer.history.added;
    }
    return forecasts.map((f, k) => {
      if (f.date !== history.date[start + k])
        throw new ServiceRequestError(`POST ${client.baseUrl}${path}: forecast ${k} is for ${String(f.date)}, the bar sent was ${history.date[start + k]}`, 502, 'invalid_response');
      const y = f.y_pred;
      if (y !== null && typeof y !== 'number') throw new ServiceRequestError(`POST ${client.baseUrl}${path}: y_pred of ${String(f.date)} is not a number`, 502, 'invalid_response');
      return { y_pred: y, reason: typeof f.reason === 'string' ? f.reason : undefined, provisional: f.provisional === true ? true : undefined };
    });
  };

  // 1. The whole history, so the service's history holds every bar the features read.
  for (let start = 0; start < n; start += batch) {
    progress('sending the bundle history', start, n);
    await send(start, Math.min(n, start + batch));
  }
  progress('sending the bundle history', n, n);

  // 2. The evaluation bars again: every later bar is stored now, so these forecasts are final.
  const index = new Map<string, number>();
  history.date.forEach((d, i) => index.set(d, i));
  const positions = dates.map((d) => {
    const i = index.get(d);
    if (i === undefined) throw new ForecastError(`evaluation date ${d} is not in the bundle's history`, 422, 'bundle_invalid');
    return i;
  });
  const served = new Map<string, ServedForecast>();
  let read = 0;
  for (const [runStart, runEnd] of contiguousRuns(positions)) {
    for (let start = runStart; start < runEnd; start += batch) {
      progress('reading the evaluation forecasts', read, dates.length);
      const end = Math.min(runEnd, start + batch);
      const answers = await send(start, end);
      answers.forEach((a, k) => served.set(history.date[start + k], a));
      read += end - start;
    }
  }
  progress('reading the evaluation forecasts', dates.length, dates.length);

  // 3. Compare bit for bit.
  const forecasts: ForecastComparison[] = dates.map((date, j) => {
    const deployed = served.get(date)!.y_pred;
    return { date, offline: yPred[j], deployed, equal: deployed !== null && Object.is(deployed, yPred[j]) };
  });
  const failing = forecasts.filter((f) => !f.equal);
  const limit = options.report ?? 10;
  const diagnoser = new MismatchDiagnoser(bundle);
  const differences: DateDifference[] = failing.slice(0, limit).map((f) => {
    const s = served.get(f.date)!;
    const d: DateDifference = {
      date: f.date,
      offline: f.offline,
      deployed: f.deployed,
      difference: f.deployed === null ? null : f.deployed - f.offline,
      ...diagnoser.diagnose(f.date, f.deployed, s.reason),
    };
    if (s.reason !== undefined) d.reason = s.reason;
    if (s.provisional) d.provisional = true;
    return d;
  });

  const withValue = forecasts.map((f, j) => [f.deployed, yTrue[j]] as const).filter(([p]) => p !== null && Number.isFinite(p));
  const deployedMetrics = withValue.length > 0 ? regressionMetrics(withValue.map(([, t]) => t), withValue.map(([p]) => p as number)) : null;

  const notes: string[] = [];
  let card: CardDifference[] | null = null;
  if (failing.length > 0) {
    if (serviceBars !== null && serviceBars !== n)
      notes.push(
        `the service's history holds ${serviceBars} bars (last ${serviceLastDate}), the bundle's ${n} (${history.date[0]} .. ${history.date[n - 1]}): ` +
          `${serviceBars - n} bars the bundle lacks, which its features read if they lie before an evaluation date`,
      );
    if (servedModel !== null && servedModel !== bundle.id) notes.push(`the service answered as ${servedModel}; the bundle is ${bundle.id}`);
    card = await compareModelCard(client, servedModel, bundle, notes);
  }

  return {
    bundle: bundle.id,
    endpoint: client.baseUrl + path,
    servedModel,
    passed: failing.length === 0,
    dates: dates.length,
    equal: dates.length - failing.length,
    differing: failing.length,
    withoutForecast: failing.filter((f) => f.deployed === null).length,
    differences,
    metrics: { offline: regressionMetrics(yTrue, yPred), deployed: deployedMetrics },
    forecasts,
    history: { barsSent: n, serviceBars, serviceLastDate, added },
    card,
    notes,
    requests: client.stats.requests,
    retries: client.stats.retries,
    durationMs: Math.round(performance.now() - started),
  };
}

/** Sorted positions grouped into `[start, end)` runs of consecutive bars. */
function contiguousRuns(positions: readonly number[]): [number, number][] {
  const sorted = [...positions].sort((a, b) => a - b);
  const runs: [number, number][] = [];
  for (const p of sorted) {
    const last = runs[runs.length - 1];
    if (last && p === last[1]) last[1] = p + 1;
    else if (!last || p >= last[1]) runs.push([p, p + 1]);
  }
  return runs;
}

interface ModelCard {
  created_at?: unknown;
  origin?: unknown;
  feature_set?: { name?: unknown };
  model?: { kind?: unknown; node_count?: unknown };
  metrics?: { test?: { mae?: unknown; mse?: unknown; r2?: unknown } };
  data?: { source?: { sha256?: unknown }; evaluation?: { rows?: unknown; first_date?: unknown; last_date?: unknown } };
}

/**
 * The served model's card (`GET /models/{name}/versions/{version}`) against the bundle's manifest:
 * tells whether the service serves this bundle or another one. Best effort: null when unavailable.
 */
async function compareModelCard(client: ServiceClient, servedModel: string | null, bundle: LoadedBundle, notes: string[]): Promise<CardDifference[] | null> {
  const at = servedModel?.indexOf('@') ?? -1;
  if (!servedModel || at < 0) return null;
  let c: ModelCard;
  try {
    const path = `/models/${encodeURIComponent(servedModel.slice(0, at))}/versions/${encodeURIComponent(servedModel.slice(at + 1))}`;
    c = (await client.get<ModelCard>(path)).body;
  } catch (err) {
    notes.push(`the service's model card could not be read: ${(err as Error).message}`);
    return null;
  }
  const m = bundle.manifest;
  const pairs: [string, unknown, unknown][] = [
    ['feature_set.name', c.feature_set?.name, m.featureSet.name],
    ['model.kind', c.model?.kind, m.model.kind],
    ['model.node_count', c.model?.node_count, m.model.kind === 'decision_tree_regressor' ? m.model.nodeCount : undefined],
    ['created_at', c.created_at, m.createdAt],
    ['origin', c.origin, m.origin],
    ['data.source.sha256', c.data?.source?.sha256, m.source.sha256],
    ['data.evaluation.rows', c.data?.evaluation?.rows, m.evaluation.dates.length],
    ['data.evaluation.first_date', c.data?.evaluation?.first_date, m.evaluation.dates[0]],
    ['metrics.test.mae', c.metrics?.test?.mae, m.metrics.test.mae],
    ['metrics.test.mse', c.metrics?.test?.mse, m.metrics.test.mse],
    ['metrics.test.r2', c.metrics?.test?.r2, m.metrics.test.r2],
  ];
  const differences = pairs
    .filter(([, service, own]) => service !== undefined && own !== undefined && !Object.is(service, own))
    .map(([field, service, own]) => ({ field, service, bundle: own }));
  if (differences.length > 0)
    notes.push(
      `the service's model card differs from the bundle's manifest in ${differences.map((d) => d.field).join(', ')}: it serves another bundle under ${servedModel}`,
    );
  return differences;
}
