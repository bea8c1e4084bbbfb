/**
 * How cost grows with work: start-up, single-bar latency and RSS of `forecast serve` against the
 * length of the served history (1k, 10k, 100k, 1,000,000 synthetic bars) and against the number of
 * models served by one process (1, 10, 100); the cold start to first answer of a 10k-bar model; RSS
 * per worker after load with one model. A table and a PNG chart (bench/charts/scale.png) go into
 * BENCHMARKS.md. The seed system recomputed every indicator over the whole history per request
 * (1.2-1.4 s per single-bar request, measured beside this project); here every per-request figure
 * must stay flat as the history grows, and start-up must grow linearly.
 *
 * The bundles. One causal-feature tree (the modern recipe) is trained once on the first 1,000 bars
 * of a seeded synthetic history of 1,000,000 bars (training on 1M bars would take minutes and is not
 * what is measured), and each history-length bundle is that model with `history.csv` = the first N
 * bars of the same prices (the generator is sequential, so every shorter history is a prefix of the
 * longer ones), dated on consecutive calendar days ending on END_DATE (why: see END_DATE), the
 * evaluation dates re-dated by position. This is a real bundle, as `writeBundle` makes it and
 * `loadBundle` verifies it: the checksums cover the long history.csv, and the load-time self-check
 * recomputes the batch features over the whole N-bar history and finds the model's evaluation
 * forecasts (rows inside the first 1,000 bars) bit for bit, since causal features at a bar depend
 * only on the bars before it, not on dates. The manifest's `source` describes the long history. So a start-up costs what a real N-bar deployment
 * costs on a first start: read and hash history.csv, parse it, self-check (one batch pass), seed the
 * store with N rows, read them back, build the feature state. The other choice, a small bundle served
 * over a store pre-seeded with N bars, would leave the bundle's share out of the first start; the
 * restart figure (same store file, already seeded) is measured too and shows the store's share.
 * The models sweep serves 1, 10 or 100 bundles of the same model with the first 3,000 bars (the demo
 * bundle's size) under names m000..m099, each its own model (its own history in the store, mirror,
 * feature state and pipeline objects).
 *
 * Bundles are cached in the system's temporary folder under a key of their parameters and of every
 * file under src/ (a change to the code rebuilds them); generating and writing the 1M-bar bundle
 * takes ~20 s. BENCH_QUICK=1 checks the machinery only: 1k and 10k bars, 1 and 10 models, 1 s runs.
 *
 * Each service is `forecast serve` in a new process (bench/build.ts: `node dist/cli/index.js` when
 * dist/ exists, else tsx; the figures say which), SQLite store in a fresh file, one worker, request
 * logs off (LOG_LEVEL=warn). Start-up: spawn to the first forecast answered. Single-bar latency: a
 * stored bar (the newest) posted again, 2,000 requests one at a time on one keep-alive connection
 * after 300 warm-up ones (median and p99), then autocannon at 8 connections (exact percentiles,
 * bench/load.ts); then 100 new-bar requests (each a new newest bar: durable write and incremental
 * features); RSS (VmRSS) after all that, and its peak (VmHWM).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { sha256, writeBundle } from '../src/bundle/index.js';
import type { BundleManifest } from '../src/bundle/types.js';
import type { BarSeries } from '../src/data/bars.js';
import { formatIsoDay, parseIsoDay } from '../src/data/dates.js';
import { generateSyntheticBars, sliceSeries, writeBarsCsv } from '../src/data/index.js';
import { manifestHeader, train } from '../src/training/train.js';
import { renderSvg, svgToPng, CHART_FONT_FAMILIES } from '../src/report/charts.js';
import { ROOT, scratchBuild, servedCli, type CliRunner } from './build.js';
import { cannon, median, rssMiB, sequential } from './load.js';
import { results } from './results.js';
import { childProcesses, JSON_HEADERS, startService, type ServiceProcess } from './service.js';

export const title = 'how cost grows with work (history length, models served), cold start, RSS';

const QUICK = process.env.BENCH_QUICK === '1';
export const HISTORY_SIZES = QUICK ? [1_000, 10_000] : [1_000, 10_000, 100_000, 1_000_000];
export const MODEL_COUNTS = QUICK ? [1, 10] : [1, 10, 100];
const TRAIN_BARS = 1_000;
const MODEL_BARS = 3_000;
const COLD_BARS = 10_000;
const SEED = 20240601;
/**
 * Every history ends on this date, one bar per calendar day (a market that trades every day, as
 * crypto does): 1,000,000 daily bars span 2,738 years, and the service accepts request dates from
 * 1800 to 2999 only (bundle CSVs and the store take any four-digit year), so the newest bar, the one
 * posted again and those appended after it, must lie near the end of that range. Only the dates'
 * count and order matter to the service (no feature reads a date).
 */
