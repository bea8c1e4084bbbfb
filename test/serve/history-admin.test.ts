/**
 * History administration: a model's stored bars read back (JSON split frame or CSV, by date range),
 * and a bar sent by mistake deleted by an administrator, for every process sharing the store, with
 * the features of every later bar recomputed without it.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedBundle } from '../../src/bundle/index.js';
import type { BarSeries } from '../../src/data/bars.js';
import { formatIsoDay, parseIsoDay } from '../../src/data/dates.js';
import { readBarsCsv } from '../../src/data/index.js';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { appendBars, expectedForecasts, nextWeekday, tinyBundle, tinySeries, type TinySpec } from './helpers/bundles.js';
import { ADMIN_KEY, call, startTestServer, tempDir, type TestServer } from './helpers/http.js';

const SPEC: TinySpec = { name: 'acme', version: '1', seed: 4, featureSet: 'causal' };

/** `s` without bar `i`. */
function without(s: BarSeries, i: number): BarSeries {
  const keep = (a: Float64Array) => Float64Array.from([...a.subarray(0, i), ...a.subarray(i + 1)]);
  return { date: s.date.filter((_, k) => k !== i), open: keep(s.open), high: keep(s.high), low: keep(s.low), close: keep(s.close), volume: keep(s.volume) };
}

function expectSameSeries(got: BarSeries, want: BarSeries): void {
  expect(got.date).toEqual(want.date);
  for (const f of ['open', 'high', 'low', 'close', 'volume'] as const) expect(Array.from(got[f]), f).toEqual(Array.from(want[f]));
}

/** A split frame answer as a series (its rows are [date, open, high, low, close, volume]). */
function seriesOfFrame(frame: { columns: string[]; data: [string, number, number, number, number, number][] }): BarSeries {
  expect(frame.columns).toEqual(['date', 'open', 'high', 'low', 'close', 'volume']);
  const col = (k: number) => Float64Array.from(frame.data.map((r) => r[k]));
  return { date: frame.data.map((r) => r[0]), open: col(1), high: col(2), low: col(3), close: col(4), volume: col(5) };
}

