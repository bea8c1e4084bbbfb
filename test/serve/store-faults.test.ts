/**
 * The service on a PostgreSQL history it cannot reach: a TCP proxy between the app and the database
 * refuses, black-holes (a partition) or is SIGSTOPped. Every request must answer
 * `503 store_unavailable` within the configured timeouts (never 500, never no answer, never queued
 * behind a hung request on the same model), `/readyz` must answer 503 within READY_TIMEOUT_MS, and
 * once the proxy forwards again the service answers 200 by itself, with every acknowledged bar kept.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Bar } from '../../src/data/bars.js';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import type { AppOptions } from '../../src/serve/app.js';
import { PostgresHistoryStore } from '../../src/store/postgres.js';
import { spawnTcpProxy, startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { needsPostgres, PG_URL, uniqueSchema } from '../store/pg-helper.js';
import { nextWeekday, tinySeries, writeTinyBundle, type TinySpec } from './helpers/bundles.js';
import { KEY, startTestServer, tempDir, type TestServer } from './helpers/http.js';

const withPostgres = await needsPostgres();

const SPEC: TinySpec = { name: 'acme', version: '1', seed: 21 };
const COLS = ['date', 'open', 'high', 'low', 'close', 'volume'];
const DATABASE = { connectTimeoutMs: 400, queryTimeoutMs: 400, statementTimeoutMs: 300 };
const READY_TIMEOUT_MS = 500;
/** One connect or query timeout (a catch-up read may wait for the one in flight: two), plus a generous margin for a shared machine. */
const BOUND_MS = 2 * Math.max(DATABASE.connectTimeoutMs, DATABASE.queryTimeoutMs) + 1500;
const READY_BOUND_MS = READY_TIMEOUT_MS + 1500;
/** Past this a request counts as unanswered. */
const HUNG_MS = 8000;

interface Answer {
  status: number;
  body: any;
  ms: number;
}

