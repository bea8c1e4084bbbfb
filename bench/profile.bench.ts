/**
 * Profiles of the targets that miss. For every target figure MISSED in this run's sections (or, for
 * sections not run now, in BENCHMARKS.json), the scenario behind it is run again in a service process
 * under `node --cpu-prof` (and, for the memory targets, a heap snapshot): the top self-time and
 * inclusive functions go into BENCHMARKS.md, the full summaries into bench/profiles/NAME.txt.
 *
 *   npm run bench profile                       the scenarios of the targets missed so far
 *   PROFILE=all npm run bench profile           every scenario
 *   PROFILE=startup-1m,big-request npm run bench profile
 *
 * The profiled service is a compiled copy of src/ (bench/build.ts, esbuild with source maps), so the
 * profile names TypeScript files and lines (tsx's transformed code has no map on disk); the same code
 * as the benches ran, without tsx's own start-up. Load phases are cut out of the whole-process
 * profile by time (`window`): the samples taken while the load ran.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBundle } from '../src/bundle/index.js';
import { seriesToSplitJson } from '../src/serve/bar-table.js';
import { HAVE_REFERENCE, writeReferenceBundle } from '../test/helpers/reference.js';
import { postgresAvailable, PG_URL, uniqueSchema } from '../test/store/pg-helper.js';
import { ROOT, scratchBuild } from './build.js';
import { formatSummary, summarizeProfile, type ProfileSummary } from './cpuprofile.js';
import { formatHeapSummary, summarizeHeapSnapshot, type HeapSummary } from './heapsnapshot.js';
import { cannon, sequential } from './load.js';
import { readBenchmarksFile, results, targetMet, type Figure } from './results.js';
import { HISTORY_SIZES, scaleBundles, type ScaleBundles } from './scale.bench.js';
import { JSON_HEADERS, startService, type ServiceProcess, type StartOptions } from './service.js';

export const title = 'CPU and heap profiles of the targets that miss';

const TOP = 12;
const LOAD_S = process.env.BENCH_QUICK === '1' ? 1 : 5;

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

interface Outcome {
  cpu?: ProfileSummary;
  heap?: HeapSummary;
  memory?: Record<string, number>;
  what: string;
}

interface Ctx {
  work: string;
  scale: () => Promise<ScaleBundles>;
  reference: () => Promise<{ dir: string; single: string; big: string; label: string }>;
}

/** A service under the profiler: `during` runs the load (the profile window), `heap` takes a snapshot after it. */
async function profiled(ctx: Ctx, o: Omit<StartOptions, 'runner' | 'nodeArgs'>, during: ((svc: ServiceProcess) => Promise<void>) | null, heap = false): Promise<Omit<Outcome, 'what'>> {
  const { runner } = await scratchBuild();
  const dir = mkdtempSync(join(ctx.work, 'prof-'));
  const svc = await startService({ ...o, runner, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--diagnostic-dir=${dir}`, '--heapsnapshot-signal=SIGUSR2'] });
  let window: { fromUs: number; toUs: number } | undefined;
  let memory: Record<string, number> | undefined;
  try {
    if (svc.firstStatus && svc.firstStatus !== 200) throw new Error(`first request answered ${svc.firstStatus}: ${svc.output().slice(-400)}`);
    if (during) {
      const fromUs = nowUs();
      await during(svc);
      window = { fromUs, toUs: nowUs() };
    }
    memory = await memoryMetrics(svc.url);
    if (heap) {
      svc.child.kill('SIGUSR2');
      await settledFile(dir, '.heapsnapshot');
    }
  } finally {
    await svc.stop();
  }
  const cpuFile = await settledFile(dir, '.cpuprofile');
  const out: Omit<Outcome, 'what'> = { cpu: summarizeProfile(cpuFile, 40, undefined, window), memory };
  if (heap) out.heap = summarizeHeapSnapshot(await settledFile(dir, '.heapsnapshot'), 25);
  rmSync(dir, { recursive: true, force: true });
  return out;
}

/** The largest file with `suffix` in `dir` once its size stops changing (bounded: 120 s). */
async function settledFile(dir: string, suffix: string): Promise<string> {
  const end = Date.now() + 120_000;
  let last = -1;
  for (;;) {
    const files = readdirSync(dir)
      .filter((f) => f.endsWith(suffix))
      .map((f) => ({ f: join(dir, f), size: statSync(join(dir, f)).size }))
      .sort((a, b) => b.size - a.size);
    if (files.length > 0 && files[0].size > 0 && files[0].size === last) return files[0].f;
    last = files[0]?.size ?? -1;
    if (Date.now() > end) throw new Error(`no complete *${suffix} in ${dir}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The service's own memory gauges (prom-client's process metrics, MiB). */
async function memoryMetrics(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const get = (name: string) => Number(new RegExp(`^forecast_${name}(?:\\{[^}]*\\})? ([\\d.e+]+)$`, 'm').exec(text)?.[1] ?? Number.NaN) / 2 ** 20;
  return {
    'RSS (process_resident_memory_bytes)': get('process_resident_memory_bytes'),
    'JS heap total (nodejs_heap_size_total_bytes)': get('nodejs_heap_size_total_bytes'),
    'JS heap used (nodejs_heap_size_used_bytes)': get('nodejs_heap_size_used_bytes'),
    'external, typed arrays and buffers (nodejs_external_memory_bytes)': get('nodejs_external_memory_bytes'),
  };
}

const freshDb = (ctx: Ctx, name: string) => join(mkdtempSync(join(ctx.work, `${name}-`)), 'history.sqlite');
const bigN = () => HISTORY_SIZES.at(-1)!;

interface Scenario {
  name: string;
  /** Which missed targets call for it: `section/figure-id` patterns. */
  targets: RegExp[];
  run(ctx: Ctx): Promise<Outcome>;
}

const SCENARIOS: Scenario[] = [
  {
    name: 'startup-1m',
    targets: [/^scale\/startup\.(1000000|exponent)$/],
    async run(ctx) {
      const b = await ctx.scale();
      const n = bigN();
      const r = await profiled(ctx, { serveArgs: [b.history.get(n)!], sqlitePath: freshDb(ctx, 'startup'), firstRequest: { path: '/forecast', body: b.singleBody(n) } }, null);
      return { ...r, what: `first start (empty SQLite file) of the ${n.toLocaleString('en-US')}-bar bundle to its first answer, whole process` };
    },
  },
  {
    name: 'restart-1m',
    targets: [/^scale\/restart\.(1000000|exponent)$/],
    async run(ctx) {
      const b = await ctx.scale();
      const n = bigN();
      const db = freshDb(ctx, 'restart');
      const seed = await startService({ runner: (await scratchBuild()).runner, serveArgs: [b.history.get(n)!], sqlitePath: db, firstRequest: { path: '/forecast', body: b.singleBody(n) } });
      await seed.stop();
      const r = await profiled(ctx, { serveArgs: [b.history.get(n)!], sqlitePath: db, firstRequest: { path: '/forecast', body: b.singleBody(n) } }, null);
      return { ...r, what: `restart (SQLite file already holding the history) of the ${n.toLocaleString('en-US')}-bar bundle to its first answer, whole process` };
    },
  },
  {
    name: 'latency-1m',
    targets: [/^scale\/latency\.ratio$/],
    async run(ctx) {
      const b = await ctx.scale();
      const n = bigN();
      const body = b.singleBody(n);
      const r = await profiled(ctx, { serveArgs: [b.history.get(n)!], sqlitePath: freshDb(ctx, 'latency'), firstRequest: { path: '/forecast', body } }, async (svc) => {
        await sequential(svc.url, 2000, { path: () => '/forecast', body: () => body, headers: JSON_HEADERS });
        await cannon({ url: `${svc.url}/forecast`, method: 'POST', headers: JSON_HEADERS, body, connections: 8, duration: LOAD_S });
      });
      return { ...r, what: `single-bar requests at ${n.toLocaleString('en-US')} bars (2,000 one at a time, then ${LOAD_S} s at 8 connections); load phase only` };
    },
  },
  {
    name: 'append-1m',
    targets: [/^scale\/new-bar\.ratio$/],
    async run(ctx) {
      const b = await ctx.scale();
      const n = bigN();
      const count = process.env.BENCH_QUICK === '1' ? 50 : 300;
      const r = await profiled(ctx, { serveArgs: [b.history.get(n)!], sqlitePath: freshDb(ctx, 'append'), firstRequest: { path: '/forecast', body: b.singleBody(n) } }, async (svc) => {
        await sequential(svc.url, count, { path: () => '/forecast', body: (k) => b.newBarBody(n, k + 1), headers: JSON_HEADERS });
      });
      return { ...r, what: `${count} new-bar requests one at a time at ${n.toLocaleString('en-US')} bars (each a new newest bar: durable write, incremental features); load phase only` };
    },
  },
  {
    name: 'big-request',
    targets: [/^serve\/.*\.big$/],
    async run(ctx) {
      const ref = await ctx.reference();
      const r = await profiled(ctx, { serveArgs: [ref.dir], sqlitePath: freshDb(ctx, 'big'), firstRequest: { path: '/forecast', body: ref.single } }, async (svc) => {
        await sequential(svc.url, process.env.BENCH_QUICK === '1' ? 30 : 300, { path: () => '/forecast', body: () => ref.big, headers: JSON_HEADERS });
      });
      return { ...r, what: `963-bar requests one at a time (${ref.label}, SQLite); load phase only` };
    },
  },
  {
    name: 'serve-sqlite',
    targets: [/^serve\/sqlite\.c\d+\.(ratio\.\w+|p99)$/],
    async run(ctx) {
      const ref = await ctx.reference();
      const r = await profiled(ctx, { serveArgs: [ref.dir], sqlitePath: freshDb(ctx, 'serve'), firstRequest: { path: '/forecast', body: ref.single } }, async (svc) => {
        await cannon({ url: `${svc.url}/forecast`, method: 'POST', headers: JSON_HEADERS, body: ref.single, connections: 8, duration: LOAD_S });
      });
      return { ...r, what: `single-bar POST /forecast at 8 connections for ${LOAD_S} s (${ref.label}, SQLite, logging off); load phase only` };
    },
  },
  {
    name: 'serve-pg',
    targets: [/^serve\/(pg\.c\d+\.(ratio\.\w+|p99)|pg-vs-sqlite\.c\d+)$/],
    async run(ctx) {
      if (!(await postgresAvailable())) return { what: 'PostgreSQL at 127.0.0.1:5432 unreachable: not profiled' };
      const ref = await ctx.reference();
      const schema = uniqueSchema('profile');
      const r = await profiled(
        ctx,
        { serveArgs: [ref.dir], sqlitePath: freshDb(ctx, 'pg'), env: { DATABASE_URL: PG_URL, DATABASE_SCHEMA: schema }, firstRequest: { path: '/forecast', body: ref.single } },
        async (svc) => {
          await cannon({ url: `${svc.url}/forecast`, method: 'POST', headers: JSON_HEADERS, body: ref.single, connections: 1, duration: LOAD_S });
        },
      );
      const { default: pg } = await import('pg');
      const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
      await c.connect().then(() => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)).catch(() => undefined);
      await c.end().catch(() => undefined);
      return { ...r, what: `single-bar POST /forecast at 1 connection for ${LOAD_S} s (${ref.label}, PostgreSQL); load phase only` };
    },
  },
  {
    name: 'cold-start',
    targets: [/^scale\/cold-start\./, /^lambda\/.*cold-start/],
    async run(ctx) {
      const b = await ctx.scale();
      const r = await profiled(ctx, { serveArgs: [b.history.get(10_000)!], sqlitePath: freshDb(ctx, 'cold'), firstRequest: { path: '/forecast', body: b.singleBody(10_000) } }, null);
      return { ...r, what: 'cold start of the 10,000-bar bundle to its first answer, compiled build (tsx, when the figure used it, adds its own start on top), whole process' };
    },
  },
  {
    name: 'memory-1',
    targets: [/^scale\/rss\.worker$/],
    async run(ctx) {
      const b = await ctx.scale();
      const body = b.singleBody(10_000);
      const r = await profiled(ctx, { serveArgs: [b.history.get(10_000)!], sqlitePath: freshDb(ctx, 'mem1'), firstRequest: { path: '/forecast', body } }, async (svc) => {
        await cannon({ url: `${svc.url}/forecast`, method: 'POST', headers: JSON_HEADERS, body, connections: 8, duration: LOAD_S });
      }, true);
      return { ...r, what: `one 10,000-bar model after ${LOAD_S} s of single-bar load: heap snapshot and memory gauges (CPU: load phase)` };
    },
  },
  {
    name: 'memory-100',
    targets: [/^scale\/models\.100\.rss$/],
    async run(ctx) {
      const b = await ctx.scale();
      const count = Math.max(...b.models.keys());
      const body = b.singleBody(3_000);
      const r = await profiled(ctx, { serveArgs: ['--models', b.models.get(count)!], sqlitePath: freshDb(ctx, 'mem100'), firstRequest: { path: '/models/m000/forecast', body } }, null, true);
      return { ...r, what: `${count} models of 3,000 bars in one process: start-up CPU (whole process), heap snapshot and memory gauges after start` };
    },
  },
];

/** Missed targets: this process's sections, then BENCHMARKS.json's for the others. */
function missedTargets(): { key: string; f: Figure }[] {
  const out: { key: string; f: Figure }[] = [];
  const done = new Set<string>();
  for (const s of results.done) {
    done.add(s.name);
    for (const f of s.figures) if (targetMet(f) === false) out.push({ key: `${s.name}/${f.id}`, f });
  }
  const file = readBenchmarksFile(join(ROOT, 'BENCHMARKS.json'));
  for (const s of Object.values(file?.sections ?? {})) {
    if (done.has(s.name) || s.name === 'profile') continue;
    for (const f of s.figures) if (targetMet(f) === false) out.push({ key: `${s.name}/${f.id}`, f });
  }
  return out;
}

export default async function run(): Promise<void> {
  const ask = process.env.PROFILE;
  const missed = missedTargets();
  const chosen = SCENARIOS.filter((s) =>
    ask === 'all' ? true : ask ? ask.split(',').includes(s.name) : missed.some(({ key }) => s.targets.some((re) => re.test(key))),
  );
  if (chosen.length === 0) {
    const why = ask ? `PROFILE=${ask} names no scenario (${SCENARIOS.map((s) => s.name).join(', ')})` : 'no missed target calls for a profile (none missed, or no figures yet: run the benches first)';
    console.log(`  ${why}`);
    results.note(why);
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'forecast-bench-profile-'));
  const outDir = join(ROOT, 'bench', 'profiles');
  mkdirSync(outDir, { recursive: true });
  let scale: Promise<ScaleBundles> | null = null;
  let reference: Promise<{ dir: string; single: string; big: string; label: string }> | null = null;
  const ctx: Ctx = {
    work,
    scale: () => (scale ??= scaleBundles()),
    reference: () =>
      (reference ??= (async () => {
        const dir = join(work, 'msft');
        let b;
        if (HAVE_REFERENCE) {
          await writeReferenceBundle(dir);
          b = await loadBundle(dir);
        } else {
          const { ensureDemoBundle } = await import('../src/training/demo.js');
          b = await ensureDemoBundle(join(work, 'demo'));
        }
        const h = b.history;
        const n = h.date.length;
        return {
          dir: b.dir,
          single: JSON.stringify(seriesToSplitJson(h, { start: n - 1, end: n })),
          big: JSON.stringify(seriesToSplitJson(h, { start: n - Math.min(963, n), end: n })),
          label: b.id,
        };
      })()),
  };
  try {
    for (const s of chosen) {
      const because = missed.filter(({ key }) => s.targets.some((re) => re.test(key))).map(({ key }) => key);
      console.log(`\n  profile ${s.name}${because.length ? ` (missed: ${because.join(', ')})` : ''}`);
      const t0 = performance.now();
      const o = await s.run(ctx);
      const text: string[] = [`# ${s.name}: ${o.what}`, because.length ? `# missed targets: ${because.join(', ')}` : '# (asked for)', ''];
      if (o.cpu) text.push(formatSummary(o.cpu, 'CPU profile'));
      if (o.memory) text.push('', 'memory gauges (MiB):', ...Object.entries(o.memory).map(([k, v]) => `  ${v.toFixed(1).padStart(8)}  ${k}`));
      if (o.heap) text.push('', formatHeapSummary(o.heap, 'heap snapshot'));
      writeFileSync(join(outDir, `${s.name}.txt`), text.join('\n') + '\n');
      console.log(text.slice(3).join('\n').split('\n').slice(0, 40).map((l) => `  ${l}`).join('\n'));
      console.log(`  (full summary: bench/profiles/${s.name}.txt; ${((performance.now() - t0) / 1000).toFixed(0)} s)`);

      const shown = (name: string) => name.replace(/^(.{0,110}).*$/, '$1');
      const head = `${s.name}: ${o.what}${because.length ? `; missed: ${because.join(', ')}` : ''}`;
      if (o.cpu) {
        const busy = o.cpu.profiledMs - o.cpu.idleMs;
        results.table({
          id: `${s.name}.cpu`,
          title: `${head} — CPU, ${busy.toFixed(0)} ms busy of ${o.cpu.profiledMs.toFixed(0)} ms profiled`,
          columns: ['top self time', 'self ms', 'self %', 'top inclusive time', 'incl. ms', 'incl. %'],
          rows: Array.from({ length: TOP }, (_, i) => {
            const a = o.cpu!.self[i];
            const b = o.cpu!.inclusive[i];
            return [a ? shown(a.name) : '', a ? a.selfMs : null, a ? `${(100 * a.selfShare).toFixed(1)} %` : '', b ? shown(b.name) : '', b ? b.totalMs : null, b ? `${(100 * b.totalShare).toFixed(1)} %` : ''];
          }),
          notes: `Full summary: [bench/profiles/${s.name}.txt](bench/profiles/${s.name}.txt). Shares are of busy (non-idle) time.`,
        });
      }
      if (o.heap || o.memory) {
        const rows: (string | number | null)[][] = Object.entries(o.memory ?? {}).map(([k, v]) => [k, v, '']);
        for (const g of o.heap?.groups.slice(0, TOP) ?? []) rows.push([`heap: ${g.name}`, g.selfMiB, g.count]);
        results.table({ id: `${s.name}.memory`, title: `${head} — memory (MiB)`, columns: ['what', 'MiB', 'objects'], rows });
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
