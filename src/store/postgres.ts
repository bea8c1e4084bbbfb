import pg from 'pg';
import { DEFAULT_CONFIG, type DatabaseTimeouts } from '../config.js';
import { barsToSeries, seriesToBars, type Bar, type BarSeries } from '../data/bars.js';
import { ForecastError, StoreUnavailableError } from '../errors.js';
import { conflictError, planMerge } from './same-bar.js';
import { CompactionRace, logRow, type LogRow } from './forecast-log.js';
import { NO_ROUTING } from './types.js';
import type { Routing, DeleteResult, ForecastLogRow, ForecastOutcomeRow, LoggedForecast, ServedCount, HistoryChanges, HistorySnapshot, HistoryStore, MergeOptions, MergeResult, SeedResult } from './types.js';

export interface PostgresStoreOptions {
  connectionString: string;
  /** Schema holding the tables (created if missing). A lower-case SQL identifier. */
  schema?: string;
  /** Pool size per process (default 10); `timeouts.poolSize` wins when both are given. */
  maxConnections?: number;
  /** Connect, query and statement limits and pool size (defaults: `DEFAULT_CONFIG.database`). */
  timeouts?: Partial<DatabaseTimeouts>;
  /**
   * Server-side `idle_in_transaction_session_timeout` (default: twice the query timeout, at least
   * 5 s): a replica partitioned in the middle of a merge must not hold the model's row lock, and
   * with it every other replica's writes, until TCP notices the dead peer.
   */
  idleInTransactionTimeoutMs?: number;
}

/** Why a store call failed for want of a database, as named in `StoreUnavailableError.details.reason`. */
export type StoreFailureReason =
  | 'refused'
  | 'connect_timeout'
  | 'pool_timeout'
  | 'query_timeout'
  | 'statement_timeout'
  | 'connection_lost'
  | 'server_unavailable'
  | 'closed';

const NETWORK_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'ECONNABORTED', 'EAI_AGAIN', 'ENOTFOUND']);
// admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections: the server is there but not serving.
const SERVER_UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
// idle_in_transaction_session_timeout, idle_session_timeout: the server closed the session.
const SESSION_CLOSED_STATES = new Set(['25P03', '57P05']);

/**
 * Classifies a driver error: the database could not be reached or did not answer (a 503 worth
 * retrying), or null for anything else (a data or programming error keeps its own error). Looks
 * through `cause` and AggregateError's `errors` (a host name resolving to several addresses).
 */
export function storeFailureReason(err: unknown, depth = 0): StoreFailureReason | null {
  if (err === null || typeof err !== 'object' || depth > 4 || err instanceof ForecastError) return null;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const msg = typeof e.message === 'string' ? e.message : '';
  if (code === 'ECONNREFUSED') return 'refused';
  if (NETWORK_CODES.has(code)) return 'connection_lost';
  if (code === '57014') return 'statement_timeout';
  if (SERVER_UNAVAILABLE_STATES.has(code)) return 'server_unavailable';
  if (SESSION_CLOSED_STATES.has(code) || code.startsWith('08')) return 'connection_lost';
  // pg and pg-pool raise these as plain Errors without a code; their wording is all there is.
  if (msg === 'Query read timeout') return 'query_timeout';
  if (msg.startsWith('timeout exceeded when trying to connect')) return 'pool_timeout';
  if (msg.includes('due to connection timeout') || msg === 'timeout expired') return 'connect_timeout';
  if (/^Connection terminated|not queryable$/.test(msg)) return 'connection_lost';
  if (msg.startsWith('Cannot use a pool after calling end')) return 'closed';
  for (const inner of [e.cause, ...(Array.isArray(e.errors) ? e.errors : [])]) {
    const r = storeFailureReason(inner, depth + 1);
    if (r) return r;
  }
  return null;
}

/**
 * Whether the connection itself is suspect after `err`: every failure but a server-side statement
 * timeout, after which the server has answered and the connection is in a known state.
 */