const END_DATE = '2990-01-01';
const SEQ_WARMUP = 300;
const SEQ_COUNT = QUICK ? 500 : 2_000;
const NEW_BARS = 100;
const CANNON_S = QUICK ? 1 : 5;
const CANNON_CONNECTIONS = 8;
const COLD_RUNS = 3;
export const CHART_BASE = 'bench/charts/scale';

// ------------------------------------------------------------------------------------------
// Bundles

function sourceKey(): string {
  const h = createHash('sha256');
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) h.update(relative(ROOT, p)).update(readFileSync(p));
    }
  };
  walk(join(ROOT, 'src'));
  h.update(JSON.stringify({ TRAIN_BARS, MODEL_BARS, SEED, END_DATE, sizes: [1_000, 10_000, 100_000, 1_000_000], counts: 100, quick: QUICK, format: 2 }));
  return h.digest('hex').slice(0, 16);
}

export interface ScaleBundles {
  dir: string;
  /** Bundle folder per history length. */
  history: Map<number, string>;
  /** Models folder per model count (name/version/ layout). */
  models: Map<number, string>;
  /** The newest bar of every bundle's history (a stored bar), as a one-bar request body, per history length. */
  singleBody: (bars: number) => string;
  /** Bodies adding new newest bars after `bars` bars: the k-th new bar. */
  newBarBody: (bars: number, k: number) => string;
  built: boolean;
  buildS: number;
}

/** The first `n` bars of `s`, dated on consecutive calendar days ending on END_DATE. */
function dated(s: BarSeries, n: number): BarSeries {
  const out = sliceSeries(s, 0, n);
  const end = parseIsoDay(END_DATE);
  out.date = Array.from({ length: n }, (_, i) => formatIsoDay(end - (n - 1 - i)));
  return out;
}

