/**
 * The service's incremental path over the REAL reference feature set (its look-ahead `atr`
 * included) on MSFT.csv: forecasts served while bars arrive one by one, replaced or inserted, equal
 * the batch computation on the same history bit for bit. The bundle is a linear model trained by
 * `train()` on MSFT's first 8,000 bars: unlike a tree, whose output only moves when a feature crosses
 * a threshold, its forecast moves with every bit of every feature. (parity.test.ts serves the real
 * scikit-learn tree against the offline evaluation.)
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BarSeries } from '../../src/data/bars.js';
import { sliceSeries } from '../../src/data/bars.js';
import { loadBundle, writeBundle, sha256 } from '../../src/bundle/index.js';
import { readBarsCsv } from '../../src/data/index.js';
import type { FeaturePipeline } from '../../src/models/index.js';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { train } from '../../src/training/train.js';
import { needsReference, referenceFile } from '../helpers/reference.js';
import { expectedForecasts } from './helpers/bundles.js';
import { call, startTestServer, tempDir, type TestServer } from './helpers/http.js';

const withReference = needsReference('MSFT.csv');

withReference.describe('incremental serving on the reference feature set equals the batch features', () => {
  const tmp = tempDir();
  let srv: TestServer;
  let series: BarSeries;
  let pipeline: FeaturePipeline;
  const START = 8000;

  const expected = (s: BarSeries, from: number, to: number) => expectedForecasts(pipeline, s, from, to);

  beforeAll(async () => {
    const text = readFileSync(referenceFile('MSFT.csv'), 'utf8');
    series = readBarsCsv(text, { numberParsing: 'legacy', sourceName: 'MSFT.csv' });
    const history = sliceSeries(series, 0, START);
    // Two folds instead of three: a third least-squares fit would only lengthen the test.
    const { manifest } = train({
      series: history,
      source: { file: 'MSFT.csv (first 8000 bars)', sha256: sha256(text) },
      featureSet: 'reference',
      model: 'linear',
      cvSplits: 2,
      name: 'msft',
      version: '1',
    });
    const dir = join(tmp.dir, 'bundle');
    await writeBundle(dir, manifest, history);
    pipeline = (await loadBundle(dir)).pipeline;
    srv = await startTestServer({ bundleDir: dir, sqlitePath: join(tmp.dir, 'h.sqlite') });
  });
  afterAll(async () => {
    await srv?.close();
    tmp.cleanup();
  });

  it('bars posted one by one: the previous bar gets its look-ahead, the newest the provisional value', async () => {
    const n = series.date.length;
    for (let i = START; i < n; i++) {
      const r = await call(srv.url, '/forecast', { body: seriesToSplitJson(series, { start: i - 1, end: i + 1 }) });
      expect(r.status).toBe(200);
      const want = expected(sliceSeries(series, 0, i + 1), i - 1, i + 1);
      expect(r.body.y_pred).toEqual(want);
      expect(r.body.forecasts[1].provisional).toBe(true);
      expect(r.body.forecasts[0].provisional).toBeUndefined();
    }
  });

  it('the 963-bar test range equals the batch computation', async () => {
    const n = series.date.length;
    const r = await call(srv.url, '/forecast', { body: seriesToSplitJson(series, { start: n - 963, end: n }) });
    expect(r.status).toBe(200);
    expect(r.body.history).toMatchObject({ bars: n, added: 0, unchanged: 963 });
    expect(r.body.y_pred).toEqual(expected(series, n - 963, n));
    const early = await call(srv.url, '/forecast', { body: seriesToSplitJson(series, { start: 0, end: 1 }) });
    expect(early.body.forecasts[0].reason).toMatch(/insufficient history/);
  });

  it('a replaced older bar recomputes every later bar', async () => {
    const n = series.date.length;
    const i = n - 40;
    const body = seriesToSplitJson(series, { start: i, end: i + 1 });
    body.data[0][4] = (body.data[0][4] as number) * 1.02;
    const rep = await call(srv.url, '/forecast?replace=true', { body });
    expect(rep.status).toBe(200);
    const changed = { ...series, close: series.close.slice() };
    changed.close[i] = body.data[0][4] as number;
    const r = await call(srv.url, '/forecast', { body: seriesToSplitJson(changed, { start: i - 5, end: n }) });
    expect(r.body.y_pred).toEqual(expected(changed, i - 5, n));
  });
});
