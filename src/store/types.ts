import type { Bar, BarSeries } from '../data/bars.js';

/**
 * The durable price history behind every served model. One history per model name (all versions
 * of a model forecast the same instrument), with a version counter bumped by every write so that a
 * process can tell cheaply whether its in-memory copy is current and catch up by reading only what
 * changed (every stored bar carries the version that last wrote it).
 */
export interface HistoryStore extends ForecastLogStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Where the history lives, for logs (no credentials). */
  readonly location: string;
  /**
   * Creates the model's history from `seed` if the model has no bars yet (atomically: several
   * processes may race to seed), and returns its version. `seeded` is true when this call wrote the
   * seed: the stored history at `version` is then exactly `seed`, and a caller need not read back
   * what it has just written (a million-bar first start would spend seconds doing so).
   */
  ensureModel(model: string, seed: BarSeries): Promise<SeedResult>;
  /** The model's history version: the cheap per-request freshness check. 0 if unknown. */
  version(model: string): Promise<number>;
  /** The whole history, oldest first, and its version (read in one snapshot). */
  load(model: string): Promise<HistorySnapshot>;
  /**
   * The bars written after `version` (new or replaced), oldest first, the dates deleted after it,
   * and the current version.
   */
  changesSince(model: string, version: number): Promise<HistoryChanges>;
  /**
   * Merges bars in one transaction, serialised with every other writer of the model: a bar equal
   * (see `sameBar`) to the stored one is left as stored; a new date is inserted; a different value
   * is a conflict (ForecastError 409, nothing written) unless `replace`. Durable when it resolves.
   *
   * Every method rejects with StoreUnavailableError (503) when the store cannot be reached or does
   * not answer within its timeouts, and never hangs; other errors (409, 404) keep their own type.
   * A merge that failed so may or may not have been committed: resubmitting the same bars is safe.
   */
  merge(model: string, bars: readonly Bar[], options?: MergeOptions): Promise<MergeResult>;
  /**
   * Throws if the store cannot serve (readiness probe): StoreUnavailableError when it cannot be
   * reached. Never waits longer than the store's own timeouts, nor than `timeoutMs` when given.
   */
  ping(timeoutMs?: number): Promise<void>;
  /**
   * Removes one stored bar (an administrator's correction of a bar sent by mistake), serialised with
   * every writer like a merge. The deletion bumps the version and leaves a tombstone, so that every
   * process reading `changesSince` drops the bar too. `deleted` is null (and nothing is written)
   * when no bar of that date is stored.
   */
  deleteBar(model: string, date: string): Promise<DeleteResult>;
  /**
   * Sets which version answers requests that name none, and which one runs in shadow beside it
   * (fields left out keep their value; null clears). Bumps the history version, so every process's
   * next catch-up read sees the change: one write switches every worker and replica. 404 when the
   * model has no history.
   */
  setRouting(model: string, routing: Partial<Routing>): Promise<{ version: number; routing: Routing }>;
  close(): Promise<void>;
}

export interface HistorySnapshot {
  version: number;
  bars: BarSeries;
  routing: Routing;
}

/** Which served versions of a model answer: stored beside its history so that every process agrees. */
export interface Routing {
  /** The version answering requests that name none; null: the newest version served. */
  defaultVersion: string | null;
  /** A version whose forecasts are computed, logged and scored beside the default's, never returned. */
  shadowVersion: string | null;
}

export const NO_ROUTING: Readonly<Routing> = Object.freeze({ defaultVersion: null, shadowVersion: null });

export interface HistoryChanges {
  version: number;
  /** The routing as of `version`; absent when nothing changed (`version` is the one asked about). */
  routing?: Routing;
  bars: Bar[];
  /**
   * Dates deleted after the version asked for. Apply them before `bars`: a date deleted and then
   * stored again is in both, and its bar is the newer fact.
   */
  deleted: string[];
}

export interface DeleteResult {
  /** History version after the deletion (unchanged if there was nothing to delete). */
  version: number;
  /** The bar removed, as it was stored; null when the date was not stored. */
  deleted: Bar | null;
}