/** A request with a hard client-side limit: no answer within HUNG_MS is status 0, not a hung test. */
async function timedCall(url: string, path: string, body?: unknown): Promise<Answer> {
  const t0 = performance.now();
  try {
    const res = await fetch(`${url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'x-api-key': KEY, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(HUNG_MS),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed, ms: performance.now() - t0 };
  } catch (err) {
    return { status: 0, body: `no answer: ${(err as Error).message}`, ms: performance.now() - t0 };
  }
}

function expect503(a: Answer, label: string, bound = BOUND_MS): void {
  expect({ label, status: a.status, code: a.body?.error?.code ?? a.body }).toEqual({ label, status: 503, code: 'store_unavailable' });
  expect(typeof a.body.error.message, label).toBe('string');
  expect(a.ms, `${label} answered in ${Math.round(a.ms)} ms`).toBeLessThan(bound);
}

function expectNotReady(a: Answer, label: string): void {
  expect({ label, status: a.status }).toEqual({ label, status: 503 });
  expect(a.ms, `${label} answered in ${Math.round(a.ms)} ms`).toBeLessThan(READY_BOUND_MS);
}

/** The HTTP scenario shared by the in-process proxy and the SIGSTOPped proxy process. */
function scenario(tag: string, makeProxy: () => Promise<TcpProxy & { stop?(): void; cont?(): void }>) {
  const schema = uniqueSchema(tag);
  const tmp = tempDir();
  const history = tinySeries(SPEC);
  const n0 = history.date.length;
  let proxy: TcpProxy & { stop?(): void; cont?(): void };
  let srv: TestServer;
  let lastDate = history.date[n0 - 1];
  /** Bars the service answered 200 for: each must be in the store at the end. */
  const acknowledged: Bar[] = [];
  /** Bars answered 503: they may or may not be stored; resubmitted after the fault. */
  const unanswered: Bar[] = [];
  let k = 0;

  const newBar = (): Bar => {
    lastDate = nextWeekday(lastDate);
    k++;
    return { date: lastDate, open: 70 + k, high: 72 + k, low: 69 + k, close: 70.5 + k / 3, volume: 500 + k };
  };
  const frame = (bars: Bar[]) => ({ columns: COLS, data: bars.map((b) => [b.date, b.open, b.high, b.low, b.close, b.volume]) });
  const storedBars = () => seriesToSplitJson(history, { start: n0 - 3, end: n0 });
  const postNew = async () => {
    const bar = newBar();
    const a = await timedCall(srv.url, '/forecast', frame([bar]));
    (a.status === 200 ? acknowledged : unanswered).push(bar);
    return a;
  };

  beforeAll(async () => {
    proxy = await makeProxy();
    const bundleDir = await writeTinyBundle(join(tmp.dir, 'bundle'), SPEC);
    const options: AppOptions = {
      bundleDir,
      databaseUrl: proxy.url(PG_URL),
      databaseSchema: schema,
      database: DATABASE,
      readyTimeoutMs: READY_TIMEOUT_MS,
    };
    srv = await startTestServer(options);
  });
  afterAll(async () => {
    proxy?.cont?.();
    await proxy?.forward().catch(() => undefined);
    await srv?.close();
    await proxy?.close();
    tmp.cleanup();
    const s = new PostgresHistoryStore({ connectionString: PG_URL, schema });
    await s.dropSchema();
    await s.close();
  });

  /** While the fault lasts: every kind of request answers 503 in time, alone and concurrently. */
  async function duringFault(label: string): Promise<void> {
    expect503(await timedCall(srv.url, '/forecast', storedBars()), `${label}: stored bars`);
    expect503(await postNew(), `${label}: a new bar`);
    expectNotReady(await timedCall(srv.url, '/readyz'), `${label}: /readyz`);
    // Concurrent requests on the one model: none may wait for another's hung store call.
    const answers = await Promise.all([
      ...Array.from({ length: 4 }, () => timedCall(srv.url, '/forecast', storedBars())),
      ...Array.from({ length: 4 }, () => postNew()),
      timedCall(srv.url, '/readyz'),
      timedCall(srv.url, '/readyz'),
    ]);
    answers.slice(0, 8).forEach((a, i) => expect503(a, `${label}: concurrent request ${i}`));
    answers.slice(8).forEach((a, i) => expectNotReady(a, `${label}: concurrent /readyz ${i}`));
  }

  /** After the fault: 200 again without a restart. */
  async function recovered(label: string): Promise<void> {
    const deadline = Date.now() + 5000;
    let ready = await timedCall(srv.url, '/readyz');
    while (ready.status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      ready = await timedCall(srv.url, '/readyz');
    }
    expect(ready.status, `${label}: /readyz after recovery: ${JSON.stringify(ready.body)}`).toBe(200);
    const read = await timedCall(srv.url, '/forecast', storedBars());
    expect(read.status, `${label}: stored bars after recovery: ${JSON.stringify(read.body)}`).toBe(200);
    const write = await postNew();
    expect(write.status, `${label}: a new bar after recovery: ${JSON.stringify(write.body)}`).toBe(200);
    expect(write.body.history.added).toBe(1);
  }

  it('answers 200 while the proxy forwards', async () => {
    expect((await timedCall(srv.url, '/readyz')).status).toBe(200);
    expect((await timedCall(srv.url, '/forecast', storedBars())).status).toBe(200);
    expect((await postNew()).status).toBe(200);
  });

  return { proxy: () => proxy, duringFault, recovered, acknowledged, unanswered, schema, frame, storedBars, srv: () => srv };
}

withPostgres.describe('the service with its PostgreSQL history refused or partitioned', () => {
  const s = scenario('http_faults', () => startTcpProxy());

  it('refused: 503 store_unavailable in time, /readyz 503, then 200 again by itself', async () => {
    await s.proxy().refuse();
    await s.duringFault('refused');
    await s.proxy().forward();
    await s.recovered('after refused');
  });

  it('black-holed: 503 store_unavailable in time, /readyz 503, then 200 again by itself', async () => {
    await s.proxy().blackhole();
    await s.duringFault('black-holed');
    await s.proxy().forward();
    await s.recovered('after black-holed');
  });

  it('connections killed: the next requests answer 200 (or at worst 503), never 500', async () => {
    await s.proxy().kill();
    const a = await timedCall(s.srv().url, '/forecast', s.storedBars());
    // The first request may meet a pooled connection the kill cut before the pool noticed: a 503 then.
    expect([200, 503], JSON.stringify(a.body)).toContain(a.status);
    await s.recovered('after kill');
  });

  it('no acknowledged bar is lost, and the unanswered ones can be resubmitted', async () => {
    for (const bar of s.unanswered.splice(0)) {
      const a = await timedCall(s.srv().url, '/forecast', s.frame([bar]));
      expect(a.status, JSON.stringify(a.body)).toBe(200);
      s.acknowledged.push(bar);
    }
    const direct = new PostgresHistoryStore({ connectionString: PG_URL, schema: s.schema });
    try {
      const snap = await direct.load(SPEC.name);
      const stored = new Map(snap.bars.date.map((d, i) => [d, snap.bars.close[i]]));
      expect(s.acknowledged.length).toBeGreaterThan(0);
      for (const b of s.acknowledged) expect(stored.get(b.date), b.date).toBe(b.close);
    } finally {
      await direct.close();
    }
  });
});

withPostgres.describe('the service behind a SIGSTOPped proxy process', () => {
  let child: Awaited<ReturnType<typeof spawnTcpProxy>>;
  const s = scenario('http_sigstop', async () => (child = await spawnTcpProxy()));

  it('stopped: 503 store_unavailable in time, /readyz 503; continued: 200 again by itself', async () => {
    child.stop();
    try {
      await s.duringFault('SIGSTOPped');
    } finally {
      child.cont();
    }
    await s.recovered('after SIGCONT');
  });
});
