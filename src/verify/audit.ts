/**
 * `audit-causality`: finds features that read later bars, by observation rather than by reading
 * their definitions. A history is replayed bar by bar through the incremental engine, exactly as a
 * service receives it; each date's features are recorded as first seen (when its bar was the newest)
 * and compared with their values once every bar has arrived. A feature whose value for a date
 * changed afterwards used information from the future: on the reference set that is `atr`
 * (FEATURES.md §6), on the causal set nothing.
 */
import type { ForecastPipeline } from '../bundle/types.js';
import { barAt, type BarSeries } from '../data/bars.js';
import type { FeatureSet } from '../features/types.js';

export interface FeatureLeak {
  feature: string;
  /** Dates whose value changed after later bars arrived. */
  datesChanged: number;
  firstDate: string;
  lastDate: string;
  /**
   * How many bars after a date the latest change to its value came (1: the next bar); null when some
   * came later than the audit watched each date one bar at a time (`horizon` bars; still counted above).
   */
  delayBars: number | null;
  /** Largest |final - first seen| over the dates where both are finite. */
  maxAbsChange: number;
  /** Forecasts that change when only this feature goes from its first-seen to its final value. */
  forecastsChanged: number;
}

export interface CausalityAudit {
  featureSet: string;
  /** The look-ahead the feature set declares (bars). */
  declaredLookahead: number;
  bars: number;
  firstDate: string | null;
  lastDate: string | null;
  /** Bars after each date watched for changes bar by bar (delays up to this are measured). */
  horizon: number;
  /** Leaking features, in feature-set order. */
  leaks: FeatureLeak[];
  /** Dates with finite first-seen and final rows, and how many of their forecasts differ (all features at once). */
  forecasts: { compared: number; changed: number } | null;
}

export interface AuditOptions {
  /** Bars after each date watched one by one, to measure the delay of a change (default 5). */
  horizon?: number;
}

/** Equal values, NaN equal to NaN (an undefined feature that stays undefined has not changed). */
function same(a: number, b: number): boolean {
  return a === b || (a !== a && b !== b);
}

function allFinite(row: Float64Array): boolean {
  for (let j = 0; j < row.length; j++) if (!Number.isFinite(row[j])) return false;
  return true;
}

/**
 * Replays `series` through `featureSet`'s incremental engine and reports every feature whose value
 * for a date changed after that date; with a pipeline, how many forecasts those changes move.
 */
export function auditCausality(featureSet: FeatureSet, series: BarSeries, pipeline?: ForecastPipeline | null, options: AuditOptions = {}): CausalityAudit {
  const horizon = Math.max(options.horizon ?? 5, featureSet.lookahead);
  const k = featureSet.featureNames.length;
  const n = series.date.length;
  const firstSeen = new Float64Array(n * k);
  // Each date's value as last watched (at most `horizon` bars after it), to tell how late changes come.
  const watched = new Float64Array(n * k);
  const delay = new Array<number>(k).fill(0);
  const row = new Float64Array(k);
  const engine = featureSet.createEngine();
  for (let t = 0; t < n; t++) {
    engine.append(barAt(series, t));
    for (let h = 0; h <= horizon && h <= t; h++) {
      const i = t - h;
      engine.featuresAt(i, row);
      if (h === 0) firstSeen.set(row, i * k);
      else for (let j = 0; j < k; j++) if (!same(watched[i * k + j], row[j])) delay[j] = Math.max(delay[j], h);
      watched.set(row, i * k);
    }
  }
  // A value that still changed after the watch ended: its delay is unknown (longer than the horizon).
  const beyond = new Array<boolean>(k).fill(false);

  const leaks: FeatureLeak[] = featureSet.featureNames.map((feature, j) => ({
    feature,
    datesChanged: 0,
    firstDate: '',
    lastDate: '',
    delayBars: delay[j],
    maxAbsChange: 0,
    forecastsChanged: 0,
  }));
  const first = new Float64Array(k);
  const final = new Float64Array(k);
  const mixed = new Float64Array(k);
  let compared = 0;
  let changed = 0;
  for (let i = 0; i < n; i++) {
    first.set(firstSeen.subarray(i * k, (i + 1) * k));
    engine.featuresAt(i, final);
    let any = false;
    for (let j = 0; j < k; j++) {
      if (!same(watched[i * k + j], final[j])) beyond[j] = true;
      if (same(first[j], final[j])) continue;
      any = true;
      const leak = leaks[j];
      if (leak.datesChanged++ === 0) leak.firstDate = series.date[i];
      leak.lastDate = series.date[i];
      const change = Math.abs(final[j] - first[j]);
      if (Number.isFinite(change)) leak.maxAbsChange = Math.max(leak.maxAbsChange, change);
    }
    if (!pipeline || !allFinite(first) || !allFinite(final)) continue;
    compared++;
    if (!any) continue;
    const settled = pipeline.predictFeatures(final);
    if (!Object.is(pipeline.predictFeatures(first), settled)) changed++;
    // Each changed feature alone: the forecast from the final row with only that value as first seen.
    for (let j = 0; j < k; j++) {
      if (same(first[j], final[j])) continue;
      mixed.set(final);
      mixed[j] = first[j];
      if (!Object.is(pipeline.predictFeatures(mixed), settled)) leaks[j].forecastsChanged++;
    }
  }
  return {
    featureSet: featureSet.name,
    declaredLookahead: featureSet.lookahead,
    bars: n,
    firstDate: n > 0 ? series.date[0] : null,
    lastDate: n > 0 ? series.date[n - 1] : null,
    horizon,
    leaks: leaks.filter((l, j) => {
      if (beyond[j]) l.delayBars = null;
      return l.datesChanged > 0;
    }),
    forecasts: pipeline ? { compared, changed } : null,
  };
}
