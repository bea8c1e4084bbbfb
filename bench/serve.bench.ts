/**
 * Serving benchmark: single-bar POST /forecast throughput and latency (autocannon) against the same
 * process's trivial route and a bare node:http server answering fixed JSON; a 963-bar request (the
 * MSFT test set's size); start-up time to ready; RSS after load; server time per forecast from the
 * service's own latency histogram. Uses the demo bundle when src/bundle provides it, else a stub.
 */
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import type { LoadedBundle } from '../src/bundle/types.js';
import { buildApp } from '../src/serve/app.js';
import { seriesToSplitJson } from '../src/serve/bar-table.js';
import { loadBundle, writeBundle } from '../src/bundle/io.js';
import { generateSyntheticBars } from '../src/data/index.js';
import { train } from '../src/training/train.js';
import { spawnServer } from '../test/serve/helpers/process.js';

const KEY = 'bench-key-0123456789abcdef';
const DURATION_S = 5;
const CONNECTIONS = 10;

async function demoBundle(dir: string): Promise<{ bundle: LoadedBundle; kind: string }> {
  const spec: string = '../src/bundle/index.js';
  try {
    const mod = (await import(spec)) as { ensureDemoBundle?: (d: string) => Promise<unknown>; loadBundle?: (d: string) => Promise<LoadedBundle> };
    if (mod.ensureDemoBundle && mod.loadBundle) {
      await mod.ensureDemoBundle(dir);
      return { bundle: await mod.loadBundle(dir), kind: 'demo bundle' };
    }
  } catch {
    /* not there yet: fall back */
  }
  // No demo helper yet: train the reference recipe on 8,163 synthetic bars (MSFT.csv's length).
  const series = generateSyntheticBars({ seed: 7, bars: 8163 });
  const result = train({ series, source: { file: 'synthetic.csv', sha256: '0'.repeat(64) }, featureSet: 'reference', model: 'tree', name: 'synthetic', version: '1' });
  await writeBundle(dir, result.manifest, series);
  return { bundle: await loadBundle(dir), kind: 'reference-recipe tree trained on synthetic bars' };
}

function cannon(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ duration: DURATION_S, connections: CONNECTIONS, ...opts }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

function line(name: string, r: autocannon.Result): string {
  return `  ${name.padEnd(34)} ${Math.round(r.requests.average).toString().padStart(7)} req/s   p50 ${r.latency.p50} ms   p99 ${r.latency.p99} ms   errors ${r.errors + r.non2xx}`;
}

