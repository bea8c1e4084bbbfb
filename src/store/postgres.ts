import pg from 'pg';
import { barsToSeries, seriesToBars, type Bar, type BarSeries } from '../data/bars.js';
import { ForecastError } from '../errors.js';
import { conflictError, planMerge } from './same-bar.js';
import type { HistoryChanges, HistorySnapshot, HistoryStore, MergeOptions, MergeResult } from './types.js';

export interface PostgresStoreOptions {
  connectionString: string;
  /** Schema holding the tables (created if missing). A lower-case SQL identifier. */
  schema?: string;
  /** Pool size per process (default 10). */
  maxConnections?: number;
}

/** A stored bar row: the columns are named like the fields of a Bar. */
type PgBarRow = Bar;

// float8 comes back as text in shortest round-trip form (extra_float_digits = 1, PostgreSQL 12+),
// so Number() restores every double bit for bit; parameters go out as String(x), also exact.
const FLOAT8_OID = 701;
const INT8_OID = 20;

/**
 * The shared history store: several service replicas on one PostgreSQL database answer from the
 * same history. Prices are double precision (bit-exact round trip). Every merge runs in one
 * transaction holding the model's row lock (SELECT ... FOR UPDATE), so concurrent writers from any
 * replica are serialised and a bar is never lost or applied twice; commit is durable
 * (synchronous_commit) before the service answers.
 */
export class PostgresHistoryStore implements HistoryStore {
  readonly kind = 'postgres' as const;
  readonly location: string;
  private readonly pool: pg.Pool;
  private readonly schema: string;
  private ready: Promise<void> | null = null;

