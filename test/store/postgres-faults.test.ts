/**
 * The PostgreSQL store under network faults, staged by a TCP proxy between it and the real server:
 * refused, black-holed (partitioned), connections killed, a row lock held by a stuck writer. Every
 * call must reject with StoreUnavailableError (503) within its timeouts, never hang or queue behind
 * a hung call, never reuse a black-holed socket, and succeed again by itself once the proxy forwards.
 */
import type { EventEmitter } from 'node:events';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Bar } from '../../src/data/bars.js';
import { generateSyntheticBars } from '../../src/data/index.js';
import { ForecastError, StoreUnavailableError } from '../../src/errors.js';
import { openHistoryStore } from '../../src/store/index.js';
import { PostgresHistoryStore, storeFailureReason } from '../../src/store/postgres.js';
import { startTcpProxy, spawnTcpProxy, type LocalTcpProxy } from '../helpers/tcp-proxy.js';
import { needsPostgres, PG_URL, uniqueSchema } from './pg-helper.js';

const withPostgres = await needsPostgres();

const TIMEOUTS = { connectTimeoutMs: 400, queryTimeoutMs: 400, statementTimeoutMs: 300, poolSize: 4 };
/** A failing call may take one connect or one query timeout, and the machine is shared: a generous margin. */
const BOUND_MS = TIMEOUTS.connectTimeoutMs + TIMEOUTS.queryTimeoutMs + 1500;
/** Past this a call counts as hung (it would otherwise hang until the test times out). */
const HUNG_MS = 8000;

const MODEL = 'faulty';
const seed = generateSyntheticBars({ seed: 11, bars: 40 });

type Outcome = { ok: true; ms: number; value: unknown } | { ok: false; ms: number; err: unknown };

/** Settles `p`, timing it; a call still pending after HUNG_MS is reported as hung. */
async function timed(p: Promise<unknown>): Promise<Outcome> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`hung: no answer within ${HUNG_MS} ms`)), HUNG_MS)));
  try {
    const value = await Promise.race([p, hung]);
    return { ok: true, ms: performance.now() - t0, value };
  } catch (err) {
    return { ok: false, ms: performance.now() - t0, err };
  } finally {
    clearTimeout(timer);
  }
}

function expectUnavailable(o: Outcome, label: string, bound = BOUND_MS): StoreUnavailableError {
  if (o.ok) throw new Error(`${label}: expected StoreUnavailableError, resolved in ${Math.round(o.ms)} ms`);
  if (!(o.err instanceof StoreUnavailableError)) throw new Error(`${label}: expected StoreUnavailableError, got ${String((o.err as Error)?.stack ?? o.err)}`);
  expect(o.err.status, label).toBe(503);
  expect(o.err.code, label).toBe('store_unavailable');
  expect(o.ms, `${label} took ${Math.round(o.ms)} ms`).toBeLessThan(bound);
  return o.err;
}

let day = 0;
/** A bar on a date no other test used. */
function freshBar(): Bar {
  day++;
  const d = new Date(Date.UTC(2040, 0, 1) + day * 86_400_000).toISOString().slice(0, 10);
  return { date: d, open: 10 + day, high: 11 + day, low: 9 + day, close: 10.5 + day, volume: 1000 + day };
}

/** Every store method once, as labelled calls (ensureModel on the existing model only reads). */
function everyMethod(s: PostgresHistoryStore): Array<[string, () => Promise<unknown>]> {
  return [
    ['version', () => s.version(MODEL)],
    ['changesSince', () => s.changesSince(MODEL, 0)],
    ['load', () => s.load(MODEL)],
    ['merge', () => s.merge(MODEL, [freshBar()])],
    ['ensureModel', () => s.ensureModel(MODEL, seed)],
    ['ping', () => s.ping()],
  ];
}

