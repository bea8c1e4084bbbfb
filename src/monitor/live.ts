/**
 * Live accuracy: the scored forecasts of a model version (each joined to its realised target
 * close[t+1] / close[t]) turned into the same metrics as the offline evaluation, over rolling
 * windows and since deployment, beside the naive baselines on the same bars, and judged against the
 * offline evaluation. Pure: the service feeds it rows from its forecast log, and `forecast
 * evaluate --csv` runs the service itself over a file's bars, so offline and live figures are
 * computed one way.
 */
import { regressionMetrics } from '../models/metrics.js';

/** A forecast joined to what happened. */
export interface ScoredForecast {
  date: string;
  yPred: number;
  yTrue: number;
}

/** Window lengths in scored bars, newest last; `all` adds the whole period. */
export const LIVE_WINDOWS = [20, 60, 250] as const;

/** Fewer scored bars than this: the state is `insufficient_data` (the smallest window is not full). */
export const MIN_SCORED_FOR_STATE = LIVE_WINDOWS[0];

export interface ForecastScores {
  rows: number;
  mae: number;
  mse: number;
  /** NaN (null in JSON) with fewer than two rows, as scikit-learn. */
  r2: number;
  /** Share of bars whose forecast moved the same way as the price: sign(y_pred − 1) = sign(y − 1). */
  hit_rate: number;
}

export interface WindowReport {
  /** Scored bars in the window: one of LIVE_WINDOWS, or `all`. */
  window: number | 'all';
  rows: number;
  first_date: string;
  last_date: string;
  model: ForecastScores;
  persistence: ForecastScores;
  /** Null when the bundle does not record its training target's mean. */
  training_mean: ForecastScores | null;
  /** True when the model's MSE is below persistence's on these bars. */
  beats_persistence: boolean;
}

/**
 * The metrics of forecasts against outcomes: scikit-learn's MAE, MSE and R² (the offline
 * evaluation's functions) and the directional hit rate.
 */
export function forecastScores(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): ForecastScores {
  const m = regressionMetrics(yTrue, yPred);
  let hits = 0;
  for (let i = 0; i < yTrue.length; i++) if (Math.sign(yPred[i] - 1) === Math.sign(yTrue[i] - 1)) hits++;
  return { rows: m.rows, mae: m.mae, mse: m.mse, r2: m.r2, hit_rate: hits / yTrue.length };
}

/** One window's report over `rows` (oldest first, non-empty). */
export function windowReport(rows: readonly ScoredForecast[], window: number | 'all', trainingMean: number | null): WindowReport {
  const yTrue = Float64Array.from(rows, (r) => r.yTrue);
  const model = forecastScores(yTrue, Float64Array.from(rows, (r) => r.yPred));
  const persistence = forecastScores(yTrue, new Float64Array(rows.length).fill(1));
  return {
    window,
    rows: rows.length,
    first_date: rows[0].date,
    last_date: rows[rows.length - 1].date,
    model,
    persistence,
    training_mean: trainingMean === null ? null : forecastScores(yTrue, new Float64Array(rows.length).fill(trainingMean)),
    beats_persistence: model.mse < persistence.mse,
  };
}

/**
 * Every rolling window that the rows fill, then the whole period (`all`), which includes the sums of
 * rows compacted out of the log when there are any. Rows oldest first.
 */
export function liveWindows(rows: readonly ScoredForecast[], trainingMean: number | null, compacted: ScoreSums | null = null): WindowReport[] {
  const out = LIVE_WINDOWS.filter((w) => rows.length >= w).map((w) => windowReport(rows.slice(rows.length - w), w, trainingMean));
  const all = allWindowWithCompacted(compacted, rows, trainingMean);
  if (all) out.push(all);
  return out;
}

export type MonitoringState = 'ok' | 'degraded' | 'insufficient_data';

export interface StateJudgement {
  state: MonitoringState;
  /** One sentence: why this state. */
  reason: string;
  /** The degradation test as applied: window, live MAE, the offline bound it is compared with. */
  test: {
    window: number;
    live_mae: number;
    offline_mae: number;
    /** The live MAE above which the window is degraded. */
    upper_bound: number;
    method: string;
  } | null;
}

/** Resamples of the offline errors per bound (fixed seed: the same bound for the same bundle, every run). */
const BOOTSTRAP_RESAMPLES = 2000;
/** One-sided level of the bound: a window this bad by chance alone happens once in a hundred. */
const BOOTSTRAP_LEVEL = 0.99;
/**
 * Consecutive offline errors resampled together. Daily errors are not independent: volatility
 * clusters (a calm month, then a turbulent one), so a window's MAE varies more than the MAE of as
 * many independent errors. Resampling blocks keeps that clustering in the bound (a moving-block
 * bootstrap); with single errors an unchanged regime reads as degraded whenever a window is turbulent.
 */