  constructor(options: PostgresStoreOptions) {
    this.schema = options.schema ?? 'forecast';
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(this.schema)) throw new Error(`invalid PostgreSQL schema name '${this.schema}'`);
    const url = new URL(options.connectionString);
    // Never log the password.
    this.location = `postgres://${url.hostname}:${url.port || 5432}${url.pathname} schema ${this.schema}`;
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.maxConnections ?? 10,
      // Exact float8 text whatever the server's default (PostgreSQL 12+: shortest round trip; older: 17 digits).
      options: '-c extra_float_digits=3',
      types: {
        getTypeParser: ((oid: number, format?: string) =>
          oid === FLOAT8_OID ? Number : oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
      },
    });
    // An idle client losing its connection must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);

  }

  private t(name: string): string {
    return `"${this.schema}".${name}`;
  }

  /** Creates the schema and tables (idempotent; safe when several replicas start at once). */
  init(): Promise<void> {
    this.ready ??= this.withClient(async (c) => {
      await c.query('BEGIN');
      try {
        // Serialise concurrent first starts: CREATE ... IF NOT EXISTS can still race on the catalog.
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`forecast-history-schema:${this.schema}`]);
        await c.query(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
        await c.query(`CREATE TABLE IF NOT EXISTS ${this.t('model_history')} (
          model text PRIMARY KEY,
          version bigint NOT NULL,
          updated_at timestamptz NOT NULL DEFAULT now())`);
        await c.query(`CREATE TABLE IF NOT EXISTS ${this.t('bars')} (
          model text NOT NULL,
          date text COLLATE "C" NOT NULL,
          open double precision NOT NULL,
          high double precision NOT NULL,
          low double precision NOT NULL,
          close double precision NOT NULL,
          volume double precision NOT NULL,
          rev bigint NOT NULL,
          PRIMARY KEY (model, date))`);
        await c.query(`CREATE INDEX IF NOT EXISTS bars_by_rev ON ${this.t('bars')} (model, rev)`);
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
    return this.ready;
  }

  private async withClient<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      return await fn(c);
    } finally {
      c.release();
    }
  }

  private async transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    await this.init();
    return this.withClient(async (c) => {
      await c.query('BEGIN');
      try {
        const out = await fn(c);
        await c.query('COMMIT');
        return out;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async ensureModel(model: string, seed: BarSeries): Promise<number> {
    return this.transaction(async (c) => {
      await c.query(`INSERT INTO ${this.t('model_history')} (model, version) VALUES ($1, 0) ON CONFLICT (model) DO NOTHING`, [model]);
      const { rows } = await c.query<{ version: number }>(`SELECT version FROM ${this.t('model_history')} WHERE model = $1 FOR UPDATE`, [model]);
      const version = rows[0].version;
      const count = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${this.t('bars')} WHERE model = $1`, [model]);
      if (count.rows[0].n > 0 || seed.date.length === 0) return version;
      const next = version + 1;
      await this.insertBars(c, model, seriesToBars(seed), next);
      await c.query(`UPDATE ${this.t('model_history')} SET version = $2, updated_at = now() WHERE model = $1`, [model, next]);
      return next;
    });
  }

  private async insertBars(c: pg.PoolClient, model: string, bars: readonly Bar[], rev: number): Promise<void> {
    // One statement for any number of bars: arrays unnested server-side.
    for (let start = 0; start < bars.length; start += 10_000) {
      const chunk = bars.slice(start, start + 10_000);
      await c.query(
        `INSERT INTO ${this.t('bars')} (model, date, open, high, low, close, volume, rev)
         SELECT $1, d, o, h, l, c, v, $8 FROM unnest($2::text[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[]) AS u(d, o, h, l, c, v)`,
        [
          model,
          chunk.map((b) => b.date),
          chunk.map((b) => b.open),
          chunk.map((b) => b.high),
          chunk.map((b) => b.low),
          chunk.map((b) => b.close),
          chunk.map((b) => b.volume),
          rev,
        ],
      );
    }
  }

  async version(model: string): Promise<number> {
    await this.init();
    const { rows } = await this.pool.query<{ version: number }>({
      name: `forecast-version-${this.schema}`,
      text: `SELECT version FROM ${this.t('model_history')} WHERE model = $1`,
      values: [model],
    });
    return rows.length ? rows[0].version : 0;
  }

  async load(model: string): Promise<HistorySnapshot> {
    await this.init();
    return this.withClient(async (c) => {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        const v = await c.query<{ version: number }>(`SELECT version FROM ${this.t('model_history')} WHERE model = $1`, [model]);
        const b = await c.query<PgBarRow>(
          `SELECT date, open, high, low, close, volume FROM ${this.t('bars')} WHERE model = $1 ORDER BY date`,
          [model],
        );
        await c.query('COMMIT');
        return { version: v.rows.length ? v.rows[0].version : 0, bars: barsToSeries(b.rows) };
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async changesSince(model: string, version: number): Promise<HistoryChanges> {
    await this.init();
    // One statement, one snapshot: the version and the rows written up to it.
    const { rows } = await this.pool.query<PgBarRow & { version: number }>({
      name: `forecast-changes-${this.schema}`,
      text: `SELECT m.version, b.date, b.open, b.high, b.low, b.close, b.volume
             FROM ${this.t('model_history')} m LEFT JOIN ${this.t('bars')} b ON b.model = m.model AND b.rev > $2
             WHERE m.model = $1 ORDER BY b.date`,
      values: [model, version],
    });
    if (rows.length === 0) return { version: 0, bars: [] };
    const bars: Bar[] = [];
    for (const r of rows) if (r.date !== null) bars.push({ date: r.date, open: r.open, high: r.high, low: r.low, close: r.close, volume: r.volume });
    return { version: rows[0].version, bars };
  }

  async merge(model: string, bars: readonly Bar[], options: MergeOptions = {}): Promise<MergeResult> {
    return this.transaction(async (c) => {
      // The model's row lock serialises writers across every replica.
      const v = await c.query<{ version: number }>(`SELECT version FROM ${this.t('model_history')} WHERE model = $1 FOR UPDATE`, [model]);
      if (v.rows.length === 0) throw new ForecastError(`model '${model}' has no history`, 404, 'unknown_model');
      const version = v.rows[0].version;
      const found = await c.query<PgBarRow>(
        `SELECT date, open, high, low, close, volume FROM ${this.t('bars')} WHERE model = $1 AND date = ANY($2::text[])`,
        [model, bars.map((b) => b.date)],
      );
      const stored = new Map<string, Bar>(found.rows.map((r) => [r.date, r]));
      const plan = planMerge(bars, stored, options.replace === true);
      if (plan.conflicts.length > 0) throw conflictError(plan.conflicts);
      const result: MergeResult = { version, added: plan.inserts.length, replaced: plan.updates.length, unchanged: plan.unchanged };
      if (plan.inserts.length === 0 && plan.updates.length === 0) return result;
      const next = version + 1;
      if (plan.inserts.length) await this.insertBars(c, model, plan.inserts, next);
      if (plan.updates.length) {
        const u = plan.updates;
        await c.query(
          `UPDATE ${this.t('bars')} AS b SET open = u.o, high = u.h, low = u.l, close = u.c, volume = u.v, rev = $8
           FROM unnest($2::text[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[]) AS u(d, o, h, l, c, v)
           WHERE b.model = $1 AND b.date = u.d`,
          [model, u.map((b) => b.date), u.map((b) => b.open), u.map((b) => b.high), u.map((b) => b.low), u.map((b) => b.close), u.map((b) => b.volume), next],
        );
      }
      await c.query(`UPDATE ${this.t('model_history')} SET version = $2, updated_at = now() WHERE model = $1`, [model, next]);
      result.version = next;
      return result;
    });
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** Drops the schema and everything in it (tests). */
  async dropSchema(): Promise<void> {
    await this.pool.query(`DROP SCHEMA IF EXISTS "${this.schema}" CASCADE`);
  }
}