/** The sweep's bundles, built (or found in the cache) once. */
export async function scaleBundles(): Promise<ScaleBundles> {
  const t0 = performance.now();
  const dir = join(tmpdir(), 'forecast-bench-scale', sourceKey());
  const maxBars = Math.max(...HISTORY_SIZES, MODEL_BARS, COLD_BARS);
  // The prices of the longest history; each bundle takes its first N bars (the generator is sequential).
  const prices = generateSyntheticBars({ seed: SEED, bars: maxBars });
  const history = new Map<number, string>();
  const models = new Map<number, string>();
  const sizes = [...new Set([...HISTORY_SIZES, COLD_BARS])].sort((a, b) => a - b);
  for (const n of sizes) history.set(n, join(dir, `history-${n}`));
  for (const c of MODEL_COUNTS) models.set(c, join(dir, `models-${c}`));
  const done = join(dir, 'complete.json');
  const need = [...history.values(), ...models.values()];
  let built = false;
  if (!existsSync(done) || !need.every((d) => existsSync(d))) {
    built = true;
    // Bundles of other code versions are stale: one cache at a time (the 1M-bar bundle is ~100 MiB).
    const cacheRoot = join(dir, '..');
    if (existsSync(cacheRoot)) for (const old of readdirSync(cacheRoot)) rmSync(join(cacheRoot, old), { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    console.log(`  building the sweep's bundles in ${dir} (cached for later runs)`);
    const trainSeries = dated(prices, TRAIN_BARS);
    const { manifest } = train({
      series: trainSeries,
      source: { file: `synthetic(seed=${SEED}, bars=${TRAIN_BARS})`, sha256: sha256(writeBarsCsv(trainSeries)) },
      featureSet: 'causal',
      model: 'tree',
      name: 'scale',
      version: '1',
    });
    // The evaluation rows by position: each bundle dates the same bars differently.
    const position = new Map(trainSeries.date.map((d, i) => [d, i]));
    const evalRows = manifest.evaluation.dates.map((d) => position.get(d)!);
    const bundleOf = (name: string, s: BarSeries): BundleManifest => {
      const csv = writeBarsCsv(s);
      const { source } = manifestHeader({ name, version: '1', origin: 'train', series: s, source: { file: `synthetic(seed=${SEED}, bars=${s.date.length})`, sha256: sha256(csv) } });
      return { ...manifest, name, source, evaluation: { ...manifest.evaluation, dates: evalRows.map((i) => s.date[i]) } };
    };
    for (const n of sizes) {
      const s = dated(prices, n);
      await writeBundle(history.get(n)!, bundleOf('scale', s), s);
    }
    const small = dated(prices, MODEL_BARS);
    const smallManifest = bundleOf('m000', small);
    for (const c of MODEL_COUNTS) {
      for (let i = 0; i < c; i++) {
        const name = `m${String(i).padStart(3, '0')}`;
        await writeBundle(join(models.get(c)!, name, '1'), { ...smallManifest, name }, small);
      }
    }
    writeFileSync(done, JSON.stringify({ createdAt: new Date().toISOString(), sizes, counts: MODEL_COUNTS }) + '\n');
  }
  const lastBar = (n: number) => n - 1;
  return {
    dir,
    history,
    models,
    singleBody: (n) => JSON.stringify({ columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [[END_DATE, prices.open[lastBar(n)], prices.high[lastBar(n)], prices.low[lastBar(n)], prices.close[lastBar(n)], prices.volume[lastBar(n)]]] }),
    newBarBody: (n, k) => {
      const i = lastBar(n);
      return JSON.stringify({
        columns: ['date', 'open', 'high', 'low', 'close', 'volume'],
        data: [[formatIsoDay(parseIsoDay(END_DATE) + k), prices.open[i], prices.high[i] * 1.001, prices.low[i], prices.close[i] * (1 + ((k % 7) - 3) / 1000), prices.volume[i]]],
      });
    },
    built,
    buildS: (performance.now() - t0) / 1000,
  };
}

// ------------------------------------------------------------------------------------------
// Measurements

export interface ServiceFigures {
  firstStartS: number;
  listeningS: number;
  restartS?: number;
  seqMedianMs: number;
  seqP99Ms: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  newBarMedianMs?: number;
  newBarP99Ms?: number;
  rssMiB: number;
  peakMiB: number;
}

/** Latency and RSS of a running service: sequential stored-bar requests, autocannon, new bars. */
async function underLoad(svc: ServiceProcess, paths: string[], body: string, newBars?: (k: number) => string): Promise<Omit<ServiceFigures, 'firstStartS' | 'listeningS'>> {
  const path = (i: number) => paths[i % paths.length];
  await sequential(svc.url, SEQ_WARMUP, { path, body: () => body, headers: JSON_HEADERS });
  const seq = await sequential(svc.url, SEQ_COUNT, { path, body: () => body, headers: JSON_HEADERS });
  if ((seq.statuses[200] ?? 0) !== SEQ_COUNT) throw new Error(`single-bar requests not all 200: ${JSON.stringify(seq.statuses)}`);
  const load = await cannon({
    url: svc.url,
    connections: CANNON_CONNECTIONS,
    duration: CANNON_S,
    requests: paths.map((p) => ({ method: 'POST' as const, path: p, headers: JSON_HEADERS, body })),
  });
  if (load.errors + load.non2xx > 0) throw new Error(`autocannon: ${load.errors} errors, ${load.non2xx} non-2xx answers`);
  let newBar: { median: number; p99: number } | undefined;
  if (newBars) {
    const r = await sequential(svc.url, NEW_BARS, { path: () => paths[0], body: (k) => newBars(k + 1), headers: JSON_HEADERS });
    if ((r.statuses[200] ?? 0) !== NEW_BARS) throw new Error(`new-bar requests not all 200: ${JSON.stringify(r.statuses)}`);
    newBar = { median: r.median, p99: r.p99 };
  }
  const mem = rssMiB(svc.pid);
  return {
    seqMedianMs: seq.median,
    seqP99Ms: seq.p99,
    rps: load.rps,
    p50Ms: load.p50,
    p99Ms: load.p99,
    p999Ms: load.p999,
    ...(newBar ? { newBarMedianMs: newBar.median, newBarP99Ms: newBar.p99 } : {}),
    rssMiB: mem.rss,
    peakMiB: mem.peak,
  };
}

function freshDb(dir: string, name: string): string {
  const p = join(dir, `${name}.sqlite`);
  for (const suffix of ['', '-wal', '-shm']) rmSync(p + suffix, { force: true });
  return p;
}

async function historyPoint(b: ScaleBundles, n: number, runner: CliRunner, work: string): Promise<ServiceFigures> {
  const db = freshDb(work, `history-${n}`);
  const body = b.singleBody(n);
  const first = await startService({ runner, serveArgs: [b.history.get(n)!], sqlitePath: db, firstRequest: { path: '/forecast', body } });
  let figures: Omit<ServiceFigures, 'firstStartS' | 'listeningS'>;
  try {
    if (first.firstStatus !== 200) throw new Error(`first forecast answered ${first.firstStatus}: ${first.output().slice(-500)}`);
    figures = await underLoad(first, ['/forecast'], body, (k) => b.newBarBody(n, k));
  } finally {
    await first.stop();
  }
  // Restart on the same store file: the history is already stored (no seeding), the bundle is read and verified again.
  const again = await startService({ runner, serveArgs: [b.history.get(n)!], sqlitePath: db, firstRequest: { path: '/forecast', body } });
  await again.stop();
  return { firstStartS: first.firstAnswerMs / 1000, listeningS: first.listeningMs / 1000, restartS: again.firstAnswerMs / 1000, ...figures };
}

async function modelsPoint(b: ScaleBundles, count: number, runner: CliRunner, work: string): Promise<ServiceFigures> {
  const db = freshDb(work, `models-${count}`);
  const body = b.singleBody(MODEL_BARS);
  const paths = Array.from({ length: count }, (_, i) => `/models/m${String(i).padStart(3, '0')}/forecast`);
  const svc = await startService({ runner, serveArgs: ['--models', b.models.get(count)!], sqlitePath: db, firstRequest: { path: paths[0], body } });
  try {
    if (svc.firstStatus !== 200) throw new Error(`first forecast answered ${svc.firstStatus}: ${svc.output().slice(-500)}`);
    const figures = await underLoad(svc, paths, body);
    return { firstStartS: svc.firstAnswerMs / 1000, listeningS: svc.listeningMs / 1000, ...figures };
  } finally {
    await svc.stop();
  }
}

/** Cold starts of the 10k-bar bundle: spawn to first answer, fresh store each time. */
async function coldStarts(b: ScaleBundles, runner: CliRunner, work: string): Promise<{ firstMs: number[]; listenMs: number[]; rss: number[] }> {
  const firstMs: number[] = [];
  const listenMs: number[] = [];
  const rss: number[] = [];
  for (let r = 0; r < COLD_RUNS; r++) {
    const svc = await startService({ runner, serveArgs: [b.history.get(COLD_BARS)!], sqlitePath: freshDb(work, `cold-${runner.kind}-${r}`), firstRequest: { path: '/forecast', body: b.singleBody(COLD_BARS) } });
    firstMs.push(svc.firstAnswerMs);
    listenMs.push(svc.listeningMs);
    rss.push(rssMiB(svc.pid).rss);
    await svc.stop();
  }
  return { firstMs, listenMs, rss };
}

/** RSS of each worker of a 2-worker cluster serving the 10k-bar bundle, after load. */
async function clusterRss(b: ScaleBundles, runner: CliRunner, work: string): Promise<{ workers: number[]; primary: number }> {
  const svc = await startService({ runner, serveArgs: [b.history.get(COLD_BARS)!], sqlitePath: freshDb(work, 'cluster'), workers: 2, firstRequest: { path: '/forecast', body: b.singleBody(COLD_BARS) } });
  try {
    await cannon({ url: `${svc.url}/forecast`, connections: CANNON_CONNECTIONS, duration: CANNON_S, method: 'POST', headers: JSON_HEADERS, body: b.singleBody(COLD_BARS) });
    const workers = childProcesses(svc.pid, /serve\/worker\.(ts|js)/).map((pid) => rssMiB(pid).rss);
    return { workers, primary: rssMiB(svc.pid).rss };
  } finally {
    await svc.stop();
  }
}

// ------------------------------------------------------------------------------------------
// Chart

const FONT = [...CHART_FONT_FAMILIES, 'sans-serif'].join(', ');
/** Each panel its own colours and legend. */
const INDEPENDENT = { scale: { color: 'independent', y: 'independent' }, legend: { color: 'independent' } };

interface Point {
  x: number;
  series: string;
  value: number;
}

function panel(title: string, xTitle: string, yTitle: string, points: Point[], rules: { value: number; label: string }[], xValues: number[], colors: Record<string, string>, yLog = false): object {
  const domain = Object.keys(colors);
  const layers: object[] = [
    {
      data: { values: points },
      mark: { type: 'line', point: { filled: true, size: 45 }, strokeWidth: 2 },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: xTitle, scale: { type: 'log', domain: [xValues[0] / 1.4, xValues.at(-1)! * 1.4], nice: false }, axis: { values: xValues, format: '~s', grid: true } },
        y: { field: 'value', type: 'quantitative', title: yTitle, scale: yLog ? { type: 'log' } : { zero: true }, ...(yLog ? { axis: { format: '~g' } } : {}) },
        color: { field: 'series', type: 'nominal', title: null, scale: { domain, range: domain.map((d) => colors[d]) }, legend: { orient: 'bottom', direction: 'vertical', labelLimit: 260 } },
        tooltip: [{ field: 'series' }, { field: 'x', title: xTitle }, { field: 'value', title: yTitle, format: '.4g' }],
      },
    },
  ];
  if (rules.length > 0) {
    layers.push({
      data: { values: rules },
      mark: { type: 'rule', color: '#e45756', strokeDash: [5, 4], strokeWidth: 1.5 },
      encoding: { y: { field: 'value', type: 'quantitative' } },
    });
    layers.push({
      data: { values: rules },
      mark: { type: 'text', color: '#e45756', align: 'left', baseline: 'bottom', dx: 4, dy: -2, fontSize: 11 },
      encoding: { y: { field: 'value', type: 'quantitative' }, text: { field: 'label' } },
    });
  }
  return { title, width: 250, height: 190, layer: layers };
}

