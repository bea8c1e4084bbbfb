import type { Bar } from '../data/bars.js';
import { ForecastError } from '../errors.js';
import { ModelInputError } from '../models/index.js';
import type { HistoryStore } from '../store/types.js';
import { conflictError, planMerge } from '../store/same-bar.js';
import type { ServedModel } from './registry.js';

/** One submitted bar's answer. */
export interface BarForecast {
  date: string;
  /** Forecast of the next bar's return (close[t+1] / close[t]); null when the features are unusable. */
  y_pred: number | null;
  /** Why `y_pred` is null. */
  reason?: string;
  /**
   * Present (true) when the bar is among the newest `lookahead` bars of a look-ahead feature set:
   * its features will change when later bars arrive (FEATURES.md §6, `atr`).
   */
  provisional?: true;
}

export interface ForecastOutcome {
  model: ServedModel;
  forecasts: BarForecast[];
  history: { version: number; bars: number; last_date: string | null; added: number; replaced: number; unchanged: number };
  /**
   * The oldest date this request replaced, or inserted before the newest stored bar: the bars after
   * it have other features now (the monitoring scores their outcomes again). Null for appends only.
   */
  corrected: string | null;
}

/**
 * The one path from a validated bar table to forecasts, whatever protocol it came in by:
 * catch up with the stored history, merge the bars durably (a no-op when all are already stored),
 * then forecast each submitted bar from its features on the merged history.
 *
 * Only the merge takes the model's lock. The catch-up read is shared between concurrent requests
 * (HistoryMirror.sync), and the feature update and the forecasts run synchronously after the last
 * await, so no other request can move the history or the feature state in between.
 */
export async function forecastBars(select: () => ServedModel, store: HistoryStore, bars: readonly Bar[], replace: boolean): Promise<ForecastOutcome> {
  const history = select().history;
  await history.sync();
  // Chosen again on the history just read: a promotion stored by any process answers from here on,
  // and the whole request is answered by the one version chosen now.
  const model = select();
  // Decided on the current copy first: bars already stored (the common read-only request) need
  // no write transaction, and a conflict is answered without touching the store.
  const plan = planMerge(bars, history, replace);
  if (plan.conflicts.length > 0) throw conflictError(plan.conflicts);
  let counts = { added: 0, replaced: 0, unchanged: plan.unchanged };
  // Replaced bars, and bars inserted before the newest: the features of every bar after them change.
  const newest = history.length ? history.date[history.length - 1] : null;
  const changed = [...plan.updates, ...plan.inserts.filter((b) => newest !== null && b.date < newest)].map((b) => b.date);
  const corrected = changed.length ? changed.reduce((a, d) => (d < a ? d : a)) : null;
  if (plan.inserts.length > 0 || plan.updates.length > 0) {
    counts = await history.lock.run(async () => {
      // The store decides again inside its transaction (another process may have written meanwhile).
      const merged = await store.merge(model.name, bars, { replace });
      await history.sync();
      return { added: merged.added, replaced: merged.replaced, unchanged: merged.unchanged };
    });
  }
  if (model.features.lagging) await model.features.catchUp();
  return { ...(await forecastFromHistory(model, bars, counts)), corrected };
}

/**
 * The forecast from one finite feature row, or why the model cannot give one. Finite raw features
 * can still leave the model's range once scaled (a price thousands of standard deviations from the
 * training data overflows float32, which the tree, like scikit-learn, refuses): the bar is valid
 * and stored, so its answer is a null forecast with the reason, never a failed request.
 */
function predictOrExplain(pipeline: ServedModel['bundle']['pipeline'], row: Float64Array): number | { reason: string } {
  let y: number;
  try {
    y = pipeline.predictFeatures(row);
  } catch (err) {
    if (!(err instanceof ModelInputError)) throw err;
    return { reason: `outside the model's range: model input ${err.input} (after scaling) is ${err.value}, not finite in float32; the features are far from anything the model was trained on` };
  }
  if (!Number.isFinite(y)) return { reason: `outside the model's range: the forecast is ${y}` };
  return y;
}

