import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { pipelineFromManifest } from '../../src/bundle/index.js';
import type { BarSeries } from '../../src/data/bars.js';
import { expectedForecast as expectedWith, nextWeekday, tinySeries, trainTiny, writeTinyBundle, type TinySpec } from './helpers/bundles.js';
import { ADMIN_KEY, call, startTestServer, tempDir, type TestServer } from './helpers/http.js';

// Versions of one model on one history (acme), differing in tree depth and feature set; and two more models.
const ACME: Record<string, TinySpec> = {
  '1': { name: 'acme', version: '1', seed: 1, maxDepth: 4 },
  '2': { name: 'acme', version: '2', seed: 1, maxDepth: 5 },
  '10': { name: 'acme', version: '10', seed: 1, maxDepth: 6, featureSet: 'causal' },
  '11': { name: 'acme', version: '11', seed: 1, maxDepth: 7 },
};
const BETA: TinySpec = { name: 'beta', version: '2024-01-01', seed: 2, bars: 500, startDate: '2021-06-01' };
const GAMMA: TinySpec = { name: 'gamma', version: '1', seed: 9, bars: 400 };

/** The forecast a spec's model makes for bar i of a history (batch features). */
function expectedForecast(spec: TinySpec, history: BarSeries, i: number): number | null {
  return expectedWith(pipelineFromManifest(trainTiny(spec).manifest), history, i);
}

describe('models folder, model cards, status, metrics, docs, reload', () => {
  const tmp = tempDir();
  const models = join(tmp.dir, 'models');
  let srv: TestServer;
  const acme = tinySeries(ACME['1']);
  const n = acme.date.length;
  const beta = tinySeries(BETA);
  /** A bar past the 200-bar warm-up. */
  const i = 400;

  beforeAll(async () => {
    for (const v of ['1', '2', '10']) await writeTinyBundle(join(models, 'acme', v), ACME[v]);
    await writeTinyBundle(join(models, 'beta', '2024-01-01'), BETA);
    srv = await startTestServer({ modelsDir: models, sqlitePath: join(tmp.dir, 'h.sqlite') });
  });
  afterAll(async () => {
    await srv.close();
    tmp.cleanup();
  });

  it('serves the newest version (natural order) unless one is named; each model has its own history', async () => {
    const body = seriesToSplitJson(acme, { start: i, end: i + 1 });
    const newest = await call(srv.url, '/models/acme/forecast', { body });
    expect(newest.body.model).toBe('acme@10');
    expect(newest.body.y_pred[0]).toBe(expectedForecast(ACME['10'], acme, i));
    const v2 = await call(srv.url, '/models/acme/versions/2/forecast', { body });
    expect(v2.body.y_pred[0]).toBe(expectedForecast(ACME['2'], acme, i));
    const v1 = await call(srv.url, '/models/acme/forecast?version=1', { body });
    expect(v1.body.y_pred[0]).toBe(expectedForecast(ACME['1'], acme, i));
    // The versions are different models (bar i is one where they all answer differently).
    expect(new Set([newest, v2, v1].map((r) => r.body.y_pred[0])).size).toBe(3);
    // Default model = first name; beta has its own history.
    expect((await call(srv.url, '/forecast', { body })).body.model).toBe('acme@10');
    const nb = beta.date.length;
    const b = await call(srv.url, '/models/beta/forecast', { body: seriesToSplitJson(beta, { start: nb - 1, end: nb }) });
    expect(b.body.y_pred[0]).toBe(expectedForecast(BETA, beta, nb - 1));
    expect(b.body.history.bars).toBe(nb);
  });

  it('a bar added through one version is seen by every version of the model', async () => {
    const date = nextWeekday(acme.date[n - 1]);
    const r = await call(srv.url, '/models/acme/versions/1/forecast', { body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [[date, 50, 52, 49, 51, 7]] } });
    expect(r.status).toBe(200);
    const v2 = await call(srv.url, '/models/acme/versions/2/forecast', { body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [[date, 50, 52, 49, 51, 7]] } });
    expect(v2.body.history).toMatchObject({ bars: n + 1, added: 0, unchanged: 1 });
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
      // 17 features after a degree-2 expansion: 1 + 17 + 153 columns.
      model: { kind: 'decision_tree_regressor', n_features: 171 },
      metrics: { test: { rows: trainTiny(ACME['10']).manifest.evaluation.dates.length } },
      hyperparameters: { model: 'tree', maxDepth: 6 },
      data: { source: { file: 'synthetic(seed=1, bars=600)', bars: n } },
      history: { bars: n + 1 },
    });
    expect(card.body.metrics.test.rows).toBeGreaterThan(0);
    const v1 = await call(srv.url, '/models/acme/versions/1');
    expect(v1.body.feature_set.caveats[0]).toMatch(/atr looks ahead/);
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
    expect(text).toMatch(new RegExp(`forecast_history_bars\\{model="acme"\\} ${n + 1}\n`));
    expect(text).toMatch(new RegExp(`forecast_history_bars\\{model="beta"\\} ${beta.date.length}\n`));
  });

  it('GET /openapi.json documents the API', async () => {
    const doc = (await call(srv.url, '/openapi.json', { key: null })).body;
    expect(doc.openapi).toBe('3.1.0');
    for (const p of ['/forecast', '/models/{name}/forecast', '/models/{name}/versions/{version}/forecast', '/invocations', '/v2/models/{name}/infer', '/admin/reload'])
      expect(doc.paths[p], p).toBeDefined();
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: 'apiKey', in: 'header', name: 'x-api-key' });
  });

  it('POST /admin/reload serves new versions and models without restart', async () => {
    await writeTinyBundle(join(models, 'acme', '11'), ACME['11']);
    await writeTinyBundle(join(models, 'gamma', '1'), GAMMA);
    const r = await call(srv.url, '/admin/reload', { body: {}, key: ADMIN_KEY });
    expect(r.status).toBe(200);
    expect(r.body.added.sort()).toEqual(['acme@11', 'gamma@1']);
    expect(r.body.kept).toContain('acme@10');
    const f = await call(srv.url, '/models/acme/forecast', { body: seriesToSplitJson(acme, { start: i, end: i + 1 }) });
    expect(f.body.model).toBe('acme@11');
    expect(f.body.y_pred[0]).toBe(expectedForecast(ACME['11'], acme, i));
    expect(f.body.y_pred[0]).not.toBe(expectedForecast(ACME['10'], acme, i));
    // The new version sees the bar added earlier (shared model history).
    expect(f.body.history.bars).toBe(n + 1);
    expect((await call(srv.url, '/models/gamma')).status).toBe(200);
  });
});