const BOOTSTRAP_BLOCK = 20;

/**
 * The sampling distribution of the offline MAE at a window's size, by a moving-block bootstrap: the
 * offline test set's absolute errors resampled `BOOTSTRAP_RESAMPLES` times as windows of `m` rows
 * made of runs of `BOOTSTRAP_BLOCK` consecutive errors (circularly, from uniformly drawn starts);
 * the bound is the `BOOTSTRAP_LEVEL` quantile of their means. A live window above it has a larger
 * MAE than the model's offline errors produce by chance. Bounds are cached per window size.
 */
export class OfflineErrorModel {
  private readonly absErrors: Float64Array;
  private readonly bounds = new Map<number, number>();
  readonly mae: number;

  constructor(yTrue: ArrayLike<number>, yPred: ArrayLike<number>) {
    this.absErrors = Float64Array.from({ length: yTrue.length }, (_, i) => Math.abs(yPred[i] - yTrue[i]));
    this.mae = yTrue.length ? regressionMetrics(yTrue, yPred).mae : Number.NaN;
  }

  upperBound(m: number): number {
    let bound = this.bounds.get(m);
    if (bound === undefined) {
      bound = this.bootstrap(m);
      this.bounds.set(m, bound);
    }
    return bound;
  }

  private bootstrap(m: number): number {
    const e = this.absErrors;
    const n = e.length;
    if (n === 0) return Number.NaN;
    const random = seededRandom(0x5eed ^ m);
    const means = new Float64Array(BOOTSTRAP_RESAMPLES);
    const block = Math.min(BOOTSTRAP_BLOCK, n);
    for (let r = 0; r < BOOTSTRAP_RESAMPLES; r++) {
      let s = 0;
      let start = 0;
      for (let k = 0; k < m; k++) {
        if (k % block === 0) start = Math.floor(random() * n);
        s += e[(start + (k % block)) % n];
      }
      means[r] = s / m;
    }
    means.sort();
    return means[Math.min(BOOTSTRAP_RESAMPLES - 1, Math.ceil(BOOTSTRAP_LEVEL * BOOTSTRAP_RESAMPLES) - 1)];
  }
}

/**
 * The state of a deployed version: `insufficient_data` below MIN_SCORED_FOR_STATE scored bars;
 * `degraded` when the newest window's live MAE (the largest full window, up to 250 bars) is above
 * the offline MAE's bootstrap bound at that size, or when the model beat persistence offline and no
 * longer does on that window; else `ok`.
 */
export function judgeState(windows: readonly WindowReport[], offline: OfflineErrorModel, offlineBeatsPersistence: boolean | null): StateJudgement {
  const full = windows.filter((w): w is WindowReport & { window: number } => w.window !== 'all');
  const scored = windows.find((w) => w.window === 'all')?.rows ?? 0;
  if (full.length === 0 || !Number.isFinite(offline.mae))
    return {
      state: 'insufficient_data',
      reason: Number.isFinite(offline.mae)
        ? `${scored} scored forecasts; the state is judged from ${MIN_SCORED_FOR_STATE} on`
        : 'the bundle has no offline evaluation to compare with',
      test: null,
    };
  const w = full[full.length - 1];
  const bound = offline.upperBound(w.window);
  const test = {
    window: w.window,
    live_mae: w.model.mae,
    offline_mae: offline.mae,
    upper_bound: bound,
    method: `live MAE over the newest ${w.window} scored bars against the ${BOOTSTRAP_LEVEL * 100}% one-sided bootstrap bound of the offline test MAE (${BOOTSTRAP_RESAMPLES} resamples of ${w.window} offline errors)`,
  };
  if (w.model.mae > bound)
    return { state: 'degraded', reason: `live MAE ${fmt(w.model.mae)} over the newest ${w.window} bars exceeds the offline bound ${fmt(bound)} (offline MAE ${fmt(offline.mae)})`, test };
  if (offlineBeatsPersistence === true && !w.beats_persistence)
    return { state: 'degraded', reason: `the model beat persistence offline but not over the newest ${w.window} bars (MSE ${fmt(w.model.mse)} vs ${fmt(w.persistence.mse)})`, test };
  return { state: 'ok', reason: `live MAE ${fmt(w.model.mae)} over the newest ${w.window} bars is within the offline bound ${fmt(bound)}`, test };
}