/**
 * Forecasts of bars already stored, without writing (a shadow version's forecasts of a request the
 * default version answered). Rejects with 503 `history_changed` when a bar is no longer stored.
 */
export async function forecastStored(model: ServedModel, bars: readonly Bar[]): Promise<ForecastOutcome> {
  if (model.features.lagging) await model.features.catchUp();
  return { ...(await forecastFromHistory(model, bars, { added: 0, replaced: 0, unchanged: bars.length })), corrected: null };
}

/**
 * The model's forecast of stored bar `i` from its features as known now, or null when they are not
 * usable: the monitoring's own forecasts (the newest bar for every version, a bar's final forecast
 * once its outcome is known), by the same path as a request's.
 */
export function forecastAt(model: ServedModel, i: number): number | null {
  model.features.update();
  const known = model.features.knownForecast(i);
  if (known !== undefined) return known;
  const row = model.features.featuresAt(i);
  if (!(row instanceof Float64Array)) return null;
  const y = predictOrExplain(model.bundle.pipeline, row);
  return typeof y === 'number' ? y : null;
}

/** Rows predicted between yields to the event loop: a 1 MiB request must not hold the loop for long. */
const PREDICT_SLICE = 2048;

/**
 * Features of every submitted bar are read synchronously (the history and the feature state cannot
 * change under them); the model then runs on that snapshot, in slices with a yield between, so
 * other requests (health probes included) are answered while a large request is computed.
 */
async function forecastFromHistory(model: ServedModel, bars: readonly Bar[], counts: { added: number; replaced: number; unchanged: number }): Promise<Omit<ForecastOutcome, 'corrected'>> {
  const history = model.history;
  const features = model.features;
  features.update();
  const pipeline = model.bundle.pipeline;
  const n = features.length;
  const lookahead = pipeline.featureSet.lookahead;
  const width = pipeline.featureSet.featureNames.length;
  const forecasts: BarForecast[] = new Array(bars.length);
  // Rows still to be predicted: their index in the history and their features, copied out of the engine's reused buffer.
  const usable: number[] = [];
  const indices: number[] = [];
  const snapshot = new Float64Array(bars.length * width);
  for (let k = 0; k < bars.length; k++) {
    const date = bars[k].date;
    const i = history.indexOf(date);
    // Only a store restored to an older state removes dates; the client may simply retry.
    if (i === undefined) throw new ForecastError(`the stored history changed during the request (bar ${date} is gone): retry`, 503, 'history_changed');
    const known = features.knownForecast(i);
    if (known !== undefined) {
      forecasts[k] = { date, y_pred: known };
      continue;
    }
    const row = features.featuresAt(i);
    const f: BarForecast = row instanceof Float64Array ? { date, y_pred: null } : { date, y_pred: null, reason: row.reason };
    if (row instanceof Float64Array) {
      snapshot.set(row, usable.length * width);
      usable.push(k);
      indices.push(i);
    }
    if (lookahead > 0 && i >= n - lookahead) f.provisional = true;
    forecasts[k] = f;
  }
  const stamp = features.stamp();
  const info = { version: history.version, bars: history.length, last_date: history.length ? history.date[history.length - 1] : null, ...counts };
  for (let start = 0; start < usable.length; start += PREDICT_SLICE) {
    if (start > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const end = Math.min(usable.length, start + PREDICT_SLICE);
    for (let u = start; u < end; u++) {
      const y = predictOrExplain(pipeline, snapshot.subarray(u * width, (u + 1) * width));
      if (typeof y === 'number') {
        forecasts[usable[u]].y_pred = y;
        features.rememberForecast(indices[u], y, stamp);
      } else forecasts[usable[u]].reason = y.reason;
    }
  }
  return { model, forecasts, history: info };
}