describe('storeFailureReason', () => {
  it('names connection failures and timeouts, and leaves data errors alone', () => {
    const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });
    expect(storeFailureReason(withCode('ECONNREFUSED'))).toBe('refused');
    for (const c of ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH']) expect(storeFailureReason(withCode(c))).toBe('connection_lost');
    expect(storeFailureReason(withCode('57014', 'canceling statement due to statement timeout'))).toBe('statement_timeout');
    for (const c of ['57P01', '57P02', '57P03', '53300']) expect(storeFailureReason(withCode(c))).toBe('server_unavailable');
    for (const c of ['08000', '08003', '08006', '08P01', '25P03']) expect(storeFailureReason(withCode(c))).toBe('connection_lost');
    expect(storeFailureReason(new Error('Query read timeout'))).toBe('query_timeout');
    expect(storeFailureReason(new Error('timeout exceeded when trying to connect'))).toBe('pool_timeout');
    expect(storeFailureReason(new Error('Connection terminated due to connection timeout', { cause: new Error('timeout expired') }))).toBe('connect_timeout');
    expect(storeFailureReason(new Error('Connection terminated unexpectedly'))).toBe('connection_lost');
    expect(storeFailureReason(new Error('Client has encountered a connection error and is not queryable'))).toBe('connection_lost');
    // `localhost` resolving to ::1 and 127.0.0.1: both refused.
    expect(storeFailureReason(new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')], 'connect failed'))).toBe('refused');
    // Data and programming errors keep their own error.
    expect(storeFailureReason(withCode('23505', 'duplicate key value violates unique constraint'))).toBeNull();
    expect(storeFailureReason(withCode('42P01', 'relation does not exist'))).toBeNull();
    expect(storeFailureReason(withCode('28P01', 'password authentication failed'))).toBeNull();
    expect(storeFailureReason(new ForecastError('conflict', 409, 'conflict'))).toBeNull();
    expect(storeFailureReason(new TypeError('x is not a function'))).toBeNull();
    expect(storeFailureReason(undefined)).toBeNull();
  });
});

withPostgres.describe('PostgresHistoryStore under network faults', () => {
  const schema = uniqueSchema('faults');
  let proxy: LocalTcpProxy;
  let proxyUrl: string;
  const stores: PostgresHistoryStore[] = [];
  const open = (extra: Partial<typeof TIMEOUTS> = {}, url = proxyUrl) => {
    const s = new PostgresHistoryStore({ connectionString: url, schema, timeouts: { ...TIMEOUTS, ...extra } });
    stores.push(s);
    return s;
  };

  beforeAll(async () => {
    proxy = await startTcpProxy();
    proxyUrl = proxy.url(PG_URL);
    const direct = new PostgresHistoryStore({ connectionString: PG_URL, schema });
    await direct.init();
    await direct.ensureModel(MODEL, seed);
    await direct.close();
  });
  afterEach(async () => {
    await proxy.forward();
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await proxy?.close();
    const s = new PostgresHistoryStore({ connectionString: PG_URL, schema });
    await s.dropSchema();
    await s.close();
  });

  it('refused: every method rejects with StoreUnavailableError at once, and recovers by itself', async () => {
    const s = open();
    await s.init();
    await proxy.refuse();
    for (const [name, call] of everyMethod(s)) {
      const err = expectUnavailable(await timed(call()), `refused ${name}`);
      // The pooled connection the refusal cut may be the first one tried.
      expect(['refused', 'connection_lost'], name).toContain(err.details?.reason);
    }
    for (const [name, call] of everyMethod(s)) expect(expectUnavailable(await timed(call()), `refused ${name}`).details).toEqual({ reason: 'refused' });
    await proxy.forward();
    for (const [name, call] of everyMethod(s)) expect((await timed(call())).ok, `${name} after forward`).toBe(true);
  });

  it('black-holed: every method rejects within the timeout, with idle pooled connections and with none', async () => {
    const warm = open();
    await warm.version(MODEL);
    await warm.load(MODEL);
    const cold = open();
    await proxy.blackhole();
    for (const s of [warm, cold])
      for (const [name, call] of everyMethod(s)) {
        const err = expectUnavailable(await timed(call()), `black-holed ${s === warm ? 'warm' : 'cold'} ${name}`);
        expect(['connect_timeout', 'query_timeout', 'pool_timeout']).toContain(err.details?.reason);
      }
  });

  it('black-holed: many concurrent calls (more than the pool holds) all fail within the bound, none queues behind a hung one', async () => {
    const s = open();
    await Promise.all([s.version(MODEL), s.version(MODEL), s.load(MODEL)]); // some idle pooled connections
    await proxy.blackhole();
    const calls = [...everyMethod(s), ...everyMethod(s), ...everyMethod(s)];
    expect(calls.length).toBeGreaterThan(TIMEOUTS.poolSize * 3);
    const outcomes = await Promise.all(calls.map(([, call]) => timed(call())));
    outcomes.forEach((o, i) => expectUnavailable(o, `concurrent ${calls[i][0]} #${i}`));
    // And the calls after them too: no stuck client is left holding a pool slot.
    for (const [name, call] of everyMethod(s)) expectUnavailable(await timed(call()), `later ${name}`);
  });

  it('a connection that timed out is dropped, not returned to the pool (where every later call would queue behind it)', async () => {
    // One connection: were the stuck one kept, every later call would get it back.
    const s = open({ poolSize: 1 });
    for (const [name, call] of everyMethod(s)) {
      await s.version(MODEL);
      await proxy.stall();
      const err = expectUnavailable(await timed(call()), `${name} on a stalled connection`);
      expect(err.details).toEqual({ reason: 'query_timeout' });
      for (const [next, again] of everyMethod(s)) expect((await timed(again())).ok, `${next} after ${name} timed out`).toBe(true);
      expect(s.connections, 'the stuck connection is closed, not kept').toBeLessThanOrEqual(1);
    }
  });

  it('after a partition heals, calls succeed without reopening the store, and no acknowledged bar is lost', async () => {
    const s = open();
    const before = await s.version(MODEL);
    const acked = freshBar();
    await s.merge(MODEL, [acked]);
    await proxy.blackhole();
    const lostBar = freshBar();
    expectUnavailable(await timed(s.merge(MODEL, [lostBar])), 'merge while partitioned');
    await proxy.forward();
    const v = await s.version(MODEL);
    expect(v).toBeGreaterThan(before);
    const snap = await s.load(MODEL);
    expect(snap.bars.date).toContain(acked.date);
    // The unacknowledged bar may or may not have been written; resubmitting it is safe either way.
    const again = await s.merge(MODEL, [lostBar]);
    expect(again.added + again.unchanged).toBe(1);
    expect(await s.ping()).toBeUndefined();
  });

  it('a failed init is not cached: a store opened while the database is down comes up by itself', async () => {
    await proxy.refuse();
    const s = open();
    expectUnavailable(await timed(s.init()), 'init refused');
    expectUnavailable(await timed(s.version(MODEL)), 'version refused');
    await proxy.blackhole();
    expectUnavailable(await timed(s.init()), 'init black-holed');
    await proxy.forward();
    await s.init();
    expect(await s.version(MODEL)).toBeGreaterThan(0);
  });

  it('openHistoryStore passes the timeouts on, and fails fast instead of hanging when the database is unreachable', async () => {
    await proxy.blackhole();
    const t0 = performance.now();
    const o = await timed(openHistoryStore({ databaseUrl: proxyUrl, databaseSchema: schema, database: TIMEOUTS }));
    expectUnavailable(o, 'openHistoryStore black-holed');
    expect(performance.now() - t0).toBeLessThan(BOUND_MS + TIMEOUTS.connectTimeoutMs);
    await proxy.forward();
    const s = (await openHistoryStore({ databaseUrl: proxyUrl, databaseSchema: schema, database: TIMEOUTS })) as PostgresHistoryStore;
    stores.push(s);
    expect(s.timeouts).toEqual(TIMEOUTS);
    expect(await s.version(MODEL)).toBeGreaterThan(0);
  });

  it('ping(timeoutMs) is bounded by its own limit too', async () => {
    const s = open({ connectTimeoutMs: 3000, queryTimeoutMs: 3000, statementTimeoutMs: 2500 });
    await s.ping();
    await proxy.blackhole();
    const o = await timed(s.ping(200));
    expectUnavailable(o, 'ping(200)', 200 + 1500);
    await proxy.forward();
    await s.ping(2000);
  });

  it('killed connections: an in-flight call fails as unavailable, idle ones are replaced by themselves', async () => {
    const s = open({ statementTimeoutMs: 5000, queryTimeoutMs: 6000 });
    await s.version(MODEL);
    // An in-flight merge, held on the model's row lock by another writer.
    const locker = new pg.Client({ connectionString: PG_URL });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`SELECT version FROM "${schema}".model_history WHERE model = $1 FOR UPDATE`, [MODEL]);
      const pending = timed(s.merge(MODEL, [freshBar()]));
      await new Promise((r) => setTimeout(r, 200));
      await proxy.kill();
      const err = expectUnavailable(await pending, 'merge on a killed connection', 1500);
      expect(err.details).toEqual({ reason: 'connection_lost' });
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }
    await s.version(MODEL);
    await proxy.kill(); // idle pooled connections cut
    await new Promise((r) => setTimeout(r, 100));
    for (const [name, call] of everyMethod(s)) expect((await timed(call())).ok, `${name} after kill`).toBe(true);
  });

  it('a statement stuck on a row lock past statement_timeout is a 503, and the connection survives it', async () => {
    // Well below the client's limit, so that the server's cancel is what ends the wait on a busy machine.
    const s = open({ statementTimeoutMs: 200, queryTimeoutMs: 2000, poolSize: 1 });
    await s.version(MODEL);
    // White-box: the pool's own event says whether the connection was thrown away.
    let dropped = 0;
    (s as unknown as { pool: EventEmitter }).pool.on('remove', () => dropped++);
    const locker = new pg.Client({ connectionString: PG_URL });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`SELECT version FROM "${schema}".model_history WHERE model = $1 FOR UPDATE`, [MODEL]);
      const err = expectUnavailable(await timed(s.merge(MODEL, [freshBar()])), 'merge behind a held row lock');
      expect(err.details).toEqual({ reason: 'statement_timeout' });
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }
    expect((await s.merge(MODEL, [freshBar()])).added).toBe(1);
    expect(dropped).toBe(0);
  });

  it('a 409 conflict and a 404 unknown model still come out as themselves, through the proxy', async () => {
    const s = open();
    const bar = freshBar();
    await s.merge(MODEL, [bar]);
    const conflict = await timed(s.merge(MODEL, [{ ...bar, close: bar.close * 1.1 }]));
    expect(conflict.ok).toBe(false);
    const err = (conflict as { err: unknown }).err;
    expect(err).toBeInstanceOf(ForecastError);
    expect(err).not.toBeInstanceOf(StoreUnavailableError);
    expect(err).toMatchObject({ status: 409, code: 'conflict', details: { date: bar.date, field: 'close' } });
    await expect(s.merge('no-such-model', [bar])).rejects.toMatchObject({ status: 404, code: 'unknown_model' });
    // The connection that answered the conflict is still good.
    expect((await s.merge(MODEL, [freshBar()])).added).toBe(1);
  });

  it('the error message names no credentials', async () => {
    const secretUrl = proxy.url(PG_URL.replace('postgres://postgres@', 'postgres://postgres:s3cret-Pa55@'));
    const s = open({}, secretUrl);
    for (const fault of ['refuse', 'blackhole'] as const) {
      await proxy[fault]();
      const o = await timed(s.version(MODEL));
      const err = expectUnavailable(o, `${fault} with a password in the URL`);
      const shown = `${err.message} ${JSON.stringify(err)} ${JSON.stringify(err.details)}`;
      expect(shown).not.toContain('s3cret');
      expect(shown).not.toContain(String(proxy.port));
      await proxy.forward();
    }
  });

  it('close() does not hang on black-holed connections', async () => {
    const s = new PostgresHistoryStore({ connectionString: proxyUrl, schema, timeouts: TIMEOUTS });
    await Promise.all([s.version(MODEL), s.load(MODEL)]);
    await proxy.blackhole();
    expect(s.connections).toBeGreaterThan(0);
    const o = await timed(s.close());
    expect(o.ok).toBe(true);
    expect(o.ms).toBeLessThan(BOUND_MS);
    // Not left half-closed, waiting for a goodbye from the far side that never comes.
    expect(s.connections).toBe(0);
    expect(await timed(s.close())).toMatchObject({ ok: true });
  });

  it('a SIGSTOPped proxy process is a black hole, and SIGCONT heals it', async () => {
    const child = await spawnTcpProxy();
    try {
      const s = open({}, child.url(PG_URL));
      await s.version(MODEL);
      child.stop();
      try {
        const outcomes = await Promise.all(everyMethod(s).map(([, call]) => timed(call())));
        outcomes.forEach((o, i) => expectUnavailable(o, `stopped proxy ${everyMethod(s)[i][0]}`));
      } finally {
        child.cont();
      }
      for (const [name, call] of everyMethod(s)) expect((await timed(call())).ok, `${name} after SIGCONT`).toBe(true);
    } finally {
      await child.close();
    }
  });
});

withPostgres.describe('seeding is start-up work, not a request', () => {
  it('a history that takes longer to seed than the request limits still seeds; requests stay bounded by them', async () => {
    const schema = uniqueSchema('seed_limit');
    // Request limits far below what seeding 100,000 bars takes.
    const store = new PostgresHistoryStore({ connectionString: PG_URL, schema, timeouts: { connectTimeoutMs: 2000, queryTimeoutMs: 150, statementTimeoutMs: 100, poolSize: 2 } });
    try {
      const long = generateSyntheticBars({ seed: 12, bars: 100_000 });
      const t0 = performance.now();
      const { version } = await store.ensureModel('long', long);
      expect(performance.now() - t0, 'the seed must really take longer than the request limits for this test to mean anything').toBeGreaterThan(150);
      expect(version).toBe(1);
      expect((await store.load('long')).bars.date.length).toBe(100_000);
      // A request-path statement is still cancelled at its own limit.
      const sleep = store.ping(5000).then(() => store['pool'].query('SELECT pg_sleep(1)'));
      await expect(sleep).rejects.toThrow();
    } finally {
      await store.dropSchema().catch(() => undefined);
      await store.close();
    }
  });
});