/** The two rows of the chart: against history length, against models served. */
export function scaleChartSpec(historyRows: Map<number, ServiceFigures>, modelRows: Map<number, ServiceFigures>, runner: string): object {
  const hx = [...historyRows.keys()];
  const mx = [...modelRows.keys()];
  const pts = (rows: Map<number, ServiceFigures>, pick: Record<string, (f: ServiceFigures) => number | undefined>): Point[] =>
    [...rows].flatMap(([x, f]) => Object.entries(pick).flatMap(([series, g]) => (g(f) === undefined || !Number.isFinite(g(f)!) ? [] : [{ x, series, value: g(f)! }])));
  const latencyColors = { 'one at a time, median': '#4c78a8', 'one at a time, p99': '#9ecae9', '8 connections, p50': '#f58518', '8 connections, p99': '#ffbf79' };
  const latency = (f: ServiceFigures) => ({ 'one at a time, median': f.seqMedianMs, 'one at a time, p99': f.seqP99Ms, '8 connections, p50': f.p50Ms, '8 connections, p99': f.p99Ms });
  const latencyPick = Object.fromEntries(Object.keys(latencyColors).map((k) => [k, (f: ServiceFigures) => latency(f)[k as keyof ReturnType<typeof latency>]]));
  const base1k = historyRows.get(hx[0])?.seqMedianMs;
  const startColors = { 'first start (store seeded)': '#54a24b', 'restart (store kept)': '#88d27a' };
  const rssColors = { 'RSS after load': '#b279a2', 'peak RSS': '#d6a5c9' };
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'forecast serve: how cost grows with work', subtitle: [`one process, SQLite, ${runner}; red dashed lines: targets`, 'log-scale x axes; top row log-log too (slope 1 = linear growth)'] },
    resolve: INDEPENDENT,
    vconcat: [
      {
        resolve: INDEPENDENT,
        hconcat: [
          panel(
            'Single-bar forecast latency',
            'History length (bars)',
            'Latency (ms, log scale)',
            [...pts(historyRows, latencyPick), ...pts(historyRows, { 'new bar, median': (f) => f.newBarMedianMs })],
            base1k ? [{ value: base1k * 1.2, label: '1.2 × median at 1k' }] : [],
            hx,
            { ...latencyColors, 'new bar, median': '#e45756' },
            true,
          ),
          panel(
            'Start-up, spawn to first answer',
            'History length (bars)',
            'Start-up (s, log scale)',
            pts(historyRows, { 'first start (store seeded)': (f) => f.firstStartS, 'restart (store kept)': (f) => f.restartS }),
            [{ value: 5, label: '5 s at 1M bars' }],
            hx,
            startColors,
            true,
          ),
          panel('Memory after load', 'History length (bars)', 'RSS (MiB, log scale)', pts(historyRows, { 'RSS after load': (f) => f.rssMiB, 'peak RSS': (f) => f.peakMiB }), [{ value: 80, label: '80 MiB, one model' }], hx, rssColors, true),
        ],
      },
      {
        resolve: INDEPENDENT,
        hconcat: [
          panel(`Single-bar latency (${MODEL_BARS.toLocaleString('en-US')}-bar models)`, 'Models served by one process', 'Latency (ms, log scale)', pts(modelRows, latencyPick), [], mx, latencyColors, true),
          panel('Start-up, spawn to first answer', 'Models served by one process', 'Start-up (s)', pts(modelRows, { 'first start (store seeded)': (f) => f.firstStartS }), [], mx, { 'first start (store seeded)': startColors['first start (store seeded)'] }),
          panel('Memory after load', 'Models served by one process', 'RSS (MiB)', pts(modelRows, { 'RSS after load': (f) => f.rssMiB, 'peak RSS': (f) => f.peakMiB }), [{ value: 1024, label: '1 GiB, 100 models' }], mx, rssColors),
        ],
      },
    ],
    config: {
      font: FONT,
      background: 'white',
      view: { stroke: '#d0d0d0' },
      axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#ececec' },
      legend: { labelFontSize: 11 },
      title: { fontSize: 13, anchor: 'start', subtitleFontSize: 11 },
      concat: { spacing: 30 },
    },
  };
  return spec;
}