export default async function run(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'serve-bench-'));
  try {
    const { bundle, kind } = await demoBundle(join(tmp, 'demo'));
    const rssBefore = process.memoryUsage().rss;
    const t0 = performance.now();
    const app = await buildApp({ bundles: [bundle], apiKeys: [KEY], sqlitePath: join(tmp, 'history.sqlite'), logger: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const readyMs = performance.now() - t0;
    const port = (app.server.address() as { port: number }).port;
    const url = `http://127.0.0.1:${port}`;
    const h = bundle.history;
    const n = h.date.length;
    const single = JSON.stringify(seriesToSplitJson(h, { start: n - 1, end: n }));
    const headers = { 'x-api-key': KEY, 'content-type': 'application/json' };
    // Warm up (JIT, prepared statements).
    for (let i = 0; i < 200; i++) await fetch(`${url}/forecast`, { method: 'POST', headers, body: single });
    const rssLoaded = process.memoryUsage().rss;

    console.log(`  model: ${bundle.id}, ${kind}, ${n} bars of history; SQLite store; logging off; ${CONNECTIONS} connections, ${DURATION_S} s each`);
    console.log(`  start-up to ready (load, seed store, build engines, listen): ${readyMs.toFixed(0)} ms`);
    console.log(`  RSS of this process after load and warm-up: ${(rssLoaded / 2 ** 20).toFixed(0)} MiB (includes the bench's own training; see the fresh process below)`);
    void rssBefore;

    const forecast = await cannon({ url: `${url}/forecast`, method: 'POST', headers, body: single });
    const trivial = await cannon({ url: `${url}/healthz` });
    const bare: Server = createServer((_req, res) => {
      const body = '{"status":"ok"}';
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
    const bareRes = await cannon({ url: `http://127.0.0.1:${(bare.address() as { port: number }).port}/` });
    await new Promise<void>((r) => bare.close(() => r()));
    console.log(line('POST /forecast (1 stored bar)', forecast));
    console.log(line('GET /healthz (same process)', trivial));
    console.log(line('bare node:http fixed JSON', bareRes));

    // Server time per single-bar forecast, from the service's own histogram.
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const sum = Number(/forecast_http_request_duration_seconds_sum\{method="POST",route="\/forecast",model="[^"]*"\} ([\d.e-]+)/.exec(metrics)?.[1]);
    const count = Number(/forecast_http_request_duration_seconds_count\{method="POST",route="\/forecast",model="[^"]*"\} (\d+)/.exec(metrics)?.[1]);
    console.log(`  server time per single-bar forecast (fastify onResponse, mean of ${count}): ${((sum / count) * 1000).toFixed(3)} ms`);

    // In-process cost of the forecast path alone (no HTTP): catch-up check, merge check, features, model.
    const { forecastBars } = await import('../src/serve/forecast.js');
    const served = app.forecastService.registry.resolve();
    const bar = [{ date: h.date[n - 1], open: h.open[n - 1], high: h.high[n - 1], low: h.low[n - 1], close: h.close[n - 1], volume: h.volume[n - 1] }];
    const iters = 20_000;
    let t = performance.now();
    for (let i = 0; i < iters; i++) await forecastBars(served, app.forecastService.store, bar, false);
    console.log(`  forecast path without HTTP (store version check + features + model): ${(((performance.now() - t) / iters) * 1000).toFixed(1)} µs`);

    // The 963-bar request (the size of the MSFT test set).
    const rows = Math.min(963, n);
    const big = JSON.stringify(seriesToSplitJson(h, { start: n - rows, end: n }));
    const times: number[] = [];
    for (let i = 0; i < 30; i++) {
      t = performance.now();
      const r = await fetch(`${url}/forecast`, { method: 'POST', headers, body: big });
      await r.arrayBuffer();
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    console.log(`  ${rows}-bar request (${(big.length / 1024).toFixed(0)} KiB): median ${times[15].toFixed(2)} ms, min ${times[0].toFixed(2)} ms (client round trip)`);

    // Appending a new bar (durable write: SQLite commit with synchronous=FULL).
    const writes: number[] = [];
    let date = h.date[n - 1];
    for (let i = 0; i < 50; i++) {
      const d = new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000);
      date = d.toISOString().slice(0, 10);
      const body = JSON.stringify({ columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [[date, 100, 101, 99, 100 + i / 100, 1000]] });
      t = performance.now();
      const r = await fetch(`${url}/forecast`, { method: 'POST', headers, body });
      await r.arrayBuffer();
      writes.push(performance.now() - t);
    }
    writes.sort((a, b) => a - b);
    console.log(`  new-bar request (durable write + incremental features): median ${writes[25].toFixed(2)} ms, p90 ${writes[45].toFixed(2)} ms`);
    await app.close();

    // A fresh service process (as `forecast serve` runs it, from source through tsx): time to ready and RSS.
    if (bundle.dir && existsSync(join(bundle.dir, 'manifest.json'))) {
      const t1 = performance.now();
      const child = await spawnServer({ port: 0, host: '127.0.0.1', workers: 1, apiKeys: [KEY], bundleDir: bundle.dir, sqlitePath: join(tmp, 'fresh.sqlite'), logger: false });
      const ready = performance.now() - t1;
      await fetch(`${child.url}/forecast`, { method: 'POST', headers, body: single });
      const status = readFileSync(`/proc/${child.child.pid}/status`, 'utf8');
      const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
      console.log(`  fresh process: spawn to ready ${ready.toFixed(0)} ms (node + tsx start, load + verify bundle, seed SQLite, build engines); RSS ${rss.toFixed(0)} MiB`);
      await child.stop();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