function fmt(x: number): string {
  return x.toPrecision(4);
}

/** mulberry32: a small seeded generator, so a bound is the same on every process and run (Math.random cannot be seeded). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Sums of one forecaster's errors: what a compacted stretch of the log keeps of it. */
export interface ErrorSums {
  abs: number;
  sq: number;
  hits: number;
}

/**
 * What the forecast log keeps of scored rows it no longer holds (retention): enough to fold them
 * into the since-deployment figures. Sums in row order (not numpy's pairwise order), so figures
 * that include compacted rows may differ from a recomputation in the last bits.
 */
export interface ScoreSums {
  rows: number;
  first_date: string;
  last_date: string;
  /**
   * Σ(y − 1) and Σ(y − 1)²: the targets are returns near 1, and sums of y and y² would lose about
   * four digits to cancellation in the total sum of squares (R²'s denominator).
   */
  sum_d: number;
  sum_d2: number;
  model: ErrorSums;
  persistence: ErrorSums;
  training_mean: ErrorSums | null;
}

function errorSums(rows: readonly ScoredForecast[], predict: (r: ScoredForecast) => number): ErrorSums {
  let abs = 0;
  let sq = 0;
  let hits = 0;
  for (const r of rows) {
    const p = predict(r);
    const e = p - r.yTrue;
    abs += Math.abs(e);
    sq += e * e;
    if (Math.sign(p - 1) === Math.sign(r.yTrue - 1)) hits++;
  }
  return { abs, sq, hits };
}

/** The sums of `rows` (oldest first, non-empty). */
export function scoreSums(rows: readonly ScoredForecast[], trainingMean: number | null): ScoreSums {
  let sumD = 0;
  let sumD2 = 0;
  for (const r of rows) {
    const d = r.yTrue - 1;
    sumD += d;
    sumD2 += d * d;
  }
  return {
    rows: rows.length,
    first_date: rows[0].date,
    last_date: rows[rows.length - 1].date,
    sum_d: sumD,
    sum_d2: sumD2,
    model: errorSums(rows, (r) => r.yPred),
    persistence: errorSums(rows, () => 1),
    training_mean: trainingMean === null ? null : errorSums(rows, () => trainingMean),
  };
}

/** Two stretches' sums as one (`a` older than `b`). */
export function addScoreSums(a: ScoreSums, b: ScoreSums): ScoreSums {
  const add = (x: ErrorSums, y: ErrorSums): ErrorSums => ({ abs: x.abs + y.abs, sq: x.sq + y.sq, hits: x.hits + y.hits });
  return {
    rows: a.rows + b.rows,
    first_date: a.first_date < b.first_date ? a.first_date : b.first_date,
    last_date: a.last_date > b.last_date ? a.last_date : b.last_date,
    sum_d: a.sum_d + b.sum_d,
    sum_d2: a.sum_d2 + b.sum_d2,
    model: add(a.model, b.model),
    persistence: add(a.persistence, b.persistence),
    training_mean: a.training_mean && b.training_mean ? add(a.training_mean, b.training_mean) : null,
  };
}

function scoresFromSums(s: ScoreSums, e: ErrorSums): ForecastScores {
  const n = s.rows;
  const ssTot = s.sum_d2 - (s.sum_d * s.sum_d) / n;
  // scikit-learn's conventions: NaN below two rows; 1 for a perfect forecast, 0 for a constant target.
  const r2 = n < 2 ? Number.NaN : e.sq === 0 ? 1 : ssTot <= 0 ? 0 : 1 - e.sq / ssTot;
  return { rows: n, mae: e.abs / n, mse: e.sq / n, r2, hit_rate: e.hits / n };
}

/** The since-deployment window from compacted sums and the rows still held (either may be empty). */
export function allWindowWithCompacted(compacted: ScoreSums | null, rows: readonly ScoredForecast[], trainingMean: number | null): WindowReport | null {
  if (!compacted) return rows.length ? windowReport(rows, 'all', trainingMean) : null;
  const s = rows.length ? addScoreSums(compacted, scoreSums(rows, trainingMean)) : compacted;
  const model = scoresFromSums(s, s.model);
  const persistence = scoresFromSums(s, s.persistence);
  return {
    window: 'all',
    rows: s.rows,
    first_date: s.first_date,
    last_date: s.last_date,
    model,
    persistence,
    training_mean: s.training_mean ? scoresFromSums(s, s.training_mean) : null,
    beats_persistence: model.mse < persistence.mse,
  };
}