export interface MergeOptions {
  replace?: boolean;
}

export interface MergeResult {
  /** History version after the merge (unchanged if nothing was written). */
  version: number;
  added: number;
  replaced: number;
  unchanged: number;
}

/** One submitted bar that differs from the stored bar of the same date. */
export interface BarConflict {
  row: number;
  date: string;
  field: string;
  stored: number;
  submitted: number;
}

/** What `ensureModel` did. */
export interface SeedResult {
  version: number;
  /** This call stored `seed` as the model's whole history, at `version`. */
  seeded: boolean;
}

/**
 * The forecast log, kept beside the history so that every worker and replica shares it: one row per
 * (model, version, date) for the forecast made while that bar was the newest stored bar (the
 * forecast a user could act on), joined later to the realised target once the next bar is stored.
 * Every write is idempotent (first insert wins; an outcome is recorded once), so processes racing to
 * log or score the same bar agree.
 */
export interface ForecastLogStore {
  /**
   * In one transaction: inserts the forecasts not logged yet (a row already logged for its model,
   * version and date is kept), then records the outcomes of rows not scored yet. Returns how many
   * rows were new and how many outcomes were recorded.
   */
  writeForecastLog(rows: readonly LoggedForecast[], outcomes: readonly ForecastOutcomeRow[]): Promise<{ logged: number; scored: number }>;
  /** Adds re-forecasts of logged dates to their `served` counts (rows not logged are ignored). */
  countServed(rows: readonly ServedCount[]): Promise<void>;
  /** The model's logged rows still waiting for their outcome, oldest first, at most `limit`. */
  unscored(model: string, limit: number): Promise<{ version: string; date: string }[]>;
  /** A version's rows, oldest first: the newest `limit`; with `before`, the oldest `limit` dated before it. */
  forecastLog(model: string, version: string, limit: number, before?: string): Promise<ForecastLogRow[]>;
  /**
   * Retention: deletes a version's rows dated `through` or earlier and folds what they scored into
   * the version's compacted summary (`merge` of the stored one, or null, gives the new one), in one
   * transaction. Refused (false, nothing written) unless exactly `expectedRows` rows went: another
   * process compacted them first, and the sums must not count them twice.
   */
  compactForecastLog<T>(model: string, version: string, through: string, expectedRows: number, merge: (stored: T | null) => T): Promise<boolean>;
  /**
   * After the history was corrected (a bar deleted, replaced, or inserted before the newest): clears
   * the outcomes recorded from `from` on, so that they are scored again from the history as it is
   * now, and drops the forecasts of a `deleted` date (every version), in one transaction.
   */
  reopenForecasts(model: string, from: string, deleted: string | null): Promise<void>;
  /** The version's compacted summary, or null when nothing was compacted. */
  compactedForecasts<T>(model: string, version: string): Promise<T | null>;
}

export interface LoggedForecast {
  model: string;
  version: string;
  date: string;
  /** The forecast as answered; null when the bar had none (features not usable). */
  yPred: number | null;
  /** Made from provisional features (a look-ahead feature set's newest bars). */
  provisional: boolean;
  featureSet: string;
  requestId: string | null;
  /** ISO-8601 time the forecast was made. */
  madeAt: string;
}

export interface ServedCount {
  model: string;
  version: string;
  date: string;
  count: number;
}

export interface ForecastOutcomeRow {
  model: string;
  version: string;
  date: string;
  /** The realised target close[t+1] / close[t]. */
  yTrue: number;
  /**
   * The forecast of that date from its final features, made when the outcome was recorded: equal
   * to `yPred` for a causal feature set; for a look-ahead one, the forecast the offline evaluation
   * makes (null when not usable).
   */
  yFinal: number | null;
  scoredAt: string;
}

export interface ForecastLogRow extends LoggedForecast {
  served: number;
  yTrue: number | null;
  yFinal: number | null;
  scoredAt: string | null;
}