async function writeScaleChart(spec: object): Promise<{ png: string; svg: string }> {
  const svg = await renderSvg(spec as Parameters<typeof renderSvg>[0]);
  const png = svgToPng(svg, { scale: 2 });
  const base = join(ROOT, CHART_BASE);
  mkdirSync(join(base, '..'), { recursive: true });
  writeFileSync(`${base}.svg`, svg);
  writeFileSync(`${base}.png`, png);
  return { png: `${CHART_BASE}.png`, svg: `${CHART_BASE}.svg` };
}

// ------------------------------------------------------------------------------------------

const bars = (n: number) => `${n.toLocaleString('en-US')} bars`;

export default async function run(): Promise<void> {
  const runner = servedCli();
  const b = await scaleBundles();
  console.log(`  bundles ${b.built ? 'built' : 'found in the cache'} (${b.buildS.toFixed(1)} s): ${b.dir}`);
  console.log(`  services started as: ${runner.shown}`);
  const work = join(tmpdir(), `forecast-bench-scale-run-${process.pid}`);
  mkdirSync(work, { recursive: true });
  const how = `\`forecast serve\` started as ${runner.shown}; SQLite, 1 worker, LOG_LEVEL=warn`;
  try {
    // How cost grows with history length.
    const historyRows = new Map<number, ServiceFigures>();
    for (const n of HISTORY_SIZES) {
      const f = await historyPoint(b, n, runner, work);
      historyRows.set(n, f);
      const size = statSync(join(b.history.get(n)!, 'history.csv')).size / 2 ** 20;
      console.log(
        `  ${bars(n).padStart(16)}: first start ${f.firstStartS.toFixed(2)} s (listening ${f.listeningS.toFixed(2)} s), restart ${f.restartS!.toFixed(2)} s; ` +
          `single bar one at a time median ${f.seqMedianMs.toFixed(3)} ms p99 ${f.seqP99Ms.toFixed(3)} ms; ${CANNON_CONNECTIONS} conn ${Math.round(f.rps)} req/s p50 ${f.p50Ms.toFixed(2)} p99 ${f.p99Ms.toFixed(2)} p99.9 ${f.p999Ms.toFixed(2)} ms; ` +
          `new bar median ${f.newBarMedianMs!.toFixed(2)} ms; RSS ${f.rssMiB.toFixed(0)} MiB (peak ${f.peakMiB.toFixed(0)}); history.csv ${size.toFixed(1)} MiB`,
      );
    }
    // How cost grows with the number of models.
    const modelRows = new Map<number, ServiceFigures>();
    for (const c of MODEL_COUNTS) {
      const f = await modelsPoint(b, c, runner, work);
      modelRows.set(c, f);
      console.log(
        `  ${String(c).padStart(3)} model${c === 1 ? ' ' : 's'} of ${bars(MODEL_BARS)}: start-up ${f.firstStartS.toFixed(2)} s; single bar one at a time median ${f.seqMedianMs.toFixed(3)} ms p99 ${f.seqP99Ms.toFixed(3)} ms; ` +
          `${CANNON_CONNECTIONS} conn ${Math.round(f.rps)} req/s p50 ${f.p50Ms.toFixed(2)} p99 ${f.p99Ms.toFixed(2)} ms; RSS ${f.rssMiB.toFixed(0)} MiB (peak ${f.peakMiB.toFixed(0)})`,
      );
    }

    results.table({
      id: 'history',
      title: `Cost against history length (one model; ${how})`,
      columns: ['history', 'first start s', 'restart s', 'single bar median ms', 'single bar p99 ms', `${CANNON_CONNECTIONS} conn req/s`, `${CANNON_CONNECTIONS} conn p50 ms`, `${CANNON_CONNECTIONS} conn p99 ms`, `${CANNON_CONNECTIONS} conn p99.9 ms`, 'new bar median ms', 'RSS after load MiB', 'peak RSS MiB'],
      rows: [...historyRows].map(([n, f]) => [bars(n), f.firstStartS, f.restartS ?? null, f.seqMedianMs, f.seqP99Ms, Math.round(f.rps), f.p50Ms, f.p99Ms, f.p999Ms, f.newBarMedianMs ?? null, f.rssMiB, f.peakMiB]),
      notes:
        'Start-up: spawn to the first forecast answered (first start: empty SQLite file, seeded from the bundle; restart: the same file). Single bar: the newest stored bar posted again, ' +
        `${SEQ_COUNT} requests one at a time after ${SEQ_WARMUP} warm-up, then autocannon ${CANNON_S} s; new bar: ${NEW_BARS} requests each adding a new newest bar (durable write). ` +
        'For comparison, the seed system recomputes every indicator over the whole history per request: 1.2-1.4 s per single-bar request (measured beside this project, not here).',
    });
    results.table({
      id: 'models',
      title: `Cost against models served by one process (${bars(MODEL_BARS)} each; ${how})`,
      columns: ['models', 'start-up s', 'single bar median ms', 'single bar p99 ms', `${CANNON_CONNECTIONS} conn req/s`, `${CANNON_CONNECTIONS} conn p50 ms`, `${CANNON_CONNECTIONS} conn p99 ms`, 'RSS after load MiB', 'peak RSS MiB'],
      rows: [...modelRows].map(([c, f]) => [c, f.firstStartS, f.seqMedianMs, f.seqP99Ms, Math.round(f.rps), f.p50Ms, f.p99Ms, f.rssMiB, f.peakMiB]),
      notes: 'Requests go round-robin over every model served (/models/NAME/forecast). Start-up: spawn to the first forecast answered, empty SQLite file.',
    });

    // Targets.
    const lo = historyRows.get(HISTORY_SIZES[0])!;
    const hiN = HISTORY_SIZES.at(-1)!;
    const hi = historyRows.get(hiN)!;
    results.figure({
      id: 'latency.ratio',
      label: `single-bar latency at ${bars(hiN)} / at ${bars(HISTORY_SIZES[0])} (median, one at a time)`,
      value: hi.seqMedianMs / lo.seqMedianMs,
      unit: '×',
      target: { op: '<=', value: 1.2, unit: '×' },
      notes: `${hi.seqMedianMs.toFixed(3)} vs ${lo.seqMedianMs.toFixed(3)} ms; p99 ratio ${(hi.seqP99Ms / lo.seqP99Ms).toFixed(2)}, ${CANNON_CONNECTIONS}-connection throughput ratio ${(hi.rps / lo.rps).toFixed(2)}`,
    });
    results.figure({
      id: 'new-bar.ratio',
      label: `new-bar request latency at ${bars(hiN)} / at ${bars(HISTORY_SIZES[0])} (median, one at a time)`,
      value: hi.newBarMedianMs! / lo.newBarMedianMs!,
      unit: '×',
      target: { op: '<=', value: 1.2, unit: '×' },
      notes: `${hi.newBarMedianMs!.toFixed(2)} vs ${lo.newBarMedianMs!.toFixed(2)} ms; a client's daily request is a new bar, so the single-bar target is applied to it too (durable SQLite commit + incremental features: constant work per appended bar)`,
    });
    for (const [n, f] of historyRows) results.figure({ id: `new-bar.${n}`, label: `new-bar request latency, ${bars(n)} (median)`, value: f.newBarMedianMs ?? null, unit: 'ms', notes: `p99 ${f.newBarP99Ms?.toFixed(2)} ms; ${NEW_BARS} requests one at a time` });
    for (const [n, f] of historyRows) {
      results.figure({ id: `latency.${n}`, label: `single-bar latency, ${bars(n)} (median, one at a time)`, value: f.seqMedianMs, unit: 'ms', notes: `p99 ${f.seqP99Ms.toFixed(3)} ms; ${CANNON_CONNECTIONS} connections: ${Math.round(f.rps)} req/s, p50 ${f.p50Ms.toFixed(2)} / p99 ${f.p99Ms.toFixed(2)} / p99.9 ${f.p999Ms.toFixed(2)} ms` });
    }
    for (const [n, f] of historyRows) {
      const t = n === 1_000_000 ? { target: { op: '<' as const, value: 5, unit: 's' } } : {};
      results.figure({ id: `startup.${n}`, label: `start-up to first answer, ${bars(n)}, first start (empty store)`, value: f.firstStartS, unit: 's', ...t, notes: `listening after ${f.listeningS.toFixed(2)} s; ${runner.kind}` });
      results.figure({ id: `restart.${n}`, label: `start-up to first answer, ${bars(n)}, restart (store kept)`, value: f.restartS ?? null, unit: 's', ...t, notes: runner.kind });
    }
    if (HISTORY_SIZES.length >= 3) {
      // Linear: the history-dependent part (start-up minus the smallest history's) grows like the history.
      const mid = HISTORY_SIZES.at(-2)!;
      const exp = (pick: (f: ServiceFigures) => number) =>
        Math.log((pick(hi) - pick(lo)) / (pick(historyRows.get(mid)!) - pick(lo))) / Math.log(hiN / mid);
      const notes = `log((T(${bars(hiN)}) − T(${bars(HISTORY_SIZES[0])})) / (T(${bars(mid)}) − T(${bars(HISTORY_SIZES[0])}))) / log(${hiN / mid}): 1 = linear, 2 = quadratic; the target allows noise`;
      results.figure({ id: 'startup.exponent', label: `start-up growth exponent, ${bars(mid)} → ${bars(hiN)} (first start)`, value: exp((f) => f.firstStartS), unit: '', target: { op: '<=', value: 1.1, unit: '' }, notes });
      results.figure({ id: 'restart.exponent', label: `start-up growth exponent, ${bars(mid)} → ${bars(hiN)} (restart)`, value: exp((f) => f.restartS!), unit: '', target: { op: '<=', value: 1.1, unit: '' }, notes });
    }
    for (const [n, f] of historyRows) results.figure({ id: `rss.${n}`, label: `RSS after load, one model, ${bars(n)}`, value: f.rssMiB, unit: 'MiB', notes: `peak ${f.peakMiB.toFixed(0)} MiB` });
    for (const [c, f] of modelRows) {
      results.figure({
        id: `models.${c}.rss`,
        label: `RSS after load, ${c} model${c === 1 ? '' : 's'} of ${bars(MODEL_BARS)} in one process`,
        value: f.rssMiB,
        unit: 'MiB',
        ...(c === 100 ? { target: { op: '<' as const, value: 1, unit: 'GiB' } } : {}),
        notes: `peak ${f.peakMiB.toFixed(0)} MiB`,
      });
      results.figure({ id: `models.${c}.startup`, label: `start-up to first answer, ${c} model${c === 1 ? '' : 's'}`, value: f.firstStartS, unit: 's' });
      results.figure({ id: `models.${c}.latency`, label: `single-bar latency, ${c} model${c === 1 ? '' : 's'} (median, one at a time, round-robin)`, value: f.seqMedianMs, unit: 'ms', notes: `p99 ${f.seqP99Ms.toFixed(3)} ms; ${CANNON_CONNECTIONS} connections ${Math.round(f.rps)} req/s` });
    }

    // Cold start of a 10k-bar model, and RSS per worker.
    const runners: CliRunner[] = [runner];
    if (runner.kind === 'tsx') runners.push((await scratchBuild()).runner);
    // The targets apply to the service as deployed (compiled: the image and Procfile run dist/);
    // from source through tsx is shown beside it.
    const deployed = (r: CliRunner) => r.kind !== 'tsx';
    for (const r of runners) {
      const c = await coldStarts(b, r, work);
      const label = r.kind === 'scratch' ? 'compiled (esbuild build of src/, as `npm run build` would run it)' : r.kind;
      console.log(`  cold start, ${bars(COLD_BARS)}, ${label}: spawn to first answer median ${median(c.firstMs).toFixed(0)} ms [${c.firstMs.map((x) => x.toFixed(0)).join(', ')}], to listening ${median(c.listenMs).toFixed(0)} ms; RSS ${median(c.rss).toFixed(0)} MiB`);
      results.figure({
        id: `cold-start.${r.kind}`,
        label: `cold start to first answer, ${COLD_BARS.toLocaleString('en-US')}-bar model, ${label}`,
        value: median(c.firstMs),
        unit: 'ms',
        ...(deployed(r) ? { target: { op: '<', value: 0.5, unit: 's' } } : {}),
        notes: `${deployed(r) ? '' : 'no target from source (the deployed service runs compiled code); '}${r.shown}; median of ${COLD_RUNS} (${c.firstMs.map((x) => x.toFixed(0)).join(', ')} ms), fresh SQLite file each; listening after ${median(c.listenMs).toFixed(0)} ms`,
      });
    }
    for (const r of runners) {
      const cl = await clusterRss(b, r, work);
      console.log(`  RSS per worker, 2-worker cluster, one ${bars(COLD_BARS)} model, after load, ${r.kind}: ${cl.workers.map((x) => x.toFixed(0)).join(', ')} MiB (primary ${cl.primary.toFixed(0)} MiB)`);
      results.figure({
        id: r === runner ? 'rss.worker' : `rss.worker.${r.kind}`,
        label: `RSS per worker after load, one ${COLD_BARS.toLocaleString('en-US')}-bar model (2-worker cluster, largest worker), ${r.kind === 'scratch' ? 'compiled' : r.kind}`,
        value: cl.workers.length ? Math.max(...cl.workers) : null,
        unit: 'MiB',
        ...(deployed(r) ? { target: { op: '<', value: 80, unit: 'MiB' } } : {}),
        notes: `${deployed(r) ? '' : 'no target from source (tsx adds its loader thread); '}workers ${cl.workers.map((x) => x.toFixed(0)).join(', ')} MiB, primary ${cl.primary.toFixed(0)} MiB; ${r.shown}${r === runner ? `; single process (primary = worker): ${historyRows.get(COLD_BARS)?.rssMiB.toFixed(0) ?? 'n/a'} MiB` : ''}`,
      });
    }

    const chart = await writeScaleChart(scaleChartSpec(historyRows, modelRows, runner.kind === 'dist' ? 'node dist/cli/index.js' : 'node + tsx from source'));
    results.chart({ id: 'scale', title: 'How cost grows with history length and models served', ...chart });
    console.log(`  chart: ${chart.png}`);
    results.note(`Services started as \`${runner.shown}\`${runner.kind === 'tsx' ? ' (no dist/); the cold start is also measured on a compiled copy' : ''}.`);
    results.note(`Bundles: one causal tree trained on the first ${TRAIN_BARS.toLocaleString('en-US')} bars of a seeded synthetic history; each history-length bundle carries the first N bars as history.csv (self-checked at load); see the header of bench/scale.bench.ts.`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
