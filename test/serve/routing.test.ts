/**
 * Shadow versions and promotion across processes sharing one store: a shadow's scored forecasts are
 * what that version alone answers; a promotion switches every process, and under load no request
 * fails nor is answered by a mix of versions.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedBundle } from '../../src/bundle/index.js';
import { regressionMetrics } from '../../src/models/metrics.js';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { SqliteHistoryStore } from '../../src/store/sqlite.js';
import { expectedForecasts, tinyBundle, tinySeries, TINY_BARS, type TinySpec } from './helpers/bundles.js';
import { ADMIN_KEY, call, startTestServer, tempDir, type TestServer } from './helpers/http.js';

const V1: TinySpec = { name: 'acme', version: '1', seed: 5, featureSet: 'causal', maxDepth: 3 };
const V2: TinySpec = { ...V1, version: '2', maxDepth: 7 };
const LIVE = 40;

describe('shadow versions and promotion', () => {
  const tmp = tempDir();
  let v1: LoadedBundle;
  let v2: LoadedBundle;
  let a: TestServer;
  let b: TestServer;
  let sqlitePath: string;
  const full = tinySeries({ seed: V1.seed, bars: TINY_BARS + LIVE + 10 });
  let next = TINY_BARS;

  const post = (srv: TestServer, i: number, query = '') =>
    call(srv.url, `/models/acme/forecast${query}`, { body: seriesToSplitJson(full, { start: i, end: i + 1, dates: 'iso' }) });

  beforeAll(async () => {
    v1 = await tinyBundle(tmp.dir, V1);
    v2 = await tinyBundle(tmp.dir, V2);
    sqlitePath = join(tmp.dir, 'h.sqlite');
    a = await startTestServer({ bundles: [v1, v2], sqlitePath });
    b = await startTestServer({ bundles: [v1, v2], sqlitePath });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    tmp.cleanup();
  });

  it('answers with the newest version until one is promoted, then with the promoted one on every process', async () => {
    expect((await post(a, next - 1)).body.model).toBe('acme@2');
    const promote = await call(a.url, '/admin/models/acme/promote', { body: { version: '1' }, key: ADMIN_KEY });
    expect(promote.status, promote.text).toBe(200);
    expect(promote.body).toMatchObject({ model: 'acme', default_version: '1', promoted: true, shadow_version: null, previous_default_version: '2' });
    // The other process switches at its next request, without a reload.
    const r = await post(b, next - 1);
    expect(r.body.model).toBe('acme@1');
    expect(r.body.y_pred).toEqual(expectedForecasts(v1.pipeline, full, next - 1, next));
    expect((await post(b, next - 1, '?version=2')).body.model).toBe('acme@2');
    expect((await call(b.url, '/models/acme')).body.routing).toEqual({ default_version: '1', shadow_version: null });
  });

  it('refuses what cannot be routed: an unknown version, the default as its own shadow, a client key', async () => {
    expect((await call(a.url, '/admin/models/acme/promote', { body: { version: '9' }, key: ADMIN_KEY })).status).toBe(404);
    const self = await call(a.url, '/admin/models/acme/shadow', { body: { version: '1' }, key: ADMIN_KEY });
    expect(self.status).toBe(409);
    expect(self.body.error.code).toBe('shadow_is_default');
    expect((await call(a.url, '/admin/models/acme/promote', { body: { version: '2' } })).status).toBe(403);
    expect((await call(a.url, '/admin/models/acme/shadow', { body: {}, key: ADMIN_KEY })).status).toBe(400);
  });

  it("logs and scores a shadow's forecasts, equal to what that version alone answers, without returning them", async () => {
    const set = await call(b.url, '/admin/models/acme/shadow', { body: { version: '2' }, key: ADMIN_KEY });
    expect(set.body).toMatchObject({ default_version: '1', shadow_version: '2' });
    const first = next;
    for (let k = 0; k < LIVE; k++, next++) {
      const r = await post(k % 2 ? a : b, next);
      expect(r.body.model).toBe('acme@1');
      expect(r.body.y_pred).toEqual(expectedForecasts(v1.pipeline, full, next, next + 1));
    }
    const alone = expectedForecasts(v2.pipeline, full, first, next - 1) as number[];
    const yTrue = Float64Array.from({ length: next - 1 - first }, (_, k) => full.close[first + k + 1] / full.close[first + k]);
    const m = (await call(a.url, '/models/acme/monitoring?version=2')).body;
    const all = m.live.find((w: { window: unknown }) => w.window === 'all');
    // Bars before the shadow was set were logged for version 2 too (every served version is), so compare the shadow's period.
    const want = regressionMetrics(yTrue, Float64Array.from(alone));
    expect(all.rows).toBeGreaterThanOrEqual(LIVE - 1);
    const store = new SqliteHistoryStore({ path: sqlitePath });
    try {
      const rows = (await store.forecastLog('acme', '2', 10_000)).filter((r) => r.date >= full.date[first] && r.yTrue !== null);
      expect(rows.map((r) => r.date)).toEqual(full.date.slice(first, next - 1));
      expect(rows.map((r) => r.yFinal)).toEqual(alone);
      expect(rows.map((r) => r.yPred)).toEqual(alone);
      // Logged from the request the default answered: its request id, not a background computation's.
      expect(rows.every((r) => typeof r.requestId === 'string' && r.requestId.length > 0)).toBe(true);
      expect(regressionMetrics(Float64Array.from(rows, (r) => r.yTrue!), Float64Array.from(rows, (r) => r.yFinal!))).toEqual(want);
    } finally {
      await store.close();
    }
  });

  it('promotes under load: no request fails, each is answered wholly by one version, and every request after the switch by the new one', async () => {
    const i = next - 1;
    const want = { 'acme@1': expectedForecasts(v1.pipeline, full, i - 2, i + 1), 'acme@2': expectedForecasts(v2.pipeline, full, i - 2, i + 1) };
    const body = seriesToSplitJson(full, { start: i - 2, end: i + 1, dates: 'iso' });
    let promotedAt = Number.POSITIVE_INFINITY;
    const answers: { model: string; y_pred: unknown; status: number; sentAt: number }[] = [];
    const load = async (srv: TestServer) => {
      for (let k = 0; k < 150; k++) {
        const sentAt = performance.now();
        const r = await call(srv.url, '/models/acme/forecast', { body });
        answers.push({ model: r.body?.model, y_pred: r.body?.y_pred, status: r.status, sentAt });
      }
    };
    const promote = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 30));
      const r = await call(a.url, '/admin/models/acme/promote', { body: { version: '2' }, key: ADMIN_KEY });
      expect(r.status).toBe(200);
      expect(r.body.shadow_version).toBeNull();
      promotedAt = performance.now();
    })();
    await Promise.all([load(a), load(b), load(a), load(b), promote]);
    expect(answers.filter((x) => x.status !== 200)).toEqual([]);
    for (const x of answers) expect(x.y_pred, x.model).toEqual(want[x.model as keyof typeof want]);
    expect(answers.filter((x) => x.sentAt > promotedAt && x.model !== 'acme@2')).toEqual([]);
    expect(new Set(answers.map((x) => x.model))).toEqual(new Set(['acme@1', 'acme@2']));
  });

  it('decides an admin change from the stored routing, not from a process that has not caught up yet', async () => {
    // b has not served a request since a switched the default: it must still see version 1 as the default.
    expect((await call(a.url, '/admin/models/acme/promote', { body: { version: '1' }, key: ADMIN_KEY })).status).toBe(200);
    const shadow = await call(b.url, '/admin/models/acme/shadow', { body: { version: '2' }, key: ADMIN_KEY });
    expect(shadow.status, shadow.text).toBe(200);
    expect(shadow.body).toMatchObject({ default_version: '1', shadow_version: '2' });
    expect((await call(a.url, '/models/acme/monitoring')).body.version).toBe('1');
  });
});
