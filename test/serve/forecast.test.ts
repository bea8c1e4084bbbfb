import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { LoadedBundle } from '../../src/bundle/index.js';
import type { BarSeries } from '../../src/data/bars.js';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { appendBars, expectedForecast as expectedWith, expectedForecasts, nextWeekday, tinyBundle, tinySeries, type TinySpec } from './helpers/bundles.js';
import { call, startTestServer, tempDir, type TestServer } from './helpers/http.js';

// The reference feature set (one-bar look-ahead `atr`) and a depth-6 tree on 600 synthetic bars.
const SPEC: TinySpec = { name: 'acme', version: '1', seed: 1 };

describe('POST /forecast on SQLite', () => {
  const tmp = tempDir();
  let srv: TestServer;
  let bundle: LoadedBundle;
  const seed = tinySeries(SPEC);
  const n = seed.date.length;
  let history = seed;
  const expectedForecast = (s: BarSeries, i: number) => expectedWith(bundle.pipeline, s, i);

  beforeAll(async () => {
    bundle = await tinyBundle(tmp.dir, SPEC);
    srv = await startTestServer({ bundles: [bundle], sqlitePath: join(tmp.dir, 'h.sqlite') });
  });
  afterAll(async () => {
    await srv.close();
    tmp.cleanup();
  });

  it('forecasts stored bars bit for bit, look-ahead included, without writing', async () => {
    const body = seriesToSplitJson(seed, { start: n - 10, end: n });
    const r = await call(srv.url, '/forecast', { body });
    expect(r.status).toBe(200);
    expect(r.body.model).toBe('acme@1');
    expect(r.body.forecasts).toHaveLength(10);
    for (let k = 0; k < 10; k++) {
      expect(r.body.forecasts[k].date).toBe(seed.date[n - 10 + k]);
      expect(r.body.forecasts[k].y_pred).toBe(expectedForecast(seed, n - 10 + k));
      expect(r.body.y_pred[k]).toBe(r.body.forecasts[k].y_pred);
    }
    expect(r.body.forecasts[9].provisional).toBe(true);
    expect(r.body.forecasts[8].provisional).toBeUndefined();
    expect(r.body.history).toMatchObject({ version: 1, bars: n, added: 0, replaced: 0, unchanged: 10 });
    expect(r.headers.get('x-request-id')).toBeTruthy();
  });

  it('merges a new bar and recomputes the previous bar with its look-ahead', async () => {
    // A crash day: its close, far below the previous bar's low, widens that bar's look-ahead true
    // range (high - next close) enough to move this tree's forecast for it.
    const close = seed.low[n - 1] * 0.8;
    const bar = { date: nextWeekday(seed.date[n - 1]), open: close, high: close * 1.01, low: close * 0.99, close, volume: 1234567 };
    history = appendBars(seed, bar);
    const r = await call(srv.url, '/forecast', {
      body: { columns: ['close', 'date', 'volume', 'open', 'low', 'high'], data: [[bar.close, bar.date, bar.volume, bar.open, bar.low, bar.high]] },
    });
    expect(r.status).toBe(200);
    expect(r.body.forecasts[0]).toEqual({ date: bar.date, y_pred: expectedForecast(history, n), provisional: true });
    expect(r.body.history).toMatchObject({ version: 2, bars: n + 1, added: 1 });
    // The former newest bar now sees the next close.
    const prev = await call(srv.url, '/forecast', { body: seriesToSplitJson(history, { start: n - 1, end: n }) });
    expect(prev.body.forecasts[0].y_pred).toBe(expectedForecast(history, n - 1));
    expect(prev.body.forecasts[0].y_pred).not.toBe(expectedForecast(seed, n - 1));
    expect(prev.body.forecasts[0].provisional).toBeUndefined();
  });

  it('treats a resubmitted bar one ulp away as the same bar and keeps the stored value', async () => {
    const i = n;
    const bumped = history.close[i] * (1 + Number.EPSILON);
    expect(bumped).not.toBe(history.close[i]);
    const body = seriesToSplitJson(history, { start: i, end: i + 1 });
    body.data[0][4] = bumped;
    const r = await call(srv.url, '/forecast', { body });
    expect(r.status).toBe(200);
    expect(r.body.history).toMatchObject({ version: 2, unchanged: 1, added: 0 });
    expect(r.body.forecasts[0].y_pred).toBe(expectedForecast(history, i));
  });

  it('answers 409 naming the date and values for a really different stored bar, and replaces it on ?replace=true', async () => {
    const i = n - 5;
    const body = seriesToSplitJson(history, { start: i, end: i + 1 });
    body.data[0][4] = history.close[i] * 1.01;
    const r = await call(srv.url, '/forecast', { body });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('conflict');
    expect(r.body.error.message).toContain(history.date[i]);
    expect(r.body.error.details).toMatchObject({ date: history.date[i], field: 'close', stored: history.close[i], submitted: history.close[i] * 1.01, row: 0 });
    const same = await call(srv.url, '/forecast', { body: seriesToSplitJson(history, { start: i, end: i + 1 }) });
    expect(same.body.history.version).toBe(2);

    const rep = await call(srv.url, '/forecast?replace=true', { body });
    expect(rep.status).toBe(200);
    expect(rep.body.history).toMatchObject({ version: 3, replaced: 1 });
    history.close[i] = history.close[i] * 1.01;
    expect(rep.body.forecasts[0].y_pred).toBe(expectedForecast(history, i));
    // Every later bar is recomputed from the changed one (moving averages, EWMs and volatilities read it).
    const later = await call(srv.url, '/forecast', { body: seriesToSplitJson(history, { start: i, end: n + 1 }) });
    for (let k = 0; k < later.body.forecasts.length; k++) expect(later.body.forecasts[k].y_pred).toBe(expectedForecast(history, i + k));
  });

  it('inserts bars before the newest stored bar and recomputes from there', async () => {
    // A gap day between two stored bars: insert a bar dated on a Saturday (a date not stored).
    const i = n - 20;
    const sat = new Date(Date.parse(`${history.date[i]}T00:00:00Z`));
    while (sat.getUTCDay() !== 6) sat.setUTCDate(sat.getUTCDate() + 1);
    const date = sat.toISOString().slice(0, 10);
    const j = history.date.findIndex((d) => d > date);
    const bar = { date, open: 99, high: 100, low: 98, close: 99.5, volume: 1000 };
    const r = await call(srv.url, '/forecast', { body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [[date, 99, 100, 98, 99.5, 1000]] } });
    expect(r.status).toBe(200);
    const ins: BarSeries = {
      date: [...history.date.slice(0, j), bar.date, ...history.date.slice(j)],
      open: Float64Array.from([...history.open.slice(0, j), bar.open, ...history.open.slice(j)]),
      high: Float64Array.from([...history.high.slice(0, j), bar.high, ...history.high.slice(j)]),
      low: Float64Array.from([...history.low.slice(0, j), bar.low, ...history.low.slice(j)]),
      close: Float64Array.from([...history.close.slice(0, j), bar.close, ...history.close.slice(j)]),
      volume: Float64Array.from([...history.volume.slice(0, j), bar.volume, ...history.volume.slice(j)]),
    };
    history = ins;
    expect(r.body.forecasts[0].y_pred).toBe(expectedForecast(history, j));
    const after = await call(srv.url, '/forecast', { body: seriesToSplitJson(history, { start: j - 1, end: j + 3, dates: 'iso' }) });
    for (let k = 0; k < 4; k++) expect(after.body.forecasts[k].y_pred).toBe(expectedForecast(history, j - 1 + k));
  });

  it('gives y_pred null with a reason for too little history or non-finite features', async () => {
    const w = bundle.pipeline.featureSet.warmupBars;
    const early = await call(srv.url, '/forecast', { body: seriesToSplitJson(history, { start: 0, end: w + 1 }) });
    expect(early.status).toBe(200);
    expect(early.body.forecasts[0].y_pred).toBeNull();
    expect(early.body.forecasts[0].reason).toMatch(/insufficient history/);
    expect(early.body.forecasts[w - 1].y_pred).toBeNull();
    expect(early.body.forecasts[w - 1].reason).toMatch(/insufficient history/);
    // The first bar with every feature defined.
    expect(early.body.forecasts[w].y_pred).not.toBeNull();
    expect(early.body.forecasts[w].y_pred).toBe(expectedForecast(history, w));
    // Flat bars (high == low == close): one alone keeps every reference feature finite (pandas'
    // cumsum skips chaikin's 0/0 money flow and the EWMs hold, FEATURES.md §3); the 14th in a row
    // makes the 14-close stochastic range 0/0.
    const flatBars = [];
    let flatDate = history.date[history.date.length - 1];
    for (let k = 0; k < 14; k++) {
      flatDate = nextWeekday(flatDate);
      flatBars.push({ date: flatDate, open: 100, high: 100, low: 100, close: 100, volume: 0 });
    }
    const flat = await call(srv.url, '/forecast', {
      body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: flatBars.map((b) => [b.date, b.open, b.high, b.low, b.close, b.volume]) },
    });
    expect(flat.status).toBe(200);
    history = appendBars(history, ...flatBars);
    const m = history.date.length;
    expect(flat.body.forecasts[0].y_pred).not.toBeNull();
    expect(flat.body.forecasts[13].y_pred).toBeNull();
    expect(flat.body.forecasts[13].reason).toMatch(/non-finite features: (.*, )?stochastic_oscillator=NaN/);
    expect(flat.body.y_pred).toEqual(expectedForecasts(bundle.pipeline, history, m - 14, m));
    expect(flat.body.y_pred[13]).toBeNull();
  });

  it('serialises forecasts with full round-trip precision', async () => {
    const r = await call(srv.url, '/forecast', { body: seriesToSplitJson(history, { start: n - 30, end: n - 29 }) });
    const m = /"y_pred":([-0-9.e+]+)/.exec(r.text)!;
    expect(Number(m[1])).toBe(expectedForecast(history, n - 30));
  });

  it('routes by model name and version', async () => {
    const body = seriesToSplitJson(history, { start: n - 30, end: n - 29 });
    const a = await call(srv.url, '/models/acme/forecast', { body });
    const b = await call(srv.url, '/models/acme/versions/1/forecast', { body });
    const c = await call(srv.url, '/forecast?version=1', { body });
    expect(a.body.model).toBe('acme@1');
    expect(b.body.y_pred).toEqual(a.body.y_pred);
    expect(c.body.y_pred).toEqual(a.body.y_pred);
    expect((await call(srv.url, '/models/nope/forecast', { body })).status).toBe(404);
    const v = await call(srv.url, '/models/acme/versions/9/forecast', { body });
    expect(v.status).toBe(404);
    expect(v.body.error.code).toBe('unknown_version');
  });
});
