import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { pipelineFromManifest } from '../../src/bundle/index.js';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { expectedForecasts, nextWeekday, tinySeries, trainTiny, writeTinyBundle, type TinySpec } from './helpers/bundles.js';
import { ADMIN_KEY, KEY, tempDir } from './helpers/http.js';
import { childPids, spawnServer, WORKER_COMMAND, type ServerProcess } from './helpers/process.js';
import { readFileSync } from 'node:fs';
import { WORKER_SEMI_SPACE_MB, workerExecArgv } from '../../src/serve/server.js';

const SPEC: TinySpec = { name: 'acme', version: '1', seed: 3 };

/** A fresh TCP connection per request, so node:cluster's round robin spreads them over the workers. */
async function fresh(url: string, path: string, body?: unknown, key = KEY) {
  const res = await fetch(`${url}${path}`, {
    method: body ? 'POST' : 'GET',
    headers: { 'x-api-key': key, 'content-type': 'application/json', connection: 'close' },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, worker: res.headers.get('x-worker-id'), body: (await res.json()) as any };
}

describe('two worker processes on one SQLite file', () => {
  const tmp = tempDir();
  let srv: ServerProcess;
  const history = tinySeries(SPEC);
  const n0 = history.date.length;
  const pipeline = pipelineFromManifest(trainTiny(SPEC).manifest);

  beforeAll(async () => {
    const bundleDir = await writeTinyBundle(join(tmp.dir, 'bundle'), SPEC);
    srv = await spawnServer({
      port: 0, // workers share the port the primary picks
      host: '127.0.0.1',
      workers: 2,
      apiKeys: [KEY],
      adminApiKeys: [ADMIN_KEY],
      bundleDir,
      sqlitePath: join(tmp.dir, 'history.sqlite'),
      logger: false,
    });
  });
  afterAll(async () => {
    await srv?.stop();
    tmp.cleanup();
  });

  it('a bar posted to one worker changes the next forecast from the other exactly as with one process', async () => {
    const seen = new Set<string>();
    // Warm: both workers answer for the stored newest bar (provisional, no next bar yet).
    for (let k = 0; k < 4; k++) {
      const r = await fresh(srv.url, '/forecast', seriesToSplitJson(history, { start: n0 - 1, end: n0 }));
      expect(r.status).toBe(200);
      expect(r.body.forecasts[0].y_pred).toBe(expectedForecasts(pipeline, history, n0 - 1, n0)[0]);
      seen.add(r.worker!);
    }
    expect(seen.size).toBe(2);
    // Add bars one at a time; after each, every worker gives the single-process answer for the previous bar.
    let date = history.date[n0 - 1];
    const grown = { ...history, date: [...history.date], open: [...history.open], high: [...history.high], low: [...history.low], close: [...history.close], volume: [...history.volume] };
    for (let step = 0; step < 4; step++) {
      date = nextWeekday(date);
      const bar = [date, 90 + step, 95 + step, 85 + step, 88 + step * 1.5, 1000 + step];
      const post = await fresh(srv.url, '/forecast', { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [bar] });
      expect(post.status).toBe(200);
      grown.date.push(date);
      grown.open.push(bar[1] as number);
      grown.high.push(bar[2] as number);
      grown.low.push(bar[3] as number);
      grown.close.push(bar[4] as number);
      grown.volume.push(bar[5] as number);
      const series = {
        date: grown.date,
        open: Float64Array.from(grown.open),
        high: Float64Array.from(grown.high),
        low: Float64Array.from(grown.low),
        close: Float64Array.from(grown.close),
        volume: Float64Array.from(grown.volume),
      };
      const n = series.date.length;
      const workers = new Set<string>();
      for (let k = 0; k < 4; k++) {
        const r = await fresh(srv.url, '/forecast', seriesToSplitJson(series, { start: n - 2, end: n }));
        expect(r.status).toBe(200);
        expect(r.body.y_pred).toEqual(expectedForecasts(pipeline, series, n - 2, n));
        expect(r.body.history.bars).toBe(n);
        workers.add(r.worker!);
      }
      expect(workers.size).toBe(2);
    }
  });

  it('workers run with a small young generation (less RSS per worker), unless the operator chose one', async () => {
    const workers = childPids(srv.child.pid!, WORKER_COMMAND);
    expect(workers.length).toBe(2);
    for (const pid of workers) expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toContain(`--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`);
    expect(workerExecArgv([])).toEqual([`--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`]);
    expect(workerExecArgv(['--max-semi-space-size=16'])).toEqual(['--max-semi-space-size=16']);
    expect(workerExecArgv(['--import', 'tsx'], '--max-semi-space-size=8')).toEqual(['--import', 'tsx']);
  });

  it('serialises concurrent writers: no bar lost or applied twice', async () => {
    let date = '2030-01-01';
    const bodies = [];
    for (let k = 0; k < 20; k++) {
      date = nextWeekday(date);
      bodies.push({ columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [[date, 100, 101, 99, 100 + k / 8, 10]] });
    }
    const before = (await fresh(srv.url, '/models')).body.models[0].history;
    const results = await Promise.all([...bodies, ...bodies].map((b) => fresh(srv.url, '/forecast', b)));
    for (const r of results) expect(r.status).toBe(200);
    const added = results.reduce((s, r) => s + r.body.history.added, 0);
    expect(added).toBe(20);
    const after = (await fresh(srv.url, '/models')).body.models[0].history;
    expect(after.bars).toBe(before.bars + 20);
    expect(after.version).toBe(before.version + 20);
  });

  it('aggregates metrics across workers and reloads every worker', async () => {
    const m = await fetch(`${srv.url}/metrics`);
    const text = await m.text();
    expect(m.status).toBe(200);
    expect(text).toMatch(/forecast_http_requests_total\{[^}]*route="\/forecast"/);
    const total = [...text.matchAll(/^forecast_forecasts_total\{[^}]*outcome="value"\} (\d+)/gm)].reduce((s, x) => s + Number(x[1]), 0);
    expect(total).toBeGreaterThanOrEqual(4 + 4 * 4 * 2 + 40);
    const reload = await fresh(srv.url, '/admin/reload', {}, ADMIN_KEY);
    expect(reload.status).toBe(200);
    expect(reload.body.models).toEqual(['acme@1']);
  });

  it('stops gracefully on SIGTERM', async () => {
    const code = await srv.stop('SIGTERM');
    expect(code).toBe(0);
  });
});
