import { afterAll, beforeAll, expect, it } from 'vitest';
import { PostgresHistoryStore } from '../../src/store/postgres.js';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { needsPostgres, PG_URL, uniqueSchema } from '../store/pg-helper.js';
import type { LoadedBundle } from '../../src/bundle/index.js';
import type { BarSeries } from '../../src/data/bars.js';
import { expectedForecasts, nextWeekday, tinyBundle, tinySeries, type TinySpec } from './helpers/bundles.js';
import { call, startTestServer, tempDir, type TestServer } from './helpers/http.js';

const withPostgres = await needsPostgres();
const SPEC: TinySpec = { name: 'acme', version: '1', seed: 8 };
const COLS = ['date', 'open', 'high', 'low', 'close', 'volume'];

withPostgres.describe('two servers sharing one PostgreSQL history', () => {
  const schema = uniqueSchema('serve');
  const tmp = tempDir();
  let a: TestServer;
  let b: TestServer;
  let bundle: LoadedBundle;
  const history = tinySeries(SPEC);
  const n0 = history.date.length;
  const expected = (s: BarSeries, from: number, to: number) => expectedForecasts(bundle.pipeline, s, from, to);

  beforeAll(async () => {
    bundle = await tinyBundle(tmp.dir, SPEC);
    const opts = { bundles: [bundle], databaseUrl: PG_URL, databaseSchema: schema };
    [a, b] = await Promise.all([startTestServer(opts), startTestServer(opts)]);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    tmp.cleanup();
    const s = new PostgresHistoryStore({ connectionString: PG_URL, schema });
    await s.dropSchema();
    await s.close();
  });

  it('seeds once and both answer the same', async () => {
    const body = seriesToSplitJson(history, { start: n0 - 10, end: n0 });
    const [ra, rb] = await Promise.all([call(a.url, '/forecast', { body }), call(b.url, '/forecast', { body })]);
    expect(ra.body.y_pred).toEqual(rb.body.y_pred);
    expect(ra.body.y_pred).toEqual(expected(history, n0 - 10, n0));
    expect(ra.body.history).toMatchObject({ version: 1, bars: n0 });
    const status = await call(a.url, '/');
    expect(status.body.store).toBe('postgres');
  });

  it('a bar posted to one server changes the next forecast from the other exactly as with one server', async () => {
    let date = history.date[n0 - 1];
    const grown = { date: [...history.date], open: [...history.open], high: [...history.high], low: [...history.low], close: [...history.close], volume: [...history.volume] };
    for (let step = 0; step < 4; step++) {
      const [writer, reader] = step % 2 ? [b, a] : [a, b];
      date = nextWeekday(date);
      const row = [date, 70 + step, 72 + step, 69 + step, 70.5 + step / 3, 500 + step];
      const w = await call(writer.url, '/forecast', { body: { columns: COLS, data: [row] } });
      expect(w.status).toBe(200);
      grown.date.push(date);
      grown.open.push(row[1] as number);
      grown.high.push(row[2] as number);
      grown.low.push(row[3] as number);
      grown.close.push(row[4] as number);
      grown.volume.push(row[5] as number);
      const s = { date: grown.date, open: Float64Array.from(grown.open), high: Float64Array.from(grown.high), low: Float64Array.from(grown.low), close: Float64Array.from(grown.close), volume: Float64Array.from(grown.volume) };
      const n = s.date.length;
      const r = await call(reader.url, '/forecast', { body: seriesToSplitJson(s, { start: n - 2, end: n }) });
      expect(r.body.y_pred).toEqual(expected(s, n - 2, n));
      expect(r.body.history).toMatchObject({ bars: n, added: 0 });
    }
  });

  it('replacements and inserts before the newest bar propagate too', async () => {
    const i = n0 - 20;
    const body = seriesToSplitJson(history, { start: i, end: i + 1 });
    body.data[0][4] = (body.data[0][4] as number) * 1.05;
    expect((await call(a.url, '/forecast', { body })).status).toBe(409);
    const rep = await call(a.url, '/forecast?replace=1', { body });
    expect(rep.status).toBe(200);
    const fromB = await call(b.url, '/forecast', { body });
    expect(fromB.body.y_pred).toEqual(rep.body.y_pred);
    expect(fromB.body.history.unchanged).toBe(1);
  });

  it('concurrent writers on both servers: no bar lost or applied twice', async () => {
    const rows = Array.from({ length: 15 }, (_, k) => [`2035-02-${String(k + 1).padStart(2, '0')}`, 10, 11, 9, 10 + k / 10, 1]);
    const before = (await call(a.url, '/models')).body.models[0].history;
    const results = await Promise.all(rows.flatMap((row) => [a, b].map((s) => call(s.url, '/forecast', { body: { columns: COLS, data: [row] } }))));
    for (const r of results) expect(r.status).toBe(200);
    expect(results.reduce((s, r) => s + r.body.history.added, 0)).toBe(15);
    const after = (await call(b.url, '/models')).body.models[0].history;
    expect(after.bars).toBe(before.bars + 15);
    expect(after.version).toBe(before.version + 15);
  });
});
