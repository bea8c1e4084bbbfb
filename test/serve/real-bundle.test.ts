/**
 * A real trained bundle (synthetic data, written and loaded by src/bundle) behind the real server:
 * every evaluation date whose next bar is stored answers the bundle's offline forecast bit for bit
 * (FEATURES.md §6), on both feature sets, the reference one with its look-ahead `atr`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBundle, writeBundle } from '../../src/bundle/io.js';
import { generateSyntheticBars } from '../../src/data/index.js';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { train } from '../../src/training/train.js';
import { ADMIN_KEY, call, startTestServer, tempDir, type TestServer } from './helpers/http.js';

describe('real bundles: served forecasts equal the offline evaluation', () => {
  const tmp = tempDir();
  let srv: TestServer;
  const series = generateSyntheticBars({ seed: 42, bars: 1200 });

  beforeAll(async () => {
    for (const featureSet of ['reference', 'causal'] as const) {
      const result = train({
        series,
        source: { file: 'synthetic.csv', sha256: '0'.repeat(64) },
        featureSet,
        model: 'tree',
        tree: { maxDepth: 6 },
        name: featureSet,
        version: '1',
      });
      await writeBundle(join(tmp.dir, 'models', featureSet, '1'), result.manifest, series);
    }
    srv = await startTestServer({ modelsDir: join(tmp.dir, 'models'), sqlitePath: join(tmp.dir, 'h.sqlite') });
  }, 120_000);
  afterAll(async () => {
    await srv?.close();
    tmp.cleanup();
  });

  for (const name of ['reference', 'causal']) {
    it(`${name}: the whole evaluation range in one request, bit for bit`, async () => {
      const card = await call(srv.url, `/models/${name}`);
      expect(card.status).toBe(200);
      const bundle = await loadBundle(join(tmp.dir, 'models', name, '1'));
      const ev = bundle.manifest.evaluation;
      expect(ev.dates.length).toBeGreaterThan(50);
      const start = series.date.indexOf(ev.dates[0]);
      const end = series.date.indexOf(ev.dates[ev.dates.length - 1]) + 1;
      const r = await call(srv.url, `/models/${name}/forecast`, { body: seriesToSplitJson(series, { start, end }) });
      expect(r.status).toBe(200);
      expect(r.body.history.unchanged).toBe(end - start);
      expect(r.body.forecasts.map((f: { date: string }) => f.date)).toEqual(ev.dates);
      expect(r.body.y_pred).toEqual(ev.yPred);
    });
  }

  it('ISO dates and one-ulp-different prices give the same forecasts', async () => {
    const bundle = await loadBundle(join(tmp.dir, 'models', 'reference', '1'));
    const ev = bundle.manifest.evaluation;
    const i = series.date.indexOf(ev.dates[10]);
    const body = seriesToSplitJson(series, { start: i, end: i + 5, dates: 'iso' });
    for (const row of body.data) row[4] = (row[4] as number) * (1 + Number.EPSILON);
    const r = await call(srv.url, '/models/reference/forecast', { body });
    expect(r.status).toBe(200);
    expect(r.body.y_pred).toEqual(ev.yPred.slice(10, 15));
  });

  it('a damaged new bundle is refused at reload, named in the answer, and the served models stay', async () => {
    const src = join(tmp.dir, 'models', 'causal', '1');
    const bad = join(tmp.dir, 'models', 'causal', '2');
    cpSync(src, bad, { recursive: true });
    const manifest = readFileSync(join(bad, 'manifest.json'), 'utf8');
    writeFileSync(join(bad, 'manifest.json'), manifest.replace('"version": "1"', '"version": "2"'));
    const r = await call(srv.url, '/admin/reload', { body: {}, key: ADMIN_KEY });
    // One damaged version never blocks the others: the reload succeeds and names the refused one.
    expect(r.status).toBe(200);
    expect(r.body.refused).toEqual([expect.objectContaining({ model: 'causal', version: '2', code: 'bundle_tampered' })]);
    const ok = await call(srv.url, '/models/causal/forecast', { body: seriesToSplitJson(series, { start: 1100, end: 1101 }) });
    expect(ok.status).toBe(200);
    expect(ok.body.model).toBe('causal@1');
    rmSync(bad, { recursive: true, force: true });
  });
});