function connectionSuspect(err: unknown): boolean {
  const reason = storeFailureReason(err);
  return reason !== null && reason !== 'statement_timeout';
}

/** The stream under a pg client (not in pg's types). */
function socketOf(c: pg.ClientBase): { destroy(): void } | undefined {
  return (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
}

/** A client checked out for one store call; `fail` marks it unfit to go back to the pool. */
interface Lease {
  fail(err: unknown): void;
}

/** Resolves true when `p` settles within `ms`, false otherwise. */
function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]).finally(() => clearTimeout(timer));
}

/** Limit on start-up work (schema creation, seeding a model's history), which is not a request. */
const SETUP_TIMEOUT_MS = 60_000;

/** A stored bar row: the columns are named like the fields of a Bar. */
type PgBarRow = Bar;
/** A row of the catch-up read: a bar, or a deleted date (null prices), or no change at all (null date). */
type PgChangeRow = { version: number; default_version: string | null; shadow_version: string | null; date: string | null; open: number | null; high: number | null; low: number | null; close: number | null; volume: number | null };

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
 *
 * A database that refuses, is partitioned away or restarts never hangs a call: opening a connection,
 * waiting for a pooled one and every statement have limits, and each such failure rejects with
 * StoreUnavailableError (503). A black-holed call fails within about max(connect, query) timeout.
 * Nothing is cached from a failure, so calls succeed again by themselves once the database is back.
 */
export class PostgresHistoryStore implements HistoryStore {
  readonly kind = 'postgres' as const;
  readonly location: string;
  readonly timeouts: Readonly<DatabaseTimeouts>;
  private readonly pool: pg.Pool;
  private readonly schema: string;
  private ready: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  /** Connected clients, so close() can cut black-holed ones that would never finish a goodbye. */
  private readonly clients = new Set<pg.ClientBase>();

