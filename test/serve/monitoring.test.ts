/**
 * Live monitoring end to end: bars posted one per request after deployment are logged while newest,
 * scored when the next bar arrives (through any process sharing the store), and the monitoring
 * endpoint's metrics equal the offline metric functions over the same bars; the log survives a restart.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedBundle } from '../../src/bundle/index.js';
import { regressionMetrics } from '../../src/models/metrics.js';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { expectedForecasts, tinyBundle, tinySeries, TINY_BARS, type TinySpec } from './helpers/bundles.js';
import { ADMIN_KEY, call, startTestServer, tempDir, type TestServer } from './helpers/http.js';

const SPEC: TinySpec = { name: 'acme', version: '1', seed: 6, featureSet: 'causal' };
const LIVE = 90;

describe('GET /models/{name}/monitoring', () => {
  const tmp = tempDir();
  let bundle: LoadedBundle;
  let a: TestServer;
  let b: TestServer;
  let sqlitePath: string;
  // The bundle's history, then LIVE bars that arrive after deployment.
  const full = tinySeries({ seed: SPEC.seed, bars: TINY_BARS + LIVE });

  beforeAll(async () => {
    bundle = await tinyBundle(tmp.dir, SPEC);
    expect(bundle.history.date).toEqual(full.date.slice(0, TINY_BARS));
    sqlitePath = join(tmp.dir, 'h.sqlite');
    a = await startTestServer({ bundles: [bundle], sqlitePath });
    b = await startTestServer({ bundles: [bundle], sqlitePath });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    tmp.cleanup();
  });

  it('has nothing to judge before any bar arrives', async () => {
    const r = await call(a.url, '/models/acme/monitoring');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ model: 'acme', version: '1', state: 'insufficient_data', live: [], as_served: null });
  });

  it('scores every forecast made while its bar was newest, once the next bar is stored, by whichever process', async () => {
    const answered: number[] = [];
    for (let i = TINY_BARS; i < TINY_BARS + LIVE; i++) {
      // Alternate processes: the bar that settles a forecast is often stored by the other one.
      const srv = i % 2 === 0 ? a : b;
      const r = await call(srv.url, '/models/acme/forecast', { body: seriesToSplitJson(full, { start: i, end: i + 1, dates: 'iso' }) });
      expect(r.status).toBe(200);
      answered.push(r.body.y_pred[0]);
      // A client re-sending its recent window: counted, not scored again.
      if (i % 10 === 0) await call(srv.url, '/models/acme/forecast', { body: seriesToSplitJson(full, { start: i - 2, end: i + 1, dates: 'iso' }) });
    }
    const want = expectedForecasts(bundle.pipeline, full, TINY_BARS, TINY_BARS + LIVE - 1) as number[];
    expect(answered.slice(0, -1)).toEqual(want);
    const yTrue = Float64Array.from({ length: LIVE - 1 }, (_, k) => full.close[TINY_BARS + k + 1] / full.close[TINY_BARS + k]);
    const offlineWay = regressionMetrics(yTrue, Float64Array.from(want));

    for (const srv of [a, b]) {
      const r = await call(srv.url, '/models/acme/monitoring');
      expect(r.status).toBe(200);
      const m = r.body;
      expect(m.log).toMatchObject({ logged: LIVE, scored: LIVE - 1, pending: 1, first_date: full.date[TINY_BARS], last_date: full.date.at(-1) });
      expect(m.log.re_forecasts).toBeGreaterThanOrEqual(0);
      const all = m.live.find((w: { window: unknown }) => w.window === 'all');
      expect(all).toMatchObject({ rows: LIVE - 1, first_date: full.date[TINY_BARS], last_date: full.date.at(-2) });
      expect(all.model).toMatchObject({ rows: LIVE - 1, mae: offlineWay.mae, mse: offlineWay.mse, r2: offlineWay.r2 });
      const hits = want.filter((y, k) => Math.sign(y - 1) === Math.sign(yTrue[k] - 1)).length;
      expect(all.model.hit_rate).toBe(hits / (LIVE - 1));
      expect(all.persistence).toMatchObject(regressionMetrics(yTrue, new Float64Array(LIVE - 1).fill(1)));
      expect(m.live.map((w: { window: unknown }) => w.window)).toEqual([20, 60, 'all']);
      const w20 = regressionMetrics(yTrue.slice(-20), Float64Array.from(want.slice(-20)));
      expect(m.live[0].model).toMatchObject({ rows: 20, mae: w20.mae, mse: w20.mse });
      expect(['ok', 'degraded']).toContain(m.state);
      expect(m.test).toMatchObject({ window: 60, live_mae: m.live[1].model.mae, offline_mae: bundle.manifest.metrics.test.mae });
      expect(m.offline.test).toMatchObject(bundle.manifest.metrics.test);
    }
  });

  it('keeps every logged forecast and score across a restart', async () => {
    const before = (await call(a.url, '/models/acme/monitoring')).body;
    await a.close();
    await b.close();
    a = await startTestServer({ bundles: [bundle], sqlitePath });
    b = await startTestServer({ bundles: [bundle], sqlitePath });
    const after = (await call(a.url, '/models/acme/monitoring')).body;
    expect(after.live).toEqual(before.live);
    // Re-forecast counts noted by the other process were written when it stopped.
    expect({ ...after.log, re_forecasts: 0 }).toEqual({ ...before.log, re_forecasts: 0 });
    expect(after.log.re_forecasts).toBeGreaterThanOrEqual(before.log.re_forecasts);
    expect(after.log.re_forecasts).toBeGreaterThan(0);
  });

  it('after an administrator deletes a logged bar, its forecast goes and the outcomes it entered are scored again without it', async () => {
    const k = TINY_BARS + 40;
    const del = await call(a.url, `/admin/models/acme/history/${full.date[k]}`, { method: 'DELETE', key: ADMIN_KEY });
    expect(del.status, del.text).toBe(200);
    const keep = (arr: Float64Array) => Float64Array.from([...arr.subarray(0, k), ...arr.subarray(k + 1)]);
    const fixed = { date: full.date.filter((_, i) => i !== k), open: keep(full.open), high: keep(full.high), low: keep(full.low), close: keep(full.close), volume: keep(full.volume) };
    const n = fixed.date.length;
    const want = expectedForecasts(bundle.pipeline, fixed, TINY_BARS, n - 1) as number[];
    const yTrue = Float64Array.from({ length: n - 1 - TINY_BARS }, (_, j) => fixed.close[TINY_BARS + j + 1] / fixed.close[TINY_BARS + j]);
    const exact = regressionMetrics(yTrue, Float64Array.from(want));
    for (const srv of [a, b]) {
      const m = (await call(srv.url, '/models/acme/monitoring')).body;
      expect(m.log).toMatchObject({ logged: LIVE - 1, scored: LIVE - 2, pending: 1 });
      const all = m.live.find((w: { window: unknown }) => w.window === 'all');
      expect(all.model).toMatchObject({ rows: LIVE - 2, mae: exact.mae, mse: exact.mse, r2: exact.r2 });
    }

    // Posted back: the bars after it have their features back, and their outcomes are scored again
    // with them (the bar's own forecast stays gone: it was never again the newest bar).
    const bar = del.body.deleted;
    const back = await call(b.url, '/models/acme/forecast', { body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [[bar.date, bar.open, bar.high, bar.low, bar.close, bar.volume]] } });
    expect(back.body.history).toMatchObject({ added: 1 });
    const n2 = full.date.length;
    const keepIdx = (j: number) => j !== k - TINY_BARS;
    const restored = (expectedForecasts(bundle.pipeline, full, TINY_BARS, n2 - 1) as number[]).filter((_, j) => keepIdx(j));
    const yBack = Float64Array.from({ length: n2 - 1 - TINY_BARS }, (_, j) => full.close[TINY_BARS + j + 1] / full.close[TINY_BARS + j]).filter((_, j) => keepIdx(j));
    const again = regressionMetrics(yBack, Float64Array.from(restored));
    for (const srv of [a, b]) {
      const all = (await call(srv.url, '/models/acme/monitoring')).body.live.find((w: { window: unknown }) => w.window === 'all');
      expect(all.model).toMatchObject({ rows: LIVE - 2, mae: again.mae, mse: again.mse, r2: again.r2 });
    }
  });

  it('refuses an unknown version and a missing key', async () => {
    expect((await call(a.url, '/models/acme/monitoring?version=9')).status).toBe(404);
    expect((await call(a.url, '/models/acme/monitoring', { key: null })).status).toBe(401);
  });
});

/** `base` bars from `from` on with every move (relative to the previous close) `factor` times larger: a more volatile regime. */
function amplified(base: ReturnType<typeof tinySeries>, from: number, factor: number): ReturnType<typeof tinySeries> {
  const s = { date: base.date.slice(), open: base.open.slice(), high: base.high.slice(), low: base.low.slice(), close: base.close.slice(), volume: base.volume.slice() };
  for (let i = from; i < base.date.length; i++) {
    const prevBase = base.close[i - 1];
    const prev = s.close[i - 1];
    const move = (x: number) => Math.max(1e-6, Math.round(prev * (1 + factor * (x / prevBase - 1)) * 1e6) / 1e6);
    s.open[i] = move(base.open[i]);
    s.close[i] = move(base.close[i]);
    s.high[i] = Math.max(move(base.high[i]), s.open[i], s.close[i]);
    s.low[i] = Math.min(move(base.low[i]), s.open[i], s.close[i]);
    s.volume[i] = base.volume[i] * factor;
  }
  return s;
}

