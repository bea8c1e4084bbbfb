import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { call, startTestServer, tempDir, type TestServer } from './helpers/http.js';
import { expectedForecast, loadBundle, makeSeries, nextWeekday, writeStubBundle } from './helpers/stub-bundle.js';

describe('models folder, model cards, status, metrics, docs, reload', () => {
  const tmp = tempDir();
  const models = join(tmp.dir, 'models');
  let srv: TestServer;
  const acme = makeSeries(50, 1);
  const beta = makeSeries(30, 2, '2021-06-01');

  beforeAll(async () => {
    writeStubBundle(join(models, 'acme', '1'), { name: 'acme', version: '1', bars: 50, seed: 1 });
    writeStubBundle(join(models, 'acme', '2'), { name: 'acme', version: '2', bars: 50, seed: 1, weight: 2 });
    writeStubBundle(join(models, 'acme', '10'), { name: 'acme', version: '10', bars: 50, seed: 1, weight: 3, lookahead: 0 });
    writeStubBundle(join(models, 'beta', '2024-01-01'), { name: 'beta', version: '2024-01-01', bars: 30, seed: 2, startDate: '2021-06-01' });
    srv = await startTestServer({ modelsDir: models, loadBundle, sqlitePath: join(tmp.dir, 'h.sqlite') });
  });
  afterAll(async () => {
    await srv.close();
    tmp.cleanup();
  });

  it('serves the newest version (natural order) unless one is named; each model has its own history', async () => {
    const body = seriesToSplitJson(acme, { start: 30, end: 31 });
    const newest = await call(srv.url, '/models/acme/forecast', { body });
    expect(newest.body.model).toBe('acme@10');
    expect(newest.body.y_pred[0]).toBe(expectedForecast(acme, 30, { weight: 3, lookahead: 0 }));
    const v2 = await call(srv.url, '/models/acme/versions/2/forecast', { body });
    expect(v2.body.y_pred[0]).toBe(expectedForecast(acme, 30, { weight: 2 }));
    const v1 = await call(srv.url, '/models/acme/forecast?version=1', { body });
    expect(v1.body.y_pred[0]).toBe(expectedForecast(acme, 30));
    // Default model = first name; beta has its own history.
    expect((await call(srv.url, '/forecast', { body })).body.model).toBe('acme@10');
    const b = await call(srv.url, '/models/beta/forecast', { body: seriesToSplitJson(beta, { start: 29, end: 30 }) });
    expect(b.body.y_pred[0]).toBe(expectedForecast(beta, 29));
    expect(b.body.history.bars).toBe(30);
  });

  it('a bar added through one version is seen by every version of the model', async () => {
    const date = nextWeekday(acme.date[49]);
    const r = await call(srv.url, '/models/acme/versions/1/forecast', { body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [[date, 50, 52, 49, 51, 7]] } });
    expect(r.status).toBe(200);
    const v2 = await call(srv.url, '/models/acme/versions/2/forecast', { body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [[date, 50, 52, 49, 51, 7]] } });
    expect(v2.body.history).toMatchObject({ bars: 51, added: 0, unchanged: 1 });
  });

  it('GET /models and model cards', async () => {
    const list = await call(srv.url, '/models');
    expect(list.body.default_model).toBe('acme');
    expect(list.body.models.map((m: any) => [m.name, m.latest, m.versions.map((v: any) => v.version)])).toEqual([
      ['acme', '10', ['10', '2', '1']],
      ['beta', '2024-01-01', ['2024-01-01']],
    ]);
    const card = await call(srv.url, '/models/acme');
    expect(card.status).toBe(200);
    expect(card.body).toMatchObject({
      name: 'acme',
      version: '10',
      id: 'acme@10',
      default: true,
      feature_set: { name: 'causal', lookahead: 0 },
      model: { kind: 'linear_regression', n_features: 4 },
      metrics: { test: { rows: 10 } },
      hyperparameters: { stub: true, weight: 3 },
      data: { source: { file: 'stub.csv', bars: 50 } },
      history: { bars: 51 },
    });
    const v1 = await call(srv.url, '/models/acme/versions/1');
    expect(v1.body.feature_set.caveats[0]).toMatch(/look-ahead/);
    expect((await call(srv.url, '/models/acme?version=1')).body.version).toBe('1');
    expect((await call(srv.url, '/models/zeta')).status).toBe(404);
  });

  it('GET / status, /healthz, /readyz', async () => {
    const s = await call(srv.url, '/');
    expect(s.body).toMatchObject({ status: 'ok', default_model: 'acme@10', store: 'sqlite' });
    expect(s.body.models).toContain('beta@2024-01-01');
    expect((await call(srv.url, '/healthz', { key: null })).body).toEqual({ status: 'ok' });
    expect((await call(srv.url, '/readyz', { key: null })).body).toMatchObject({ status: 'ready', models: 4 });
  });

  it('GET /metrics in Prometheus format, per route and model', async () => {
    const r = await fetch(`${srv.url}/metrics`);
    expect(r.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await r.text();
    expect(text).toMatch(/forecast_http_requests_total\{method="POST",route="\/models\/:name\/forecast",status="200",model="acme@10"\} \d+/);
    expect(text).toMatch(/forecast_http_request_duration_seconds_bucket\{[^}]*route="\/models\/:name\/versions\/:version\/forecast"[^}]*model="acme@2"/);
    expect(text).toMatch(/forecast_forecasts_total\{model="acme@1",outcome="value"\} \d+/);
    expect(text).toMatch(/forecast_history_bars\{model="acme"\} 51/);
    expect(text).toMatch(/forecast_history_bars\{model="beta"\} 30/);
  });

  it('GET /openapi.json documents the API', async () => {
    const doc = (await call(srv.url, '/openapi.json', { key: null })).body;
    expect(doc.openapi).toBe('3.1.0');
    for (const p of ['/forecast', '/models/{name}/forecast', '/models/{name}/versions/{version}/forecast', '/invocations', '/v2/models/{name}/infer', '/admin/reload'])
      expect(doc.paths[p], p).toBeDefined();
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: 'apiKey', in: 'header', name: 'x-api-key' });
  });

  it('POST /admin/reload serves new versions and models without restart', async () => {
    writeStubBundle(join(models, 'acme', '11'), { name: 'acme', version: '11', bars: 50, seed: 1, weight: 5 });
    writeStubBundle(join(models, 'gamma', '1'), { name: 'gamma', version: '1', bars: 20, seed: 9 });
    const r = await call(srv.url, '/admin/reload', { body: {} });
    expect(r.status).toBe(200);
    expect(r.body.added.sort()).toEqual(['acme@11', 'gamma@1']);
    expect(r.body.kept).toContain('acme@10');
    const f = await call(srv.url, '/models/acme/forecast', { body: seriesToSplitJson(acme, { start: 30, end: 31 }) });
    expect(f.body.model).toBe('acme@11');
    expect(f.body.y_pred[0]).toBe(expectedForecast(acme, 30, { weight: 5 }));
    // The new version sees the bar added earlier (shared model history).
    expect(f.body.history.bars).toBe(51);
    expect((await call(srv.url, '/models/gamma')).status).toBe(200);
  });
});
