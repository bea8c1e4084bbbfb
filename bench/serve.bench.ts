/**
 * Serving benchmark, per served model: single-bar POST /forecast throughput and latency (autocannon),
 * server time per forecast from the service's own latency histogram, the forecast path without HTTP,
 * a 963-bar request (the MSFT test set's size), a request adding a new bar (durable write), and a
 * fresh service process's time to ready and RSS. Once: the same process's trivial route and a bare
 * node:http server answering fixed JSON, as the ceiling of the HTTP stack.
 *
 * Models: the reference model (scikit-learn's pickled tree and scaler imported on MSFT.csv, the
 * deployment this project exists for) when ../shared/reference is present, and the demo bundle
 * (`forecast serve` with no bundle named: a causal-feature tree on synthetic bars). Each model is
 * measured in its own process: measured one after the other in one process, the second comes out
 * 20-50 % slower whichever it is (heap and JIT state left by the first).
 *
 * The serving-shell targets (`shellTargets`, the headline): single-bar POST /forecast against a keyed
 * no-op POST route of the same app (same body, same key check and body parsing) and against a bare
 * node:http server, at 1, 8 and 64 connections, on SQLite and on PostgreSQL, each server its own
 * process and autocannon in this one; throughput ratios and server CPU per request (from /proc) are
 * the headline, absolute figures move with the machine's other load. Latency percentiles (p50, p99,
 * p99.9) are exact, from every response time (bench/load.ts: autocannon's own are whole ms). Then the
 * 963-bar request (the MSFT test set's size) against the same server processes.
 *
 * Every figure is also recorded for BENCHMARKS.md (bench/results.ts); the per-model processes
 * record through the results sink.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { loadBundle, type LoadedBundle } from '../src/bundle/index.js';
import { ensureDemoBundle } from '../src/training/demo.js';
import { buildApp } from '../src/serve/app.js';
import { seriesToSplitJson } from '../src/serve/bar-table.js';
import { forecastBars } from '../src/serve/forecast.js';
import { HAVE_REFERENCE, writeReferenceBundle } from '../test/helpers/reference.js';
import { postgresAvailable, PG_URL, uniqueSchema } from '../test/store/pg-helper.js';
import { spawnServer } from '../test/serve/helpers/process.js';
import { cannon as exactCannon, combine, cpuSeconds, median as exactMedian, rssMiB, sequential, type LoadResult } from './load.js';
import { results, type Target } from './results.js';
import { BENCH_KEY as KEY } from './serve-target.js';

export const title = 'serving shell: single-bar forecast against a keyed no-op route and a bare node:http server';

/** Seconds per autocannon run; BENCH_QUICK=1 (a check of the machinery, not figures): 1 s. */
const DURATION_S = process.env.BENCH_QUICK === '1' ? 1 : 5;
const CONNECTIONS = 8;
/** Connection counts of the target runs. */
const TARGET_CONNECTIONS = [1, 8, 64] as const;
/**
 * The shell targets are set for 1 worker at 8 connections (the serving-shell issue), on the SQLite
 * store; PostgreSQL's is its throughput against SQLite's. 1 and 64 connections are measured and
 * shown beside them, without a target.
 */
const TARGET_AT = 8;
const HEADERS = { 'x-api-key': KEY, 'content-type': 'application/json' };
const BIG_ROWS = 963;

async function referenceBundle(dir: string): Promise<LoadedBundle> {
  await writeReferenceBundle(dir);
  return loadBundle(dir);
}

function cannon(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ duration: DURATION_S, connections: CONNECTIONS, ...opts }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