describe('GET /models/{name}/history and DELETE /admin/models/{name}/history/{date}', () => {
  const tmp = tempDir();
  let bundle: LoadedBundle;
  // Two apps on one SQLite file: two processes (workers or replicas) sharing the stored history.
  let a: TestServer;
  let b: TestServer;
  const seed = tinySeries(SPEC);
  let history = seed;

  beforeAll(async () => {
    bundle = await tinyBundle(tmp.dir, SPEC);
    const sqlitePath = join(tmp.dir, 'h.sqlite');
    a = await startTestServer({ bundles: [bundle], sqlitePath });
    b = await startTestServer({ bundles: [bundle], sqlitePath });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    tmp.cleanup();
  });

  it('answers the stored history bit for bit as a split frame that the forecast endpoint accepts as it is', async () => {
    // More bars than one streamed chunk (4096 rows), added through the other process.
    const extra = tinySeries({ seed: 9, bars: 5000, startDate: nextWeekday(seed.date.at(-1)!) });
    const post = await call(b.url, '/models/acme/forecast', { body: seriesToSplitJson(extra, { dates: 'iso', index: false }) });
    expect(post.status).toBe(200);
    history = appendBars(seed, ...Array.from({ length: extra.date.length }, (_, i) => ({ date: extra.date[i], open: extra.open[i], high: extra.high[i], low: extra.low[i], close: extra.close[i], volume: extra.volume[i] })));
    const r = await call(a.url, '/models/acme/history');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.headers.get('x-history-bars')).toBe(String(history.date.length));
    expect(r.headers.get('x-history-version')).toBe(String(post.body.history.version));
    expectSameSeries(seriesOfFrame(r.body), history);
    const back = await call(a.url, '/models/acme/forecast', { body: { columns: r.body.columns, data: r.body.data.slice(-50) } });
    expect(back.status).toBe(200);
    expect(back.body.history).toMatchObject({ added: 0, unchanged: 50 });
  });

  it('answers CSV on ?format=csv or Accept: text/csv, read back exactly by the CSV reader', async () => {
    const inits: { path: string; headers: Record<string, string> }[] = [
      { path: '/models/acme/history?format=csv', headers: {} },
      { path: '/models/acme/history', headers: { accept: 'text/csv' } },
    ];
    for (const init of inits) {
      const r = await call(a.url, init.path, { headers: init.headers });
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/^text\/csv/);
      expect(r.headers.get('content-disposition')).toBe('attachment; filename="acme-history.csv"');
      expectSameSeries(readBarsCsv(r.text, { numberParsing: 'exact' }), history);
    }
  });

  it('selects a date range, inclusive at both ends, and the newest N bars of it', async () => {
    const d = history.date;
    const range = await call(a.url, `/models/acme/history?from=${d[10]}&to=${d[19]}`);
    expect(seriesOfFrame(range.body).date).toEqual(d.slice(10, 20));
    // Dates between stored bars (a weekend) bound the range just the same.
    const k = d.findIndex((date, j) => j > 10 && parseIsoDay(d[j + 1]) - parseIsoDay(date) > 1);
    const dayAfter = formatIsoDay(parseIsoDay(d[k]) + 1);
    const gap = await call(a.url, `/models/acme/history?from=${dayAfter}&to=${d[k + 3]}`);
    expect(gap.body.data.map((r: unknown[]) => r[0])).toEqual(d.slice(k + 1, k + 4));
    const last = await call(a.url, `/models/acme/history?to=${d[19]}&last=3&format=csv`);
    expect(readBarsCsv(last.text, { numberParsing: 'exact' }).date).toEqual(d.slice(17, 20));
    const none = await call(a.url, '/models/acme/history?from=2999-01-01');
    expect(none.body).toEqual({ columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [] });
  });

  it('refuses bad queries with the parameter named, an unknown model with 404, a missing key with 401', async () => {
    const bad = await call(a.url, '/models/acme/history?from=2020-02-30');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toBe("query parameter 'from' must be a calendar date YYYY-MM-DD, not '2020-02-30'");
    const reversed = await call(a.url, '/models/acme/history?from=2020-03-01&to=2020-02-01');
    expect(reversed.status).toBe(400);
    expect(reversed.body.error.message).toMatch(/'from' \(2020-03-01\) is after 'to' \(2020-02-01\)/);
    const unknownParam = await call(a.url, '/models/acme/history?since=2020-01-01');
    expect(unknownParam.status).toBe(400);
    expect(unknownParam.body.error.message).toMatch(/unknown query parameter 'since'/);
    expect((await call(a.url, '/models/acme/history?last=0')).body.error.message).toBe("query parameter 'last' must be a positive integer, not '0'");
    expect((await call(a.url, '/models/acme/history?format=xml')).body.error.message).toMatch(/must be one of json, csv/);
    expect((await call(a.url, '/models/nobody/history')).status).toBe(404);
    expect((await call(a.url, '/models/acme/history', { key: null })).status).toBe(401);
  });

  it('deletes a bar for every process: later features are recomputed without it, and posting it again restores them', async () => {
    const n = history.date.length;
    const i = n - 30;
    const gone = history.date[i];
    const window = { start: i - 5, end: n };
    const before = await call(b.url, '/models/acme/forecast', { body: seriesToSplitJson(without(history, i), { ...window, end: n - 1, dates: 'iso' }) });
    expect(before.status).toBe(200);
    expect(before.body.y_pred).toEqual(expectedForecasts(bundle.pipeline, history, i - 5, n).filter((_, k) => k !== 5));

    // A client key may not delete; the admin key may.
    expect((await call(a.url, `/admin/models/acme/history/${gone}`, { method: 'DELETE' })).status).toBe(403);
    const del = await call(a.url, `/admin/models/acme/history/${gone}`, { method: 'DELETE', key: ADMIN_KEY });
    expect(del.status).toBe(200);
    expect(del.body.deleted).toEqual({ date: gone, open: history.open[i], high: history.high[i], low: history.low[i], close: history.close[i], volume: history.volume[i] });
    expect(del.body.history).toMatchObject({ bars: n - 1, last_date: history.date[n - 1] });

    // The other process answers from the history without the bar: the bars after it have new features.
    const after = without(history, i);
    const want = expectedForecasts(bundle.pipeline, after, i - 5, n - 1);
    const r = await call(b.url, '/models/acme/forecast', { body: seriesToSplitJson(after, { start: i - 5, end: n - 1, dates: 'iso' }) });
    expect(r.status).toBe(200);
    expect(r.body.history).toMatchObject({ bars: n - 1, added: 0 });
    expect(r.body.y_pred).toEqual(want);
    expect(r.body.y_pred).not.toEqual(before.body.y_pred);
    expectSameSeries(seriesOfFrame((await call(b.url, '/models/acme/history')).body), after);

    // Deleting it again: 404 naming the date; a date that is not one: 400.
    const again = await call(b.url, `/admin/models/acme/history/${gone}`, { method: 'DELETE', key: ADMIN_KEY });
    expect(again.status).toBe(404);
    expect(again.body.error).toMatchObject({ code: 'unknown_bar', message: `model 'acme' has no stored bar dated ${gone}` });
    const badDate = await call(b.url, '/admin/models/acme/history/2020-13-01', { method: 'DELETE', key: ADMIN_KEY });
    expect(badDate.status).toBe(400);
    expect(badDate.body.error.message).toBe("path parameter 'date' must be a calendar date YYYY-MM-DD, not '2020-13-01'");
    expect((await call(b.url, `/admin/models/nobody/history/${gone}`, { method: 'DELETE', key: ADMIN_KEY })).status).toBe(404);

    // The deleted bar, posted back as the answer gave it, restores the history and its forecasts.
    const bar = del.body.deleted;
    const restore = await call(a.url, '/models/acme/forecast', { body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [[bar.date, bar.open, bar.high, bar.low, bar.close, bar.volume]] } });
    expect(restore.body.history).toMatchObject({ added: 1, bars: n });
    const restored = await call(b.url, '/models/acme/forecast', { body: seriesToSplitJson(history, { ...window, dates: 'iso' }) });
    expect(restored.body.y_pred).toEqual(expectedForecasts(bundle.pipeline, history, i - 5, n));
  });
});