  constructor(options: PostgresStoreOptions) {
    this.schema = options.schema ?? 'forecast';
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(this.schema)) throw new Error(`invalid PostgreSQL schema name '${this.schema}'`);
    const url = new URL(options.connectionString);
    // Never log the password.
    this.location = `postgres://${url.hostname}:${url.port || 5432}${url.pathname} schema ${this.schema}`;
    const given = Object.fromEntries(Object.entries(options.timeouts ?? {}).filter(([, v]) => v !== undefined));
    this.timeouts = Object.freeze({
      ...DEFAULT_CONFIG.database,
      ...(options.maxConnections !== undefined ? { poolSize: options.maxConnections } : {}),
      ...given,
    });
    const t = this.timeouts;
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: t.poolSize,
      // Bounds both a new connection's handshake and the wait for a pooled client when all are busy
      // (pg-pool applies it to queued connect() calls too), so a pool of stuck clients cannot stall callers.
      connectionTimeoutMillis: t.connectTimeoutMs,
      // Client-side: a partition never answers, so only our own clock can end the wait.
      query_timeout: t.queryTimeoutMs,
      // Server-side, below the client's limit: a slow statement is cancelled by the server (57014)
      // before the client gives up on the connection, so the connection usually survives. 0: server default.
      statement_timeout: t.statementTimeoutMs > 0 ? t.statementTimeoutMs : undefined,
      idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? Math.max(5000, 2 * t.queryTimeoutMs),
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      // Exact float8 text whatever the server's default (PostgreSQL 12+: shortest round trip; older: 17 digits).
      options: '-c extra_float_digits=3',
      types: {
        getTypeParser: ((oid: number, format?: string) =>
          oid === FLOAT8_OID ? Number : oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
      },
    });
    // An idle client losing its connection must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);
    this.pool.on('connect', (c) => this.clients.add(c));
    this.pool.on('remove', (c) => this.clients.delete(c));
  }

  private t(name: string): string {
    return `"${this.schema}".${name}`;
  }

  /**
   * Creates the schema and tables (idempotent; safe when several replicas start at once). A failure
   * is not remembered: the next call tries again, so a store opened while the database was down
   * recovers by itself.
   */
  init(): Promise<void> {
    if (!this.ready) {
      const attempt = this.guard(() => this.createSchema());
      this.ready = attempt;
      attempt.catch(() => {
        if (this.ready === attempt) this.ready = null;
      });
    }
    return this.ready;
  }

  /**
   * A query of start-up work (creating the schema, seeding a history, loading a whole history),
   * which a long history may keep busy longer than a request may take: bounded by SETUP_TIMEOUT_MS
   * instead of the request limits. Connecting stays bounded by the connect timeout, so a database
   * that is down still fails fast.
   */
  private setupQuery<R extends pg.QueryResultRow>(c: pg.PoolClient, text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    return c.query<R>({ text, values, query_timeout: SETUP_TIMEOUT_MS } as pg.QueryConfig);
  }

  /** Lifts the server-side statement limit for the rest of a start-up transaction. */
  private setupLimits(c: pg.PoolClient): Promise<unknown> {
    return this.setupQuery(c, `SET LOCAL statement_timeout = ${SETUP_TIMEOUT_MS}`);
  }

  private createSchema(): Promise<void> {
    return this.transaction(async (c) => {
      await this.setupLimits(c);
      // Serialise concurrent first starts: CREATE ... IF NOT EXISTS can still race on the catalog.
      await this.setupQuery(c, 'SELECT pg_advisory_xact_lock(hashtext($1))', [`forecast-history-schema:${this.schema}`]);
      await this.setupQuery(c, `CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
      await this.setupQuery(c, `CREATE TABLE IF NOT EXISTS ${this.t('model_history')} (
        model text PRIMARY KEY,
        version bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now())`);
      // Routing (which version answers, which runs in shadow), added to histories made before it.
      await this.setupQuery(c, `ALTER TABLE ${this.t('model_history')} ADD COLUMN IF NOT EXISTS default_version text, ADD COLUMN IF NOT EXISTS shadow_version text`);
      await this.setupQuery(c, `CREATE TABLE IF NOT EXISTS ${this.t('bars')} (
        model text NOT NULL,
        date text COLLATE "C" NOT NULL,
        open double precision NOT NULL,
        high double precision NOT NULL,
        low double precision NOT NULL,
        close double precision NOT NULL,
        volume double precision NOT NULL,
        rev bigint NOT NULL,
        PRIMARY KEY (model, date))`);
      await this.setupQuery(c, `CREATE INDEX IF NOT EXISTS bars_by_rev ON ${this.t('bars')} (model, rev)`);
      // Tombstones of deleted bars, so that every replica's catch-up read drops them too (deleteBar).
      await this.setupQuery(c, `CREATE TABLE IF NOT EXISTS ${this.t('deleted_bars')} (
        model text NOT NULL,
        date text COLLATE "C" NOT NULL,
        rev bigint NOT NULL,
        PRIMARY KEY (model, date))`);
      await this.setupQuery(c, `CREATE INDEX IF NOT EXISTS deleted_bars_by_rev ON ${this.t('deleted_bars')} (model, rev)`);
      await this.setupQuery(c, `CREATE TABLE IF NOT EXISTS ${this.t('forecast_log')} (
        model text NOT NULL,
        version text NOT NULL,
        date text COLLATE "C" NOT NULL,
        y_pred double precision,
        provisional boolean NOT NULL,
        feature_set text NOT NULL,
        request_id text,
        made_at timestamptz NOT NULL,
        served bigint NOT NULL DEFAULT 1,
        y_true double precision,
        y_final double precision,
        scored_at timestamptz,
        PRIMARY KEY (model, version, date))`);
      await this.setupQuery(c, `CREATE TABLE IF NOT EXISTS ${this.t('forecast_log_compacted')} (
        model text NOT NULL,
        version text NOT NULL,
        summary jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (model, version))`);
      await this.setupQuery(c, `CREATE INDEX IF NOT EXISTS forecast_log_unscored ON ${this.t('forecast_log')} (model, date) WHERE scored_at IS NULL`);
    });
  }

  /** Runs one store call: a database that cannot be reached or did not answer becomes StoreUnavailableError. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.unavailable(err) ?? err;
    }
  }

  private unavailable(err: unknown): StoreUnavailableError | null {
    const reason = storeFailureReason(err);
    if (!reason) return null;
    const t = this.timeouts;
    const what: Record<StoreFailureReason, string> = {
      refused: 'refused the connection',
      connect_timeout: `did not accept a connection within ${t.connectTimeoutMs} ms`,
      pool_timeout: `had no free connection within ${t.connectTimeoutMs} ms`,
      query_timeout: `did not answer within ${t.queryTimeoutMs} ms`,
      statement_timeout: `cancelled a statement that ran longer than ${t.statementTimeoutMs} ms`,
      connection_lost: 'lost the connection',
      server_unavailable: 'is shutting down or not accepting connections',
      closed: 'is closed',
    };
    // Built from the reason alone: a driver message may name hosts or users, never worth a client's eyes.
    return new StoreUnavailableError(`the PostgreSQL history store ${what[reason]}; retry later`, { reason, cause: err });
  }

  private async withClient<T>(fn: (c: pg.PoolClient, lease: Lease) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    let broken: unknown = null;
    const lease: Lease = { fail: (err) => void (broken ??= err ?? new Error('connection unusable')) };
    // A connection dying between two statements is emitted on the client, not thrown: with no
    // listener while checked out, that event would crash the process.
    const onError = (err: Error) => lease.fail(err);
    c.on('error', onError);
    try {
      return await fn(c, lease);
    } catch (err) {
      if (connectionSuspect(err)) lease.fail(err);
      throw err;
    } finally {
      c.removeListener('error', onError);
      if (broken === null) c.release();
      else {
        // Released with an error the pool drops the client, but its goodbye waits for the server's
        // close, which a black-holed socket never sends: cut the socket so it is not kept (or reused).
        c.release(broken instanceof Error ? broken : true);
        socketOf(c)?.destroy();
      }
    }
  }

  private transaction<T>(fn: (c: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    return this.withClient(async (c, lease) => {
      await c.query(begin);
      try {
        const out = await fn(c);
        await c.query('COMMIT');
        return out;
      } catch (err) {
        // After a connection failure a ROLLBACK would only queue behind the hung statement for
        // another full timeout; the server rolls back when the connection is cut.
        if (!connectionSuspect(err)) await c.query('ROLLBACK').catch((e: unknown) => lease.fail(e));
        throw err;
      }
    });
  }

  ensureModel(model: string, seed: BarSeries): Promise<SeedResult> {
    return this.guard(async () => {
      await this.init();
      return this.transaction(async (c) => {
        // Seeding is start-up work, not a request (see setupQuery).
        const setup = <R extends pg.QueryResultRow>(text: string, values: unknown[]) => this.setupQuery<R>(c, text, values);
        await this.setupLimits(c);
        await setup(`INSERT INTO ${this.t('model_history')} (model, version) VALUES ($1, 0) ON CONFLICT (model) DO NOTHING`, [model]);
        const { rows } = await setup<{ version: number }>(`SELECT version FROM ${this.t('model_history')} WHERE model = $1 FOR UPDATE`, [model]);
        const version = rows[0].version;
        const count = await setup<{ n: number }>(`SELECT count(*)::int AS n FROM ${this.t('bars')} WHERE model = $1`, [model]);
        if (count.rows[0].n > 0 || seed.date.length === 0) return { version, seeded: false };
        const next = version + 1;
        await this.insertBars(c, model, seriesToBars(seed), next, SETUP_TIMEOUT_MS);
        await c.query(`UPDATE ${this.t('model_history')} SET version = $2, updated_at = now() WHERE model = $1`, [model, next]);
        return { version: next, seeded: true };
      });
    });
  }

  private async insertBars(c: pg.PoolClient, model: string, bars: readonly Bar[], rev: number, queryTimeoutMs?: number): Promise<void> {
    // One statement for any number of bars: arrays unnested server-side.
    for (let start = 0; start < bars.length; start += 10_000) {
      const chunk = bars.slice(start, start + 10_000);
      await c.query({
        text: `INSERT INTO ${this.t('bars')} (model, date, open, high, low, close, volume, rev)
         SELECT $1, d, o, h, l, c, v, $8 FROM unnest($2::text[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[]) AS u(d, o, h, l, c, v)`,
        ...(queryTimeoutMs ? { query_timeout: queryTimeoutMs } : {}),
        values: [
          model,
          chunk.map((b) => b.date),
          chunk.map((b) => b.open),
          chunk.map((b) => b.high),
          chunk.map((b) => b.low),
          chunk.map((b) => b.close),
          chunk.map((b) => b.volume),
          rev,
        ],
      } as pg.QueryConfig);
    }
  }

  version(model: string): Promise<number> {
    return this.guard(async () => {
      await this.init();
      const { rows } = await this.withClient((c) =>
        c.query<{ version: number }>({
          name: `forecast-version-${this.schema}`,
          text: `SELECT version FROM ${this.t('model_history')} WHERE model = $1`,
          values: [model],
        }),
      );
      return rows.length ? rows[0].version : 0;
    });
  }

  load(model: string): Promise<HistorySnapshot> {
    return this.guard(async () => {
      await this.init();
      // A whole history is read at start (and when the store went back): start-up work (see setupQuery).
      return this.transaction(async (c) => {
        await this.setupLimits(c);
        const v = await this.setupQuery<{ version: number; default_version: string | null; shadow_version: string | null }>(
          c,
          `SELECT version, default_version, shadow_version FROM ${this.t('model_history')} WHERE model = $1`,
          [model],
        );
        const b = await this.setupQuery<PgBarRow>(c, `SELECT date, open, high, low, close, volume FROM ${this.t('bars')} WHERE model = $1 ORDER BY date`, [model]);
        const m = v.rows[0];
        return {
          version: m ? m.version : 0,
          routing: m ? { defaultVersion: m.default_version, shadowVersion: m.shadow_version } : { ...NO_ROUTING },
          bars: barsToSeries(b.rows),
        };
      }, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    });
  }

  changesSince(model: string, version: number): Promise<HistoryChanges> {
    return this.guard(async () => {
      await this.init();
      // One statement, one snapshot: the version, the rows written up to it and the dates deleted
      // up to it (the rows with a null `open`; a stored bar never has one).
      const { rows } = await this.withClient((c) =>
        c.query<PgChangeRow>({
          name: `forecast-changes-${this.schema}`,
          text: `SELECT m.version, m.default_version, m.shadow_version, b.date, b.open, b.high, b.low, b.close, b.volume
                 FROM ${this.t('model_history')} m LEFT JOIN ${this.t('bars')} b ON b.model = m.model AND b.rev > $2
                 WHERE m.model = $1
                 UNION ALL
                 SELECT m.version, m.default_version, m.shadow_version, d.date, NULL, NULL, NULL, NULL, NULL
                 FROM ${this.t('model_history')} m JOIN ${this.t('deleted_bars')} d ON d.model = m.model AND d.rev > $2
                 WHERE m.model = $1
                 ORDER BY date`,
          values: [model, version],
        }),
      );
      if (rows.length === 0) return { version: 0, routing: { ...NO_ROUTING }, bars: [], deleted: [] };
      const bars: Bar[] = [];
      const deleted: string[] = [];
      for (const r of rows) {
        if (r.date === null) continue;
        if (r.open === null) deleted.push(r.date);
        else bars.push({ date: r.date, open: r.open, high: r.high!, low: r.low!, close: r.close!, volume: r.volume! });
      }
      return { version: rows[0].version, routing: { defaultVersion: rows[0].default_version, shadowVersion: rows[0].shadow_version }, bars, deleted };
    });
  }

  merge(model: string, bars: readonly Bar[], options: MergeOptions = {}): Promise<MergeResult> {
    return this.guard(async () => {
      await this.init();
      return this.transaction(async (c) => {
        const version = await this.lockModel(c, model);
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
    });
  }

  deleteBar(model: string, date: string): Promise<DeleteResult> {
    return this.guard(async () => {
      await this.init();
      return this.transaction(async (c) => {
        const version = await this.lockModel(c, model);
        const gone = await c.query<PgBarRow>(
          `DELETE FROM ${this.t('bars')} WHERE model = $1 AND date = $2 RETURNING date, open, high, low, close, volume`,
          [model, date],
        );
        if (gone.rows.length === 0) return { version, deleted: null };
        const next = version + 1;
        await c.query(
          `INSERT INTO ${this.t('deleted_bars')} (model, date, rev) VALUES ($1, $2, $3) ON CONFLICT (model, date) DO UPDATE SET rev = EXCLUDED.rev`,
          [model, date, next],
        );
        await c.query(`UPDATE ${this.t('model_history')} SET version = $2, updated_at = now() WHERE model = $1`, [model, next]);
        const r = gone.rows[0];
        return { version: next, deleted: { date: r.date, open: r.open, high: r.high, low: r.low, close: r.close, volume: r.volume } };
      });
    });
  }

  writeForecastLog(rows: readonly LoggedForecast[], outcomes: readonly ForecastOutcomeRow[]): Promise<{ logged: number; scored: number }> {
    return this.guard(async () => {
      await this.init();
      return this.transaction(async (c) => {
        let logged = 0;
        let scored = 0;
        if (rows.length > 0) {
          const r = await c.query(
            `INSERT INTO ${this.t('forecast_log')} (model, version, date, y_pred, provisional, feature_set, request_id, made_at)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::boolean[], $6::text[], $7::text[], $8::timestamptz[])
             ON CONFLICT (model, version, date) DO NOTHING`,
            [
              rows.map((x) => x.model),
              rows.map((x) => x.version),
              rows.map((x) => x.date),
              rows.map((x) => x.yPred),
              rows.map((x) => x.provisional),
              rows.map((x) => x.featureSet),
              rows.map((x) => x.requestId),
              rows.map((x) => x.madeAt),
            ],
          );
          logged = r.rowCount ?? 0;
        }
        if (outcomes.length > 0) {
          const r = await c.query(
            `UPDATE ${this.t('forecast_log')} AS f SET y_true = u.y, y_final = u.p, scored_at = u.t
             FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::timestamptz[]) AS u(m, v, d, y, p, t)
             WHERE f.model = u.m AND f.version = u.v AND f.date = u.d AND f.scored_at IS NULL`,
            [outcomes.map((x) => x.model), outcomes.map((x) => x.version), outcomes.map((x) => x.date), outcomes.map((x) => x.yTrue), outcomes.map((x) => x.yFinal), outcomes.map((x) => x.scoredAt)],
          );
          scored = r.rowCount ?? 0;
        }
        return { logged, scored };
      });
    });
  }

  countServed(rows: readonly ServedCount[]): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    return this.guard(async () => {
      await this.init();
      await this.withClient((c) =>
        c.query(
          `UPDATE ${this.t('forecast_log')} AS f SET served = f.served + u.n
           FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS u(m, v, d, n)
           WHERE f.model = u.m AND f.version = u.v AND f.date = u.d`,
          [rows.map((x) => x.model), rows.map((x) => x.version), rows.map((x) => x.date), rows.map((x) => x.count)],
        ),
      );
    });
  }

  unscored(model: string, limit: number): Promise<{ version: string; date: string }[]> {
    return this.guard(async () => {
      await this.init();
      const r = await this.withClient((c) =>
        c.query<{ version: string; date: string }>(
          `SELECT version, date FROM ${this.t('forecast_log')} WHERE model = $1 AND scored_at IS NULL ORDER BY date LIMIT $2`,
          [model, limit],
        ),
      );
      return r.rows;
    });
  }


  compactForecastLog<T>(model: string, version: string, through: string, expectedRows: number, merge: (stored: T | null) => T): Promise<boolean> {
    return this.guard(async () => {
      await this.init();
      try {
        return await this.transaction(async (c) => {
          // The summary row's lock (or the first insert's) serialises compactions of one version across replicas.
          await c.query(`INSERT INTO ${this.t('forecast_log_compacted')} (model, version, summary) VALUES ($1, $2, 'null'::jsonb) ON CONFLICT DO NOTHING`, [model, version]);
          const stored = await c.query<{ summary: T | null }>(`SELECT summary FROM ${this.t('forecast_log_compacted')} WHERE model = $1 AND version = $2 FOR UPDATE`, [model, version]);
          const gone = await c.query(`DELETE FROM ${this.t('forecast_log')} WHERE model = $1 AND version = $2 AND date <= $3`, [model, version, through]);
          if (gone.rowCount !== expectedRows) throw new CompactionRace();
          await c.query(`UPDATE ${this.t('forecast_log_compacted')} SET summary = $3::jsonb, updated_at = now() WHERE model = $1 AND version = $2`, [
            model,
            version,
            JSON.stringify(merge(stored.rows[0]?.summary ?? null)),
          ]);
          return true;
        });
      } catch (err) {
        if (err instanceof CompactionRace) return false;
        throw err;
      }
    });
  }

  reopenForecasts(model: string, from: string, deleted: string | null): Promise<void> {
    return this.guard(async () => {
      await this.init();
      await this.transaction(async (c) => {
        if (deleted !== null) await c.query(`DELETE FROM ${this.t('forecast_log')} WHERE model = $1 AND date = $2`, [model, deleted]);
        await c.query(`UPDATE ${this.t('forecast_log')} SET y_true = NULL, y_final = NULL, scored_at = NULL WHERE model = $1 AND date >= $2 AND scored_at IS NOT NULL`, [model, from]);
      });
    });
  }

  compactedForecasts<T>(model: string, version: string): Promise<T | null> {
    return this.guard(async () => {
      await this.init();
      const r = await this.withClient((c) =>
        c.query<{ summary: T | null }>(`SELECT summary FROM ${this.t('forecast_log_compacted')} WHERE model = $1 AND version = $2`, [model, version]),
      );
      return r.rows[0]?.summary ?? null;
    });
  }

  forecastLog(model: string, version: string, limit: number, before?: string): Promise<ForecastLogRow[]> {
    return this.guard(async () => {
      await this.init();
      const columns = 'model, version, date, y_pred, provisional, feature_set, request_id, made_at, served, y_true, y_final, scored_at';
      if (before !== undefined) {
        const older = await this.withClient((c) =>
          c.query<LogRow>(`SELECT ${columns} FROM ${this.t('forecast_log')} WHERE model = $1 AND version = $2 AND date < $3 ORDER BY date LIMIT $4`, [model, version, before, limit]),
        );
        return older.rows.map(logRow);
      }
      const r = await this.withClient((c) =>
        c.query<LogRow>(
          `SELECT * FROM (SELECT model, version, date, y_pred, provisional, feature_set, request_id, made_at, served, y_true, y_final, scored_at
           FROM ${this.t('forecast_log')} WHERE model = $1 AND version = $2 ORDER BY date DESC LIMIT $3) AS newest ORDER BY date`,
          [model, version, limit],
        ),
      );
      return r.rows.map(logRow);
    });
  }

  setRouting(model: string, routing: Partial<Routing>): Promise<{ version: number; routing: Routing }> {
    return this.guard(async () => {
      await this.init();
      return this.transaction(async (c) => {
        const r = await c.query<{ default_version: string | null; shadow_version: string | null }>(
          `SELECT default_version, shadow_version FROM ${this.t('model_history')} WHERE model = $1 FOR UPDATE`,
          [model],
        );
        if (r.rows.length === 0) throw new ForecastError(`model '${model}' has no history`, 404, 'unknown_model');
        const next: Routing = {
          defaultVersion: routing.defaultVersion === undefined ? r.rows[0].default_version : routing.defaultVersion,
          shadowVersion: routing.shadowVersion === undefined ? r.rows[0].shadow_version : routing.shadowVersion,
        };
        const u = await c.query<{ version: number }>(
          `UPDATE ${this.t('model_history')} SET version = version + 1, updated_at = now(), default_version = $2, shadow_version = $3 WHERE model = $1 RETURNING version`,
          [model, next.defaultVersion, next.shadowVersion],
        );
        return { version: u.rows[0].version, routing: next };
      });
    });
  }

  /** Takes the model's row lock (serialising writers across every replica) and returns its version; 404 without a history. */
  private async lockModel(c: pg.PoolClient, model: string): Promise<number> {
    const v = await c.query<{ version: number }>(`SELECT version FROM ${this.t('model_history')} WHERE model = $1 FOR UPDATE`, [model]);
    if (v.rows.length === 0) throw new ForecastError(`model '${model}' has no history`, 404, 'unknown_model');
    return v.rows[0].version;
  }

  /**
   * Resolves when the store can serve (schema in place, a statement answered). Bounded by the
   * connect and query timeouts; `timeoutMs` bounds it further (a readiness probe's own limit).
   */
  ping(timeoutMs?: number): Promise<void> {
    const check = this.guard(async () => {
      await this.init();
      await this.withClient((c) => c.query('SELECT 1'));
    });
    if (timeoutMs === undefined) return check;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StoreUnavailableError(`the PostgreSQL history store did not answer within ${timeoutMs} ms; retry later`, { reason: 'query_timeout' })),
        timeoutMs,
      );
    });
    // The check goes on after a timeout (itself bounded); its late failure is nobody's to handle.
    check.catch(() => undefined);
    return Promise.race([check, late]).finally(() => clearTimeout(timer));
  }

  /** Connections open now (a socket the store still holds, healthy or not). */
  get connections(): number {
    return this.clients.size;
  }

  /** Ends the pool: gracefully when the database answers, cutting the sockets when it does not. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const ended = this.pool.end();
      ended.catch(() => undefined);
      // pool.end() resolves as soon as no client is checked out; the goodbye each idle connection was
      // sent still waits for the server to close it, which a black-holed one never does.
      const gone = Promise.all([ended, this.allRemoved()]);
      // A database that answers says goodbye in milliseconds; a shutdown should not wait out a partition.
      if (await settlesWithin(gone, Math.min(this.timeouts.connectTimeoutMs, 1000))) return;
      for (const c of this.clients) socketOf(c)?.destroy();
      await settlesWithin(gone, this.timeouts.connectTimeoutMs + this.timeouts.queryTimeoutMs);
    })();
    return this.closing;
  }

  private allRemoved(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.clients.size > 0) return;
        this.pool.off('remove', check);
        resolve();
      };
      this.pool.on('remove', check);
      check();
    });
  }

  /** Drops the schema and everything in it (tests). */
  dropSchema(): Promise<void> {
    return this.guard(async () => {
      await this.withClient((c) => c.query(`DROP SCHEMA IF EXISTS "${this.schema}" CASCADE`));
      this.ready = null;
    });
  }
}
