import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { createSeries, seriesToBars, type Bar, type BarSeries } from '../data/bars.js';
import { ForecastError, StoreUnavailableError } from '../errors.js';
import { CompactionRace, logRow, type LogRow } from './forecast-log.js';
import { NO_ROUTING } from './types.js';
import { conflictError, planMerge } from './same-bar.js';
import type {
  DeleteResult,
  ForecastLogRow,
  ForecastOutcomeRow,
  LoggedForecast,
  ServedCount,
  HistoryChanges,
  HistorySnapshot,
  HistoryStore,
  MergeOptions,
  MergeResult,
  Routing,
  SeedResult,
} from './types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS history_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS model_history (
  model TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  updated_at TEXT NOT NULL,
  default_version TEXT,
  shadow_version TEXT
);
CREATE TABLE IF NOT EXISTS bars (
  model TEXT NOT NULL,
  date TEXT NOT NULL,
  open REAL NOT NULL,
  high REAL NOT NULL,
  low REAL NOT NULL,
  close REAL NOT NULL,
  volume REAL NOT NULL,
  rev INTEGER NOT NULL,
  PRIMARY KEY (model, date)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bars_by_rev ON bars (model, rev);
CREATE TABLE IF NOT EXISTS deleted_bars (
  model TEXT NOT NULL,
  date TEXT NOT NULL,
  rev INTEGER NOT NULL,
  PRIMARY KEY (model, date)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deleted_bars_by_rev ON deleted_bars (model, rev);
CREATE TABLE IF NOT EXISTS forecast_log (
  model TEXT NOT NULL,
  version TEXT NOT NULL,
  date TEXT NOT NULL,
  y_pred REAL,
  provisional INTEGER NOT NULL,
  feature_set TEXT NOT NULL,
  request_id TEXT,
  made_at TEXT NOT NULL,
  served INTEGER NOT NULL DEFAULT 1,
  y_true REAL,
  y_final REAL,
  scored_at TEXT,
  PRIMARY KEY (model, version, date)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS forecast_log_unscored ON forecast_log (model, date) WHERE scored_at IS NULL;
CREATE TABLE IF NOT EXISTS forecast_log_compacted (
  model TEXT NOT NULL,
  version TEXT NOT NULL,
  summary TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (model, version)
) WITHOUT ROWID;
INSERT OR IGNORE INTO history_meta (key, value) VALUES ('schema_version', '1');
`;

/** A stored bar row: the columns are named like the fields of a Bar. */
type BarRow = Bar;


// The file is locked by another process past the busy timeout, or the disk failed or filled up:
// the store cannot serve now (503) but may later; every other SQLite error is a bug or bad data.
const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL|PROTOCOL|NOMEM)(_|$)/;

/** StoreUnavailableError for an SQLite error that means "not now", else null. */
export function sqliteUnavailable(err: unknown): StoreUnavailableError | null {
  if (err instanceof ForecastError || !(err instanceof Error)) return null;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && UNAVAILABLE_CODES.test(code)) {
    const what = code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED') ? 'is locked by another writer' : 'cannot be read or written';
    return new StoreUnavailableError(`the SQLite history store ${what} (${code}); retry later`, { reason: code.toLowerCase(), cause: err });
  }
  // better-sqlite3's wording for a call after close() (a request finishing during shutdown).
  if (err instanceof TypeError && /database connection is not open/.test(err.message))
    return new StoreUnavailableError('the SQLite history store is closed; retry later', { reason: 'closed', cause: err });
  return null;
}

function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw sqliteUnavailable(err) ?? err;
  }
}

/** Rows a merge handles between yields to the event loop. */
const MERGE_SLICE = 1024;

export interface SqliteStoreOptions {
  /** File path; created (with its folder) on first start. `:memory:` for a private in-memory store. */
  path: string;
  /**
   * How long a writer waits for another process's write lock (ms, default 5000). better-sqlite3
   * waits synchronously, stalling every request of the process, so this stays a few seconds; past
   * it the call fails with StoreUnavailableError.
   */
  busyTimeoutMs?: number;
}

/**
 * The embedded history store: one SQLite file in WAL mode, shared by every worker process on the
 * machine. Prices are REAL (IEEE double: bit-exact round trip). Writes take the database write lock
 * up front (BEGIN IMMEDIATE) so concurrent merges from several processes are serialised, and commit
 * with synchronous=FULL so an acknowledged bar survives a crash or power loss.
 */
/** Rows per statement when seeding (8 parameters each, far below SQLite's limit of 32,766). */
const ROWS_PER_INSERT = 64;

/**
 * The bars written after a revision. Without statistics SQLite prefers the primary key (it yields
 * date order with no sort) and scans every bar of the model: 80-100 ms at a million bars for the one
 * bar that changed. The revision index finds the few changed rows; sorting them costs nothing.
 */
export const CHANGED_BARS_SQL = 'SELECT date, open, high, low, close, volume FROM bars INDEXED BY bars_by_rev WHERE model = ? AND rev > ? ORDER BY date';

export class SqliteHistoryStore implements HistoryStore {
  readonly kind = 'sqlite' as const;
  readonly location: string;
  private readonly db: Database.Database;
  private readonly stmts: ReturnType<SqliteHistoryStore['prepare']>;
  /**
   * Merges run on a connection of their own, in slices with yields to the event loop between them,
   * inside one BEGIN IMMEDIATE transaction: a 1 MiB request's merge does not hold the loop for its
   * whole length, and the reading connection never sees the uncommitted rows (WAL snapshot
   * isolation). An in-memory database cannot be opened twice, so it writes on the one connection
   * without yielding.
   */
  private readonly writer: { db: Database.Database; stmts: ReturnType<SqliteHistoryStore['prepare']>; yields: boolean };
  private readonly busyTimeoutMs: number;
  /** One merge at a time on the writer connection (its transaction spans awaits). */
  private writeQueue: Promise<unknown> = Promise.resolve();

  constructor(options: SqliteStoreOptions) {
    const path = options.path === ':memory:' ? ':memory:' : resolve(options.path);
    this.location = `sqlite:${path}`;
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { timeout: options.busyTimeoutMs ?? 5000 });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      const open = db;
      open.transaction(() => {
        open.exec(SCHEMA);
        // Files made before routing was stored: add its columns (SQLite has no ADD COLUMN IF NOT EXISTS).
        const columns = new Set(open.prepare<[], { name: string }>('PRAGMA table_info(model_history)').all().map((c) => c.name));
        for (const c of ['default_version', 'shadow_version']) if (!columns.has(c)) open.exec(`ALTER TABLE model_history ADD COLUMN ${c} TEXT`);
      }).immediate();
    } catch (err) {
      db?.close();
      throw sqliteUnavailable(err) ?? err;
    }
    this.db = db;
    this.busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    this.stmts = this.prepare(db);
    if (path === ':memory:') this.writer = { db, stmts: this.stmts, yields: false };
    else {
      let w: Database.Database | undefined;
      try {
        // No synchronous busy wait on the writer: beginWrite() waits for the lock asynchronously, so a
        // writer holding the lock across its yields (another store in this process) can finish meanwhile.
        w = new Database(path, { timeout: 0 });
        w.pragma('synchronous = FULL');
        w.pragma('foreign_keys = ON');
      } catch (err) {
        w?.close();
        db.close();
        throw sqliteUnavailable(err) ?? err;
      }
      this.writer = { db: w, stmts: this.prepare(w), yields: true };
    }
  }

  private prepare(db: Database.Database) {
    return {
      version: db.prepare<[string], { version: number }>('SELECT version FROM model_history WHERE model = ?'),
      versionAndRouting: db.prepare<[string], { version: number; default_version: string | null; shadow_version: string | null }>(
        'SELECT version, default_version, shadow_version FROM model_history WHERE model = ?',
      ),
      setRouting: db.prepare<[number, string, string | null, string | null, string]>(
        'UPDATE model_history SET version = ?, updated_at = ?, default_version = ?, shadow_version = ? WHERE model = ?',
      ),
      createModel: db.prepare<[string, string]>('INSERT OR IGNORE INTO model_history (model, version, updated_at) VALUES (?, 0, ?)'),
      setVersion: db.prepare<[number, string, string]>('UPDATE model_history SET version = ?, updated_at = ? WHERE model = ?'),
      countBars: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM bars WHERE model = ?'),
      all: db.prepare<[string], [string, number, number, number, number, number]>('SELECT date, open, high, low, close, volume FROM bars WHERE model = ? ORDER BY date').raw(),
      since: db.prepare<[string, number], BarRow>(CHANGED_BARS_SQL),
      one: db.prepare<[string, string], BarRow>('SELECT date, open, high, low, close, volume FROM bars WHERE model = ? AND date = ?'),
      insert: db.prepare<[string, string, number, number, number, number, number, number]>(
        'INSERT INTO bars (model, date, open, high, low, close, volume, rev) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      // Seeding a long history: one statement per 64 rows halves the cost per row (1.5 vs 2.8 µs).
      insertMany: db.prepare<unknown[]>(`INSERT INTO bars (model, date, open, high, low, close, volume, rev) VALUES ${Array(ROWS_PER_INSERT).fill('(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`),
      update: db.prepare<[number, number, number, number, number, number, string, string]>(
        'UPDATE bars SET open = ?, high = ?, low = ?, close = ?, volume = ?, rev = ? WHERE model = ? AND date = ?',
      ),
      deletedSince: db.prepare<[string, number], string>('SELECT date FROM deleted_bars WHERE model = ? AND rev > ? ORDER BY date').pluck(),
      deleteBar: db.prepare<[string, string]>('DELETE FROM bars WHERE model = ? AND date = ?'),
      // A date deleted twice keeps one tombstone, at the newer revision.
      tombstone: db.prepare<[string, string, number]>(
        'INSERT INTO deleted_bars (model, date, rev) VALUES (?, ?, ?) ON CONFLICT (model, date) DO UPDATE SET rev = excluded.rev',
      ),
      logForecast: db.prepare<[string, string, string, number | null, number, string, string | null, string]>(
        `INSERT INTO forecast_log (model, version, date, y_pred, provisional, feature_set, request_id, made_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model, version, date) DO NOTHING`,
      ),
      countServed: db.prepare<[number, string, string, string]>('UPDATE forecast_log SET served = served + ? WHERE model = ? AND version = ? AND date = ?'),
      unscored: db.prepare<[string, number], { version: string; date: string }>(
        'SELECT version, date FROM forecast_log WHERE model = ? AND scored_at IS NULL ORDER BY date LIMIT ?',
      ),
      recordOutcome: db.prepare<[number, number | null, string, string, string, string]>(
        'UPDATE forecast_log SET y_true = ?, y_final = ?, scored_at = ? WHERE model = ? AND version = ? AND date = ? AND scored_at IS NULL',
      ),
      forecastLogBefore: db.prepare<[string, string, string, number], LogRow>(
        `SELECT model, version, date, y_pred, provisional, feature_set, request_id, made_at, served, y_true, y_final, scored_at
         FROM forecast_log WHERE model = ? AND version = ? AND date < ? ORDER BY date LIMIT ?`,
      ),
      forecastLog: db.prepare<[string, string, number], LogRow>(
        `SELECT * FROM (SELECT model, version, date, y_pred, provisional, feature_set, request_id, made_at, served, y_true, y_final, scored_at
         FROM forecast_log WHERE model = ? AND version = ? ORDER BY date DESC LIMIT ?) ORDER BY date`,
      ),
      compactRows: db.prepare<[string, string, string]>('DELETE FROM forecast_log WHERE model = ? AND version = ? AND date <= ?'),
      compacted: db.prepare<[string, string], string>('SELECT summary FROM forecast_log_compacted WHERE model = ? AND version = ?').pluck(),
      saveCompacted: db.prepare<[string, string, string, string]>(
        `INSERT INTO forecast_log_compacted (model, version, summary, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (model, version) DO UPDATE SET summary = excluded.summary, updated_at = excluded.updated_at`,
      ),
      dropForecasts: db.prepare<[string, string]>('DELETE FROM forecast_log WHERE model = ? AND date = ?'),
      reopenOutcomes: db.prepare<[string, string]>('UPDATE forecast_log SET y_true = NULL, y_final = NULL, scored_at = NULL WHERE model = ? AND date >= ? AND scored_at IS NOT NULL'),
      ping: db.prepare('SELECT 1'),
    };
  }

  private currentVersion(model: string): number {
    return this.stmts.version.get(model)?.version ?? 0;
  }

  /** The model's version and routing, in one read. */
  private current(model: string): { version: number; routing: Routing } {
    const row = this.stmts.versionAndRouting.get(model);
    return { version: row?.version ?? 0, routing: row ? { defaultVersion: row.default_version, shadowVersion: row.shadow_version } : { ...NO_ROUTING } };
  }

  async ensureModel(model: string, seed: BarSeries): Promise<SeedResult> {
    // Every write goes through the writer connection and its queue: a write on the reading
    // connection would wait synchronously (busy timeout) for a merge that cannot go on meanwhile.
    const { db, stmts } = this.writer;
    const seedOnce = db.transaction(() => {
      stmts.createModel.run(model, new Date().toISOString());
      const version = stmts.version.get(model)?.version ?? 0;
      if (stmts.countBars.get(model)!.n > 0 || seed.date.length === 0) return { version, seeded: false };
      const next = version + 1;
      const n = seed.date.length;
      const params: unknown[] = new Array(ROWS_PER_INSERT * 8);
      let i = 0;
      for (; i + ROWS_PER_INSERT <= n; i += ROWS_PER_INSERT) {
        for (let k = 0, o = 0; k < ROWS_PER_INSERT; k++, o += 8) {
          const j = i + k;
          params[o] = model;
          params[o + 1] = seed.date[j];
          params[o + 2] = seed.open[j];
          params[o + 3] = seed.high[j];
          params[o + 4] = seed.low[j];
          params[o + 5] = seed.close[j];
          params[o + 6] = seed.volume[j];
          params[o + 7] = next;
        }
        stmts.insertMany.run(params);
      }
      for (; i < n; i++) stmts.insert.run(model, seed.date[i], seed.open[i], seed.high[i], seed.low[i], seed.close[i], seed.volume[i], next);
      stmts.setVersion.run(next, new Date().toISOString(), model);
      return { version: next, seeded: true };
    });
    return this.write(async () => guard(() => seedOnce()));
  }

  async version(model: string): Promise<number> {
    return guard(() => this.currentVersion(model));
  }

  async load(model: string): Promise<HistorySnapshot> {
    // A deferred transaction: version and rows come from one snapshot.
    return guard(() =>
      this.db.transaction(() => ({ ...this.current(model), bars: this.readAll(model) }))(),
    );
  }

  /**
   * Every bar of a model, straight into a series: row arrays streamed (`iterate`) rather than one
   * array of a million row objects (`all`), which costs 2-3 times as long, mostly in the collector.
   * Call inside a read transaction (the count and the rows must come from one snapshot).
   */
  private readAll(model: string): BarSeries {
    const series = createSeries(this.stmts.countBars.get(model)!.n);
    let i = 0;
    for (const [date, open, high, low, close, volume] of this.stmts.all.iterate(model)) {
      series.date[i] = date;
      series.open[i] = open;
      series.high[i] = high;
      series.low[i] = low;
      series.close[i] = close;
      series.volume[i] = volume;
      i++;
    }
    return series;
  }

  async changesSince(model: string, version: number): Promise<HistoryChanges> {
    // The per-request freshness check: one indexed read when nothing changed.
    return guard(() => {
      // The version alone (the hot path: nearly every request finds nothing changed).
      if (this.currentVersion(model) === version) return { version, bars: [], deleted: [] };
      // From nothing, every bar: the primary key reads them in date order without a sort.
      if (version === 0) return this.db.transaction(() => ({ ...this.current(model), bars: seriesToBars(this.readAll(model)), deleted: [] }))();
      return this.db.transaction(() => ({
        ...this.current(model),
        bars: this.stmts.since.all(model, version),
        deleted: this.stmts.deletedSince.all(model, version),
      }))();
    });
  }

  merge(model: string, bars: readonly Bar[], options: MergeOptions = {}): Promise<MergeResult> {
    return this.write(() => this.mergeOnWriter(model, bars, options));
  }

  deleteBar(model: string, date: string): Promise<DeleteResult> {
    const { stmts } = this.writer;
    return this.write(async () =>
      guard(() => {
        const version = this.modelVersionOnWriter(model);
        const stored = stmts.one.get(model, date);
        if (!stored) return { version, deleted: null };
        const next = version + 1;
        stmts.deleteBar.run(model, date);
        stmts.tombstone.run(model, date, next);
        stmts.setVersion.run(next, new Date().toISOString(), model);
        return { version: next, deleted: { ...stored } };
      }),
    );
  }

  writeForecastLog(rows: readonly LoggedForecast[], outcomes: readonly ForecastOutcomeRow[]): Promise<{ logged: number; scored: number }> {
    const { stmts } = this.writer;
    return this.write(async () =>
      guard(() => {
        let logged = 0;
        let scored = 0;
        for (const r of rows) logged += stmts.logForecast.run(r.model, r.version, r.date, r.yPred, r.provisional ? 1 : 0, r.featureSet, r.requestId, r.madeAt).changes;
        for (const o of outcomes) scored += stmts.recordOutcome.run(o.yTrue, o.yFinal, o.scoredAt, o.model, o.version, o.date).changes;
        return { logged, scored };
      }),
    );
  }

  countServed(rows: readonly ServedCount[]): Promise<void> {
    const { stmts } = this.writer;
    return this.write(async () => guard(() => void rows.forEach((r) => stmts.countServed.run(r.count, r.model, r.version, r.date))));
  }

  async unscored(model: string, limit: number): Promise<{ version: string; date: string }[]> {
    return guard(() => this.stmts.unscored.all(model, limit));
  }

  compactForecastLog<T>(model: string, version: string, through: string, expectedRows: number, merge: (stored: T | null) => T): Promise<boolean> {
    const { db, stmts } = this.writer;
    // A savepoint inside the write transaction: a refused compaction leaves nothing behind.
    const compact = db.transaction(() => {
      const gone = stmts.compactRows.run(model, version, through).changes;
      if (gone !== expectedRows) throw new CompactionRace();
      const stored = stmts.compacted.get(model, version);
      stmts.saveCompacted.run(model, version, JSON.stringify(merge(stored === undefined ? null : (JSON.parse(stored) as T))), new Date().toISOString());
    });
    return this.write(async () =>
      guard(() => {
        try {
          compact();
          return true;
        } catch (err) {
          if (err instanceof CompactionRace) return false;
          throw err;
        }
      }),
    );
  }

  reopenForecasts(model: string, from: string, deleted: string | null): Promise<void> {
    const { stmts } = this.writer;
    return this.write(async () =>
      guard(() => {
        if (deleted !== null) stmts.dropForecasts.run(model, deleted);
        stmts.reopenOutcomes.run(model, from);
      }),
    );
  }

  async compactedForecasts<T>(model: string, version: string): Promise<T | null> {
    return guard(() => {
      const stored = this.stmts.compacted.get(model, version);
      return stored === undefined ? null : (JSON.parse(stored) as T);
    });
  }

  async forecastLog(model: string, version: string, limit: number, before?: string): Promise<ForecastLogRow[]> {
    return guard(() => (before === undefined ? this.stmts.forecastLog.all(model, version, limit) : this.stmts.forecastLogBefore.all(model, version, before, limit)).map(logRow));
  }

  setRouting(model: string, routing: Partial<Routing>): Promise<{ version: number; routing: Routing }> {
    const { stmts } = this.writer;
    return this.write(async () =>
      guard(() => {
        const row = stmts.versionAndRouting.get(model);
        if (!row) throw new ForecastError(`model '${model}' has no history`, 404, 'unknown_model');
        const next: Routing = {
          defaultVersion: routing.defaultVersion === undefined ? row.default_version : routing.defaultVersion,
          shadowVersion: routing.shadowVersion === undefined ? row.shadow_version : routing.shadowVersion,
        };
        const version = row.version + 1;
        stmts.setRouting.run(version, new Date().toISOString(), next.defaultVersion, next.shadowVersion, model);
        return { version, routing: next };
      }),
    );
  }

  /** The model's version, read inside a write transaction; 404 when the model has no history. */
  private modelVersionOnWriter(model: string): number {
    const current = guard(() => this.writer.stmts.version.get(model));
    if (!current) throw new ForecastError(`model '${model}' has no history`, 404, 'unknown_model');
    return current.version;
  }

  /**
   * Runs one write transaction on the writer connection, after every write queued before it:
   * BEGIN IMMEDIATE, then `fn`, then COMMIT, or ROLLBACK when `fn` or the commit fails.
   */
  private write<T>(fn: () => Promise<T>): Promise<T> {
    const { db } = this.writer;
    const run = this.writeQueue.then(async () => {
      await this.beginWrite();
      try {
        const out = await fn();
        guard(() => db.exec('COMMIT'));
        return out;
      } catch (err) {
        if (db.open && db.inTransaction) db.exec('ROLLBACK');
        throw err;
      }
    });
    this.writeQueue = run.catch(() => undefined);
    return run;
  }

  /** BEGIN IMMEDIATE on the writer, waiting for another writer's lock without blocking the event loop. */
  private async beginWrite(): Promise<void> {
    const { db, yields } = this.writer;
    if (!yields) return guard(() => void db.exec('BEGIN IMMEDIATE'));
    const deadline = performance.now() + this.busyTimeoutMs;
    for (let wait = 1; ; wait = Math.min(wait * 2, 25)) {
      try {
        db.exec('BEGIN IMMEDIATE');
        return;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (code !== 'SQLITE_BUSY' || performance.now() >= deadline) throw sqliteUnavailable(err) ?? err;
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  /** A merge inside its write transaction (see `write`). */
  private async mergeOnWriter(model: string, bars: readonly Bar[], options: MergeOptions): Promise<MergeResult> {
    const { stmts, yields } = this.writer;
    const pause = async (done: number) => {
      if (yields && done > 0 && done % MERGE_SLICE === 0) await new Promise<void>((r) => setImmediate(r));
    };
    const version = this.modelVersionOnWriter(model);
    // The merge rule is decided again here, inside the transaction: another process may have written meanwhile.
    const stored = new Map<string, Bar>();
    for (let k = 0; k < bars.length; k++) {
      await pause(k);
      const row = guard(() => stmts.one.get(model, bars[k].date));
      if (row) stored.set(bars[k].date, row);
    }
    const plan = planMerge(bars, stored, options.replace === true);
    if (plan.conflicts.length > 0) throw conflictError(plan.conflicts);
    const result: MergeResult = { version, added: plan.inserts.length, replaced: plan.updates.length, unchanged: plan.unchanged };
    if (plan.inserts.length === 0 && plan.updates.length === 0) return result;
    const next = version + 1;
    for (let k = 0; k < plan.inserts.length; k++) {
      await pause(k);
      const b = plan.inserts[k];
      guard(() => stmts.insert.run(model, b.date, b.open, b.high, b.low, b.close, b.volume, next));
    }
    for (let k = 0; k < plan.updates.length; k++) {
      await pause(k);
      const b = plan.updates[k];
      guard(() => stmts.update.run(b.open, b.high, b.low, b.close, b.volume, next, model, b.date));
    }
    guard(() => stmts.setVersion.run(next, new Date().toISOString(), model));
    result.version = next;
    return result;
  }


  /** Synchronous and local: `timeoutMs` has nothing to bound beyond the busy timeout. */
  async ping(_timeoutMs?: number): Promise<void> {
    guard(() => this.stmts.ping.get());
  }

  async close(): Promise<void> {
    // A merge in flight finishes (or fails) before its connection closes.
    await this.writeQueue;
    if (this.writer.db !== this.db && this.writer.db.open) this.writer.db.close();
    if (this.db.open) this.db.close();
  }
}