/** Causal features computed from the last few bars: their distribution moves only when the price process does. */
const FAST_FEATURES = ['return', 'close_to_open', 'close_to_high', 'close_to_low', '5d_volatility'];

describe('monitoring state and drift after deployment', () => {
  const tmp = tempDir();
  // A test set of some 450 rows: enough offline errors to say what a 250-bar window may show by chance.
  const BARS = 2500;
  const spec: TinySpec = { name: 'acme', version: '1', seed: 8, featureSet: 'causal', bars: BARS };
  const LATER = 300;
  const base = tinySeries({ seed: spec.seed, bars: BARS + LATER });
  let bundle: LoadedBundle;

  beforeAll(async () => {
    bundle = await tinyBundle(tmp.dir, spec);
  });
  afterAll(() => tmp.cleanup());

  async function replay(series: ReturnType<typeof tinySeries>, db: string) {
    const srv = await startTestServer({ bundles: [bundle], sqlitePath: join(tmp.dir, db) });
    try {
      for (let i = BARS; i < BARS + LATER; i++) {
        const r = await call(srv.url, '/models/acme/forecast', { body: seriesToSplitJson(series, { start: i, end: i + 1, dates: 'iso' }) });
        expect(r.status).toBe(200);
      }
      const m = await call(srv.url, '/models/acme/monitoring');
      expect(m.status).toBe(200);
      const metrics = (await call(srv.url, '/metrics', { key: null })).text;
      return { report: m.body, metrics };
    } finally {
      await srv.close();
    }
  }

  it('an unchanged regime stays ok, with no feature drifting significantly', async () => {
    const { report, metrics } = await replay(base, 'same.sqlite');
    expect(report.log).toMatchObject({ logged: LATER, scored: LATER - 1 });
    expect(report.state, report.reason).toBe('ok');
    expect(report.test.window).toBe(250);
    expect(report.drift).toMatchObject({ state: 'ok', rows: LATER });
    expect(report.drift.features.map((f: { name: string }) => f.name)).toEqual(bundle.manifest.featureSet.featureNames);
    // Features of a few bars' prices keep their training distribution. (Slow ones, like ma_50_200 or a
    // 60-day volatility, sit in a narrow part of their range over any 300 consecutive bars and may read as drifted: docs/serving.md.)
    const level = new Map(report.drift.features.map((f: { name: string; level: string }) => [f.name, f.level]));
    for (const name of FAST_FEATURES) expect(level.get(name), name).not.toBe('significant');
    expect(metrics).toMatch(/forecast_live_state\{model="acme",version="1"\} 0/);
    expect(metrics).toMatch(/forecast_live_mae\{model="acme",version="1",window="250"\} \d/);
    expect(metrics).toMatch(/forecast_feature_drift_psi\{model="acme",version="1",feature="[^"]+"\} \d/);
  });

  it('a more volatile regime turns the state degraded and raises drift on the volatility features', async () => {
    const { report, metrics } = await replay(amplified(base, BARS, 4), 'volatile.sqlite');
    expect(report.state, report.reason).toBe('degraded');
    expect(report.test.live_mae).toBeGreaterThan(report.test.upper_bound);
    expect(report.reason).toMatch(/exceeds the offline bound/);
    const significant = report.drift.features.filter((f: { level: string }) => f.level === 'significant').map((f: { name: string }) => f.name);
    for (const name of FAST_FEATURES) expect(significant, name).toContain(name);
    expect(metrics).toMatch(/forecast_live_state\{model="acme",version="1"\} 2/);
    console.log(`regime change: live MAE ${report.test.live_mae} > bound ${report.test.upper_bound}; significant drift in ${significant.join(', ')}`);
  });
});

describe('forecast log retention', () => {
  const tmp = tempDir();
  const spec: TinySpec = { name: 'acme', version: '1', seed: 11, featureSet: 'causal' };
  const LATER = 340;
  const full = tinySeries({ seed: spec.seed, bars: TINY_BARS + LATER });
  afterAll(() => tmp.cleanup());

  it('compacts rows beyond MONITOR_RETENTION into sums that keep the since-deployment figures, across a restart', async () => {
    const bundle = await tinyBundle(tmp.dir, spec);
    const sqlitePath = join(tmp.dir, 'h.sqlite');
    let srv = await startTestServer({ bundles: [bundle], sqlitePath, monitorRetention: 250 });
    try {
      for (let i = TINY_BARS; i < TINY_BARS + LATER; i++) await call(srv.url, '/models/acme/forecast', { body: seriesToSplitJson(full, { start: i, end: i + 1, dates: 'iso' }) });
      const want = expectedForecasts(bundle.pipeline, full, TINY_BARS, TINY_BARS + LATER - 1) as number[];
      const yTrue = Float64Array.from({ length: LATER - 1 }, (_, k) => full.close[TINY_BARS + k + 1] / full.close[TINY_BARS + k]);
      const exact = regressionMetrics(yTrue, Float64Array.from(want));
      const check = async () => {
        const m = (await call(srv.url, '/models/acme/monitoring')).body;
        // Some rows now live only in the summary, and the counts still cover the whole period.
        expect(m.log.retained).toBeLessThan(LATER);
        expect(m.log.retained).toBeGreaterThanOrEqual(250);
        expect(m.log).toMatchObject({ logged: LATER, scored: LATER - 1, pending: 1, first_date: full.date[TINY_BARS] });
        const all = m.live.find((w: { window: unknown }) => w.window === 'all');
        expect(all).toMatchObject({ rows: LATER - 1, first_date: full.date[TINY_BARS], last_date: full.date.at(-2) });
        // Sums in row order, not pairwise: equal to a relative 1e-12.
        for (const k of ['mae', 'mse', 'r2'] as const) expect(Math.abs(all.model[k] - exact[k]), k).toBeLessThanOrEqual(1e-12 * Math.abs(exact[k]));
        // The rolling windows come from rows still held: exactly the offline functions.
        const w250 = regressionMetrics(yTrue.slice(-250), Float64Array.from(want.slice(-250)));
        expect(m.live.find((w: { window: unknown }) => w.window === 250).model).toMatchObject(w250);
        return m;
      };
      const before = await check();
      await srv.close();
      srv = await startTestServer({ bundles: [bundle], sqlitePath, monitorRetention: 250 });
      expect((await check()).live).toEqual(before.live);
    } finally {
      await srv.close();
    }
  });
});
