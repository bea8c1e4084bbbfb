/**
 * The service's incremental path over the REAL reference feature set (its look-ahead `atr`
 * included) on MSFT.csv: forecasts served while bars arrive one by one, replaced or inserted, equal
 * the batch computation on the same history bit for bit. The model is a linear map of the raw
 * features (the lead's parity tests add the real bundle).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BarSeries } from '../../src/data/bars.js';
import { sliceSeries } from '../../src/data/bars.js';
import { readBarsCsv } from '../../src/data/index.js';
import { referenceFeatureSet } from '../../src/features/index.js';
import { FeaturePipeline, LinearRegression, StandardScaler } from '../../src/models/index.js';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { announceSkip, HAVE_REFERENCE, referenceFile } from '../helpers/reference.js';
import { call, startTestServer, tempDir, type TestServer } from './helpers/http.js';
import { stubManifest } from './helpers/stub-bundle.js';

announceSkip();

describe.skipIf(!HAVE_REFERENCE)('incremental serving on the reference feature set equals the batch features', () => {
  const tmp = tempDir();
  let srv: TestServer;
  let series: BarSeries;
  let pipeline: FeaturePipeline;
  const START = 8000;

  function expected(s: BarSeries, from: number, to: number): (number | null)[] {
    const table = referenceFeatureSet.computeBatch(s);
    const k = table.values.cols;
    const out: (number | null)[] = [];
    for (let i = from; i < to; i++) {
      const row = table.values.data.slice(i * k, (i + 1) * k);
      out.push(row.every(Number.isFinite) ? pipeline.predictFeatures(row) : null);
    }
    return out;
  }

  beforeAll(async () => {
    series = readBarsCsv(readFileSync(referenceFile('MSFT.csv'), 'utf8'), { numberParsing: 'legacy', sourceName: 'MSFT.csv' });
    const k = referenceFeatureSet.featureNames.length;
    const scaler = StandardScaler.fromState({ mean: new Array(k).fill(0), variance: new Array(k).fill(1), scale: new Array(k).fill(1), nSamplesSeen: 1 });
    const coef = Array.from({ length: k }, (_, j) => 1 / (j + 1.37));
    pipeline = new FeaturePipeline(referenceFeatureSet, scaler, null, LinearRegression.fromState({ kind: 'linear_regression', nFeatures: k, coef, intercept: 0.5 }), false);
    const history = sliceSeries(series, 0, START);
    const manifest = stubManifest({ name: 'msft', version: '1', bars: START }, referenceFeatureSet, history);
    srv = await startTestServer({ bundles: [{ dir: tmp.dir, manifest, pipeline, history, id: 'msft@1' }], sqlitePath: join(tmp.dir, 'h.sqlite') });
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