function line(name: string, r: autocannon.Result): string {
  return `  ${name.padEnd(34)} ${Math.round(r.requests.average).toString().padStart(7)} req/s   p50 ${r.latency.p50} ms   p99 ${r.latency.p99} ms   errors ${r.errors + r.non2xx}`;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Every per-model figure; with `baselines`, the HTTP stack's ceiling too (same process, while the app is up). */
async function benchModel(bundle: LoadedBundle, kind: string, tmp: string, baselines: boolean): Promise<void> {
  const t0 = performance.now();
  const app = await buildApp({ bundles: [bundle], apiKeys: [KEY], sqlitePath: join(tmp, `${bundle.manifest.name}.sqlite`), logger: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const readyMs = performance.now() - t0;
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const h = bundle.history;
  const n = h.date.length;
  const single = JSON.stringify(seriesToSplitJson(h, { start: n - 1, end: n }));
  // Warm up (JIT, prepared statements).
  for (let i = 0; i < 200; i++) await (await fetch(`${url}/forecast`, { method: 'POST', headers: HEADERS, body: single })).arrayBuffer();

  console.log(`\n  model ${bundle.id}: ${kind}; ${n} bars of history; SQLite store; logging off; ${CONNECTIONS} connections, ${DURATION_S} s per run`);
  console.log(`  in-process start-up to ready (seed store, build engines, listen; bundle already loaded): ${readyMs.toFixed(0)} ms`);

  const m = choiceOf(bundle);
  const where = `${bundle.id}, ${n} bars, SQLite, client in the server's process, ${CONNECTIONS} connections, ${DURATION_S} s`;
  results.figure({ id: `${m}.inproc.ready`, label: `${bundle.id}: in-process start-up to ready (bundle already loaded)`, value: readyMs, unit: 'ms', notes: 'seed store, build engines, listen' });
  const forecast = await cannon({ url: `${url}/forecast`, method: 'POST', headers: HEADERS, body: single });
  console.log(line('POST /forecast (1 stored bar)', forecast));
  results.figure({ id: `${m}.inproc.forecast.rps`, label: `${bundle.id}: single-bar POST /forecast, in-process client`, value: forecast.requests.average, unit: 'req/s', notes: where });
  if (baselines) {
    const healthz = await cannon({ url: `${url}/healthz` });
    console.log(line('GET /healthz (same process)', healthz));
    const bare: Server = createServer((_req, res) => {
      const body = '{"status":"ok"}';
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
    const bareRun = await cannon({ url: `http://127.0.0.1:${(bare.address() as { port: number }).port}/` });
    console.log(line('bare node:http fixed JSON', bareRun));
    await new Promise<void>((r) => bare.close(() => r()));
    results.figure({ id: `${m}.inproc.healthz.rps`, label: 'GET /healthz, in-process client', value: healthz.requests.average, unit: 'req/s', notes: where });
    results.figure({ id: `${m}.inproc.bare.rps`, label: 'bare node:http fixed JSON, in-process client', value: bareRun.requests.average, unit: 'req/s', notes: where });
  }

  // Server time per single-bar forecast, from the service's own histogram.
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const sum = Number(/forecast_http_request_duration_seconds_sum\{method="POST",route="\/forecast",model="[^"]*"\} ([\d.e-]+)/.exec(metrics)?.[1]);
  const count = Number(/forecast_http_request_duration_seconds_count\{method="POST",route="\/forecast",model="[^"]*"\} (\d+)/.exec(metrics)?.[1]);
  console.log(`  server time per single-bar forecast (fastify's clock, mean of ${count}): ${((sum / count) * 1000).toFixed(3)} ms`);
  results.figure({ id: `${m}.server-time`, label: `${bundle.id}: server time per single-bar forecast (fastify's clock)`, value: (sum / count) * 1000, unit: 'ms', notes: `mean of ${count}` });

  // In-process cost of the forecast path alone (no HTTP): catch-up check, merge check, features, model.
  const served = app.forecastService.registry.resolve();
  const bar = [{ date: h.date[n - 1], open: h.open[n - 1], high: h.high[n - 1], low: h.low[n - 1], close: h.close[n - 1], volume: h.volume[n - 1] }];
  const iters = 20_000;
  let t = performance.now();
  for (let i = 0; i < iters; i++) await forecastBars(() => served, app.forecastService.store, bar, false);
  const pathUs = ((performance.now() - t) / iters) * 1000;
  console.log(`  forecast path without HTTP (store version check + merge check + features + model): ${pathUs.toFixed(1)} µs`);
  results.figure({ id: `${m}.path`, label: `${bundle.id}: forecast path without HTTP (version check, merge check, features, model)`, value: pathUs, unit: 'µs', notes: `mean of ${iters} calls of forecastBars` });

  // The 963-bar request (the size of the MSFT test set).
  const rows = Math.min(963, n);
  const big = JSON.stringify(seriesToSplitJson(h, { start: n - rows, end: n }));
  const times: number[] = [];
  for (let i = 0; i < 30; i++) {
    t = performance.now();
    await (await fetch(`${url}/forecast`, { method: 'POST', headers: HEADERS, body: big })).arrayBuffer();
    times.push(performance.now() - t);
  }
  console.log(`  ${rows}-bar request (${(big.length / 1024).toFixed(0)} KiB): median ${median(times).toFixed(2)} ms, min ${Math.min(...times).toFixed(2)} ms (client round trip)`);
  results.figure({
    id: `${m}.inproc.big`,
    label: `${bundle.id}: ${rows}-bar request, in-process client (median)`,
    value: median(times),
    unit: 'ms',
    notes: `${(big.length / 1024).toFixed(0)} KiB; 30 requests, min ${Math.min(...times).toFixed(2)} ms; the target is judged on the out-of-process figure`,
  });

  // Appending a new bar (durable write: SQLite commit with synchronous=FULL, then incremental features).
  const writes: number[] = [];
  let day = Date.parse(`${h.date[n - 1]}T00:00:00Z`);
  for (let i = 0; i < 50; i++) {
    day += 86_400_000;
    const date = new Date(day).toISOString().slice(0, 10);
    const body = JSON.stringify({ columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [[date, 100, 101, 99, 100 + i / 100, 1000]] });
    t = performance.now();
    await (await fetch(`${url}/forecast`, { method: 'POST', headers: HEADERS, body })).arrayBuffer();
    writes.push(performance.now() - t);
  }
  writes.sort((a, b) => a - b);
  console.log(`  new-bar request (durable write + incremental features): median ${writes[25].toFixed(2)} ms, p90 ${writes[45].toFixed(2)} ms`);
  results.figure({ id: `${m}.new-bar`, label: `${bundle.id}: new-bar request (durable SQLite commit + incremental features), median`, value: writes[25], unit: 'ms', notes: `50 requests, p90 ${writes[45].toFixed(2)} ms` });
  await app.close();

  // A fresh service process (as `forecast serve` runs it, from source through tsx): time to ready and RSS.
  const t1 = performance.now();
  const child = await spawnServer({ port: 0, host: '127.0.0.1', workers: 1, apiKeys: [KEY], bundleDir: bundle.dir, sqlitePath: join(tmp, `fresh-${bundle.manifest.name}.sqlite`), logger: false });
  const ready = performance.now() - t1;
  await (await fetch(`${child.url}/forecast`, { method: 'POST', headers: HEADERS, body: single })).arrayBuffer();
  const rss = rssMiB(child.child.pid!).rss;
  console.log(`  fresh process: spawn to ready ${ready.toFixed(0)} ms (node + tsx start, load + verify bundle, seed SQLite, build engines); RSS ${rss.toFixed(0)} MiB`);
  await child.stop();
  results.figure({ id: `${m}.fresh.ready`, label: `${bundle.id}: fresh process, spawn to ready`, value: ready, unit: 'ms', notes: 'node + tsx, load + verify bundle, seed SQLite, build engines (test/serve/helpers/server-main.ts)' });
  results.figure({ id: `${m}.fresh.rss`, label: `${bundle.id}: fresh process RSS after one forecast`, value: rss, unit: 'MiB' });
}

type Measured = LoadResult & { cpuUsPerRequest: number };

/** An exact-latency autocannon run against a target process, with the target's CPU time per answered request. */
async function measured(pid: number, connections: number, opts: autocannon.Options): Promise<Measured> {
  const before = cpuSeconds(pid);
  const r = await exactCannon({ ...opts, duration: opts.duration ?? DURATION_S, connections });
  const cpu = cpuSeconds(pid) - before;
  return Object.assign(r, { cpuUsPerRequest: (cpu / Math.max(1, r.total)) * 1e6 });
}

function combined(a: Measured, b: Measured): Measured {
  return Object.assign(combine(a, b), { cpuUsPerRequest: (a.cpuUsPerRequest * a.total + b.cpuUsPerRequest * b.total) / Math.max(1, a.total + b.total) });
}

function cpuLine(name: string, r: Measured): string {
  const ms = (x: number) => x.toFixed(2);
  return (
    `  ${name.padEnd(36)} ${Math.round(r.rps).toString().padStart(7)} req/s   p50 ${ms(r.p50)}  p99 ${ms(r.p99)}  p99.9 ${ms(r.p999)} ms` +
    `   errors ${r.errors + r.non2xx}   server CPU ${r.cpuUsPerRequest.toFixed(0)} µs/request`
  );
}

/** A bench/serve-target.ts process, listening. */
async function spawnTarget(args: string[]): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./serve-target.ts', import.meta.url)), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`target ${args[0]} exited (${code}) before ready`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** The id part of a store name. */
const storeId = (name: string) => name.toLowerCase().replace('postgresql', 'pg');

/**
 * The serving-shell targets: single-bar POST /forecast against a keyed no-op POST route of the same
 * app with the same body, and against a bare node:http server; on SQLite and on PostgreSQL; at 1, 8
 * and 64 connections. Each server is its own process (1 worker), measured from this one, one after
 * the other. Then the 963-bar request against each app process.
 */
async function shellTargets(bundleDir: string, history: LoadedBundle['history'], label: string, tmp: string): Promise<void> {
  const n = history.date.length;
  const single = JSON.stringify(seriesToSplitJson(history, { start: n - 1, end: n }));
  const bigRows = Math.min(BIG_ROWS, n);
  const big = JSON.stringify(seriesToSplitJson(history, { start: n - bigRows, end: n }));
  const stores: [string, string][] = [['SQLite', `sqlite:${join(tmp, 'targets.sqlite')}`]];
  const schema = uniqueSchema('bench');
  if (await postgresAvailable()) stores.push(['PostgreSQL', `postgres:${PG_URL}|${schema}`]);
  else results.note('PostgreSQL at 127.0.0.1:5432 unreachable: the PostgreSQL figures are not measured');
  const setting = `model ${label}; one server process (1 worker, logging off), autocannon in the bench process; ${DURATION_S} s per route and connection count (no-op and forecast as A B B A halves)`;
  console.log(`\n  targets (${setting}; ${TARGET_CONNECTIONS.join(', ')} connections)`);
  const warm = (url: string, connections: number) => exactCannon({ url, method: 'POST', headers: HEADERS, body: single, duration: 1, connections });
  const rows: (string | number)[][] = [];
  const row = (server: string, route: string, r: Measured, ratios: { noop?: number; bare?: number } = {}) =>
    rows.push([server, route, r.connections, Math.round(r.rps), r.p50, r.p99, r.p999, r.cpuUsPerRequest, ratios.noop ?? '', ratios.bare ?? '']);

  const bare = await spawnTarget(['bare']);
  const bareRuns = new Map<number, Measured>();
  // The framework's own floor: a plain fastify app (no hooks, no logger) answering fixed JSON.
  const fastifyRuns = new Map<number, Measured>();
  try {
    for (const c of TARGET_CONNECTIONS) {
      await warm(`${bare.url}/`, c);
      const r = await measured(bare.pid, c, { url: `${bare.url}/`, method: 'POST', headers: HEADERS, body: single });
      bareRuns.set(c, r);
      console.log(cpuLine(`bare node:http fixed JSON, ${c} conn`, r));
      row('bare node:http', 'POST / (fixed JSON)', r);
    }
  } finally {
    await bare.stop();
  }
  const plain = await spawnTarget(['fastify']);
  try {
    for (const c of TARGET_CONNECTIONS) {
      await warm(`${plain.url}/`, c);
      const r = await measured(plain.pid, c, { url: `${plain.url}/`, method: 'POST', headers: HEADERS, body: single });
      fastifyRuns.set(c, r);
      console.log(cpuLine(`plain fastify fixed JSON, ${c} conn`, r));
      row('plain fastify', 'POST / (fixed JSON)', r, { bare: r.rps / bareRuns.get(c)!.rps });
    }
  } finally {
    await plain.stop();
  }
  for (const c of TARGET_CONNECTIONS) {
    const r = bareRuns.get(c)!;
    const f = fastifyRuns.get(c)!;
    const conn = `${c} connection${c > 1 ? 's' : ''}`;
    results.figure({ id: `bare.c${c}.rps`, label: `bare node:http fixed JSON, ${conn}: throughput`, value: r.rps, unit: 'req/s', notes: `p50 ${r.p50.toFixed(2)} / p99 ${r.p99.toFixed(2)} / p99.9 ${r.p999.toFixed(2)} ms; server CPU ${r.cpuUsPerRequest.toFixed(0)} µs/request` });
    results.figure({ id: `fastify.c${c}.ratio.bare`, label: `plain fastify (no hooks, no logger) fixed JSON / bare node:http, ${conn}: throughput`, value: f.rps / r.rps, unit: '×', notes: `${Math.round(f.rps)} vs ${Math.round(r.rps)} req/s; server CPU ${f.cpuUsPerRequest.toFixed(0)} vs ${r.cpuUsPerRequest.toFixed(0)} µs/request: the framework's own share of the bare-server target` });
  }

  const forecasts: Record<string, Map<number, Measured>> = {};
  for (const [name, store] of stores) {
    const sid = storeId(name);
    const target = await spawnTarget(['app', bundleDir, store]);
    const runs = new Map<number, { noop: Measured; forecast: Measured }>();
    let bigTimes: number[] = [];
    try {
      for (const c of TARGET_CONNECTIONS) {
        await warm(`${target.url}/forecast`, c);
        await warm(`${target.url}/bench/noop`, c);
        // A B B A, half the duration each: a drift of the machine's other load over the four runs cancels out of the ratio.
        const half = { method: 'POST', headers: HEADERS, body: single, duration: DURATION_S / 2 } as const;
        const noop1 = await measured(target.pid, c, { url: `${target.url}/bench/noop`, ...half });
        const forecast1 = await measured(target.pid, c, { url: `${target.url}/forecast`, ...half });
        const forecast2 = await measured(target.pid, c, { url: `${target.url}/forecast`, ...half });
        const noop2 = await measured(target.pid, c, { url: `${target.url}/bench/noop`, ...half });
        const noop = combined(noop1, noop2);
        const forecast = combined(forecast1, forecast2);
        runs.set(c, { noop, forecast });
        const b = bareRuns.get(c)!;
        console.log(cpuLine(`${name}: keyed no-op POST, ${c} conn`, noop));
        console.log(cpuLine(`${name}: POST /forecast (1 bar), ${c} conn`, forecast));
        console.log(
          `    ratios (throughput): forecast / keyed no-op ${(forecast.rps / noop.rps).toFixed(2)} (target >= 0.85); forecast / bare node:http ${(forecast.rps / b.rps).toFixed(2)} (target >= 0.6)` +
            `; server CPU per request, inverted: forecast / no-op ${(noop.cpuUsPerRequest / forecast.cpuUsPerRequest).toFixed(2)}, forecast / bare ${(b.cpuUsPerRequest / forecast.cpuUsPerRequest).toFixed(2)}`,
        );
        row(`app, ${name}`, 'keyed no-op POST', noop);
        row(`app, ${name}`, 'POST /forecast (1 stored bar)', forecast, { noop: forecast.rps / noop.rps, bare: forecast.rps / b.rps });
      }
      // The 963-bar request, one at a time against the same process.
      await sequential(target.url, 5, { path: () => '/forecast', body: () => big, headers: HEADERS });
      bigTimes = Array.from((await sequential(target.url, 30, { path: () => '/forecast', body: () => big, headers: HEADERS })).times);
      console.log(`  ${name}: ${bigRows}-bar request (${(big.length / 1024).toFixed(0)} KiB), one at a time: median ${exactMedian(bigTimes).toFixed(2)} ms, min ${bigTimes[0].toFixed(2)} ms`);
    } finally {
      await target.stop();
    }
    forecasts[name] = new Map([...runs].map(([c, r]) => [c, r.forecast]));

    for (const c of TARGET_CONNECTIONS) {
      const { noop, forecast } = runs.get(c)!;
      const b = bareRuns.get(c)!;
      const conn = `${c} connection${c > 1 ? 's' : ''}`;
      const pct = `p50 ${forecast.p50.toFixed(2)} / p99 ${forecast.p99.toFixed(2)} / p99.9 ${forecast.p999.toFixed(2)} ms`;
      const targeted = c === TARGET_AT && name === 'SQLite';
      const untargeted = { notes: `no target here: the shell targets are set on SQLite at ${TARGET_AT} connections` };
      results.figure({ id: `${sid}.c${c}.ratio.noop`, label: `${name}, ${conn}: single-bar forecast / keyed no-op route, throughput`, value: forecast.rps / noop.rps, unit: '×', ...(targeted ? { target: { op: '>=', value: 0.85, unit: '×' } } : {}), notes: `${Math.round(forecast.rps)} vs ${Math.round(noop.rps)} req/s${targeted ? '' : `; ${untargeted.notes}`}` });
      results.figure({ id: `${sid}.c${c}.ratio.bare`, label: `${name}, ${conn}: single-bar forecast / bare node:http, throughput`, value: forecast.rps / b.rps, unit: '×', ...(targeted ? { target: { op: '>=', value: 0.6, unit: '×' } } : {}), notes: `${Math.round(forecast.rps)} vs ${Math.round(b.rps)} req/s; plain fastify reaches ${(fastifyRuns.get(c)!.rps / b.rps).toFixed(2)}${targeted ? '' : `; ${untargeted.notes}`}` });
      results.figure({ id: `${sid}.c${c}.cpu-ratio.noop`, label: `${name}, ${conn}: server CPU per request, keyed no-op / forecast`, value: noop.cpuUsPerRequest / forecast.cpuUsPerRequest, unit: '×', notes: `${noop.cpuUsPerRequest.toFixed(0)} vs ${forecast.cpuUsPerRequest.toFixed(0)} µs/request (1 = the forecast costs nothing over the shell)` });
      results.figure({ id: `${sid}.c${c}.cpu-ratio.bare`, label: `${name}, ${conn}: server CPU per request, bare / forecast`, value: b.cpuUsPerRequest / forecast.cpuUsPerRequest, unit: '×', notes: `${b.cpuUsPerRequest.toFixed(0)} vs ${forecast.cpuUsPerRequest.toFixed(0)} µs/request` });
      results.figure({ id: `${sid}.c${c}.rps`, label: `${name}, ${conn}: single-bar forecast throughput`, value: forecast.rps, unit: 'req/s', notes: `${pct}; errors ${forecast.errors + forecast.non2xx}` });
      const p99Target: Target | undefined = targeted ? { op: '<', value: 2, unit: 'ms' } : undefined;
      results.figure({ id: `${sid}.c${c}.p50`, label: `${name}, ${conn}: single-bar forecast p50`, value: forecast.p50, unit: 'ms' });
      results.figure({ id: `${sid}.c${c}.p99`, label: `${name}, ${conn}: single-bar forecast p99`, value: forecast.p99, unit: 'ms', ...(p99Target ? { target: p99Target } : untargeted) });
      results.figure({ id: `${sid}.c${c}.p999`, label: `${name}, ${conn}: single-bar forecast p99.9`, value: forecast.p999, unit: 'ms' });
    }
    results.figure({
      id: `${sid}.big`,
      label: `${name}: ${bigRows}-bar request, round trip (median)`,
      value: exactMedian(bigTimes),
      unit: 'ms',
      target: { op: '<', value: 3, unit: 'ms' },
      notes: `model ${label}; ${(big.length / 1024).toFixed(0)} KiB body, stored bars; 30 requests one at a time after 5 warm-up, min ${bigTimes[0].toFixed(2)} ms, max ${bigTimes.at(-1)!.toFixed(2)} ms`,
    });
  }
  if (forecasts.PostgreSQL) {
    for (const c of TARGET_CONNECTIONS) {
      const ratio = forecasts.PostgreSQL.get(c)!.rps / forecasts.SQLite.get(c)!.rps;
      console.log(`    PostgreSQL / SQLite single-bar throughput, ${c} conn: ${ratio.toFixed(2)} (target >= 0.5)`);
      results.figure({ id: `pg-vs-sqlite.c${c}`, label: `PostgreSQL / SQLite single-bar throughput, ${c} connection${c > 1 ? 's' : ''}`, value: ratio, unit: '×', ...(c === TARGET_AT ? { target: { op: '>=', value: 0.5, unit: '×' } } : { notes: `no target here: set at ${TARGET_AT} connections` }) });
    }
    await dropSchema(schema);
  }
  results.table({
    id: 'targets',
    title: `Single-bar forecast against the keyed no-op route and a bare node:http server (${setting})`,
    columns: ['server', 'route', 'connections', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'server CPU µs/request', 'forecast / no-op', 'forecast / bare'],
    rows,
    notes: 'Latency percentiles are exact (every response time); throughput ratios and CPU per request are comparable within this run only.',
  });
}

/** Drops the bench's PostgreSQL schema (loopback test database). */
async function dropSchema(schema: string): Promise<void> {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } catch {
    // left behind: harmless in the test database
  } finally {
    await c.end().catch(() => undefined);
  }
}

type ModelChoice = 'reference' | 'demo';
const MODEL_FLAG = '--serve-bench-model';
const choiceOf = (b: LoadedBundle): ModelChoice => (b.manifest.name === 'demo' ? 'demo' : 'reference');

async function benchInThisProcess(choice: ModelChoice): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'serve-bench-'));
  try {
    if (choice === 'reference') {
      const bundle = await referenceBundle(join(tmp, 'msft'));
      await benchModel(bundle, 'scikit-learn tree + scaler imported (reference features, CSV round trip, 171-column expansion)', tmp, true);
    } else {
      await benchModel(await ensureDemoBundle(join(tmp, 'demo')), 'the demo bundle (causal-feature tree on synthetic bars)', tmp, !HAVE_REFERENCE);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** `npm run bench serve`: each model in a fresh process (this file, run with MODEL_FLAG). */
export default async function run(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'serve-targets-'));
  try {
    if (HAVE_REFERENCE) {
      const bundle = await referenceBundle(join(tmp, 'msft'));
      await shellTargets(bundle.dir, bundle.history, bundle.id, tmp);
    } else {
      const bundle = await ensureDemoBundle(join(tmp, 'demo'));
      await shellTargets(bundle.dir, bundle.history, bundle.id, tmp);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  // SERVE_BENCH_TARGETS_ONLY=1: the shell targets alone (a quick A/B of a change to the serving path).
  if (process.env.SERVE_BENCH_TARGETS_ONLY === '1') {
    results.note('SERVE_BENCH_TARGETS_ONLY=1: the per-model figures were not measured in this run');
    return;
  }
  const choices: ModelChoice[] = HAVE_REFERENCE ? ['reference', 'demo'] : ['demo'];
  if (!HAVE_REFERENCE) console.log('  ../shared/reference is absent: the reference model is not benchmarked');
  for (const choice of choices) {
    const sink = results.sinkEnv();
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), MODEL_FLAG, choice], { stdio: 'inherit', env: { ...process.env, NODE_OPTIONS: '', ...sink.env } });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    sink.absorb();
    if (code !== 0) throw new Error(`the ${choice} model's benchmark process exited with ${code}`);
  }
}

if (process.argv[2] === MODEL_FLAG) {
  benchInThisProcess(process.argv[3] as ModelChoice).catch((err: Error) => {
    console.error(err.stack ?? err);
    process.exit(1);
  });
}
