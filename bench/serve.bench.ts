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
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
import { BENCH_KEY as KEY } from './serve-target.js';

const DURATION_S = 5;
const CONNECTIONS = 8;
const HEADERS = { 'x-api-key': KEY, 'content-type': 'application/json' };

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

  const forecast = await cannon({ url: `${url}/forecast`, method: 'POST', headers: HEADERS, body: single });
  console.log(line('POST /forecast (1 stored bar)', forecast));
  if (baselines) {
    console.log(line('GET /healthz (same process)', await cannon({ url: `${url}/healthz` })));
    const bare: Server = createServer((_req, res) => {
      const body = '{"status":"ok"}';
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
    console.log(line('bare node:http fixed JSON', await cannon({ url: `http://127.0.0.1:${(bare.address() as { port: number }).port}/` })));
    await new Promise<void>((r) => bare.close(() => r()));
  }

  // Server time per single-bar forecast, from the service's own histogram.
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const sum = Number(/forecast_http_request_duration_seconds_sum\{method="POST",route="\/forecast",model="[^"]*"\} ([\d.e-]+)/.exec(metrics)?.[1]);
  const count = Number(/forecast_http_request_duration_seconds_count\{method="POST",route="\/forecast",model="[^"]*"\} (\d+)/.exec(metrics)?.[1]);
  console.log(`  server time per single-bar forecast (fastify's clock, mean of ${count}): ${((sum / count) * 1000).toFixed(3)} ms`);

  // In-process cost of the forecast path alone (no HTTP): catch-up check, merge check, features, model.
  const served = app.forecastService.registry.resolve();
  const bar = [{ date: h.date[n - 1], open: h.open[n - 1], high: h.high[n - 1], low: h.low[n - 1], close: h.close[n - 1], volume: h.volume[n - 1] }];
  const iters = 20_000;
  let t = performance.now();
  for (let i = 0; i < iters; i++) await forecastBars(served, app.forecastService.store, bar, false);
  console.log(`  forecast path without HTTP (store version check + merge check + features + model): ${(((performance.now() - t) / iters) * 1000).toFixed(1)} µs`);

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
  await app.close();

  // A fresh service process (as `forecast serve` runs it, from source through tsx): time to ready and RSS.
  const t1 = performance.now();
  const child = await spawnServer({ port: 0, host: '127.0.0.1', workers: 1, apiKeys: [KEY], bundleDir: bundle.dir, sqlitePath: join(tmp, `fresh-${bundle.manifest.name}.sqlite`), logger: false });
  const ready = performance.now() - t1;
  await (await fetch(`${child.url}/forecast`, { method: 'POST', headers: HEADERS, body: single })).arrayBuffer();
  const status = readFileSync(`/proc/${child.child.pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
  console.log(`  fresh process: spawn to ready ${ready.toFixed(0)} ms (node + tsx start, load + verify bundle, seed SQLite, build engines); RSS ${rss.toFixed(0)} MiB`);
  await child.stop();
}

/** CPU seconds (user + system) a process has used so far, from /proc (robust to other load on a shared machine). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of stat (11 and 12 after the command name), in clock ticks (100 Hz on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** An autocannon run against a target, with the target's CPU time per answered request. */
async function measured(pid: number, opts: autocannon.Options): Promise<autocannon.Result & { cpuUsPerRequest: number }> {
  const before = cpuSeconds(pid);
  const r = await cannon(opts);
  const cpu = cpuSeconds(pid) - before;
  return Object.assign(r, { cpuUsPerRequest: (cpu / Math.max(1, r.requests.total)) * 1e6 });
}

function cpuLine(name: string, r: autocannon.Result & { cpuUsPerRequest: number }): string {
  return `${line(name, r)}   server CPU ${r.cpuUsPerRequest.toFixed(0)} µs/request`;
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

/**
 * The serving-shell targets: single-bar POST /forecast against a keyed no-op POST route of the same
 * app with the same body, and against a bare node:http server; on SQLite and on PostgreSQL. Each
 * server is its own process (1 worker), measured from this one, one after the other.
 */
async function shellTargets(bundleDir: string, history: LoadedBundle['history'], label: string, tmp: string): Promise<void> {
  const n = history.date.length;
  const single = JSON.stringify(seriesToSplitJson(history, { start: n - 1, end: n }));
  const stores: [string, string][] = [['SQLite', `sqlite:${join(tmp, 'targets.sqlite')}`]];
  if (await postgresAvailable()) stores.push(['PostgreSQL', `postgres:${PG_URL}|${uniqueSchema('bench')}`]);
  console.log(`\n  targets (model ${label}; one server process, ${CONNECTIONS} connections, ${DURATION_S} s per run, autocannon in another process)`);
  const bare = await spawnTarget(['bare']);
  const warm = (url: string) => cannon({ url, method: 'POST', headers: HEADERS, body: single, duration: 1 });
  await warm(`${bare.url}/`);
  const bareRun = await measured(bare.pid, { url: `${bare.url}/`, method: 'POST', headers: HEADERS, body: single });
  await bare.stop();
  console.log(cpuLine('bare node:http fixed JSON', bareRun));
  const results: Record<string, autocannon.Result> = {};
  for (const [name, store] of stores) {
    const target = await spawnTarget(['app', bundleDir, store]);
    await warm(`${target.url}/forecast`);
    await warm(`${target.url}/bench/noop`);
    const noop = await measured(target.pid, { url: `${target.url}/bench/noop`, method: 'POST', headers: HEADERS, body: single });
    const forecast = await measured(target.pid, { url: `${target.url}/forecast`, method: 'POST', headers: HEADERS, body: single });
    await target.stop();
    results[name] = forecast;
    const ratio = (a: autocannon.Result, b: autocannon.Result) => (a.requests.average / b.requests.average).toFixed(2);
    const cpuRatio = (a: { cpuUsPerRequest: number }, b: { cpuUsPerRequest: number }) => (b.cpuUsPerRequest / a.cpuUsPerRequest).toFixed(2);
    console.log(cpuLine(`${name}: keyed no-op POST`, noop));
    console.log(cpuLine(`${name}: POST /forecast (1 stored bar)`, forecast));
    console.log(
      `    ratios (throughput): forecast / keyed no-op ${ratio(forecast, noop)} (target >= 0.85); forecast / bare node:http ${ratio(forecast, bareRun)} (target >= 0.6); ` +
        `p99 ${forecast.latency.p99} ms (target < 2 ms)`,
    );
    console.log(`    ratios (server CPU per request, inverted): forecast / keyed no-op ${cpuRatio(forecast, noop)}; forecast / bare node:http ${cpuRatio(forecast, bareRun)}`);
  }
  if (results.PostgreSQL)
    console.log(`    PostgreSQL / SQLite single-bar throughput: ${(results.PostgreSQL.requests.average / results.SQLite.requests.average).toFixed(2)} (target >= 0.5)`);
}

type ModelChoice = 'reference' | 'demo';
const MODEL_FLAG = '--serve-bench-model';

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
  if (process.env.SERVE_BENCH_TARGETS_ONLY === '1') return;
  const choices: ModelChoice[] = HAVE_REFERENCE ? ['reference', 'demo'] : ['demo'];
  if (!HAVE_REFERENCE) console.log('  ../shared/reference is absent: the reference model is not benchmarked');
  for (const choice of choices) {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), MODEL_FLAG, choice], { stdio: 'inherit', env: { ...process.env, NODE_OPTIONS: '' } });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    if (code !== 0) throw new Error(`the ${choice} model's benchmark process exited with ${code}`);
  }
}

if (process.argv[2] === MODEL_FLAG) {
  benchInThisProcess(process.argv[3] as ModelChoice).catch((err: Error) => {
    console.error(err.stack ?? err);
    process.exit(1);
  });
}
