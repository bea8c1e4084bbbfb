/**
 * What the soak (test/load/soak.test.ts) and the kill-mid-ingest rounds (test/serve/kill-ingest.test.ts)
 * share: bars as rows, requests on keep-alive or fresh connections that are recorded and never left
 * to hang, RSS samples from /proc, the store read directly (not through the service under test), and
 * the two end-of-run checks: every acknowledged bar stored once with its values, and the service's
 * forecasts equal to a batch recomputation over what is stored.
 */
import { Agent, request } from 'node:http';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ServerOptions } from '../../src/serve/server.js';
import type { BarSeries } from '../../src/data/bars.js';
import { generateSyntheticBars } from '../../src/data/index.js';
import type { FeaturePipeline } from '../../src/models/index.js';
import { seededRandom } from '../../src/monitor/live.js';
import { SqliteHistoryStore, type HistoryStore } from '../../src/store/index.js';
import { PostgresHistoryStore } from '../../src/store/postgres.js';
import { expectedForecasts } from '../serve/helpers/bundles.js';
import { KEY } from '../serve/helpers/http.js';
import { REPO, spawnTracked, type ServerProcess } from '../serve/helpers/process.js';

/** `[date, open, high, low, close, volume]`, the order of every request body built here. */
export type Row = [string, number, number, number, number, number];

const COLUMNS = '["date","open","high","low","close","volume"]';

export function rowsBody(rows: readonly Row[]): string {
  return `{"columns":${COLUMNS},"data":${JSON.stringify(rows)}}`;
}

export function seriesRows(s: BarSeries, from = 0, to = s.date.length): Row[] {
  const out: Row[] = [];
  for (let i = from; i < to; i++) out.push([s.date[i], s.open[i], s.high[i], s.low[i], s.close[i], s.volume[i]]);
  return out;
}

/**
 * `count` bars dated after the `bars` bars of `seed`'s synthetic series (the same generator run
 * longer), with prices scaled by a factor just off 1: doubles with all 17 digits significant, so a
 * store or parser that rounds anywhere shows up in the exact comparison. One factor per bar keeps
 * high >= low.
 */
export function futureRows(seed: number, bars: number, count: number): Row[] {
  const long = generateSyntheticBars({ seed, bars: bars + count });
  return seriesRows(long, bars).map((r, k) => {
    const f = 1 + ((k % 997) + 1) * 1.2345678901e-10;
    return [r[0], r[1] * f, r[2] * f, r[3] * f, r[4] * f, r[5] + 0.25];
  });
}

/** A small seeded PRNG (the monitoring's mulberry32): the request mix and kill moments are reproducible from a printed seed. */
export const prng = seededRandom;

export interface Answer {
  status?: number;
  worker?: string;
  /** The parsed JSON answer (undefined when it was not JSON). */
  body?: any;
  /** A transport failure (ECONNRESET, socket hang up, TIMEOUT): no answer at all. */
  error?: string;
  ms: number;
}

/**
 * POST `body` to `path`. `agent` false: a fresh connection, closed after the answer. `timeoutMs` is
 * the client's own limit, so a request the server never answers is recorded, never awaited forever.
 */
export function post(url: string, path: string, body: string, agent: Agent | false, timeoutMs = 30_000): Promise<Answer> {
  const u = new URL(url);
  const t0 = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const end = (a: Omit<Answer, 'ms'>) => {
      if (settled) return;
      settled = true;
      resolve({ ...a, ms: performance.now() - t0 });
    };
    const headers: Record<string, string | number> = { 'x-api-key': KEY, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    if (agent === false) headers.connection = 'close';
    const req = request({ host: u.hostname, port: u.port, path, method: 'POST', agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        end({ status: res.statusCode, worker: res.headers['x-worker-id'] as string | undefined, body: parsed });
      });
      res.on('error', (err: NodeJS.ErrnoException) => end({ error: err.code ?? err.message }));
      // Cut mid-body (the server killed): no answer, whatever the status line said.
      res.on('aborted', () => end({ error: 'ABORTED' }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('client timeout'), { code: 'TIMEOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => end({ error: err.code ?? err.message }));
    req.end(body);
  });
}

/**
 * spawnServer (test/serve/helpers/process.ts) with gc-on-signal.mjs preloaded into the primary and,
 * through the inherited environment, every worker.
 */
export async function spawnServerWithGc(options: ServerOptions, timeoutMs = 60_000): Promise<ServerProcess> {
  const main = resolve(REPO, 'test/serve/helpers/server-main.ts');
  const preload = resolve(import.meta.dirname, 'gc-on-signal.mjs');
  const p = spawnTracked(process.execPath, ['--import', 'tsx', main, JSON.stringify(options)], { NODE_OPTIONS: `--expose-gc --import=${preload}` });
  try {
    const port = Number((await p.waitFor(/READY (\d+)/, timeoutMs))[1]);
    return { ...p, port, url: `http://127.0.0.1:${port}` };
  } catch (err) {
    p.child.kill('SIGKILL');
    throw err;
  }
}

/** The resident set of `pid` in KiB (VmRSS), or null once it is gone. */
export function rssKiB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** RSS of a fixed set of processes, sampled every `everyMs` from `start()` to `stop()`. */
export class RssSampler {
  readonly samples = new Map<number, { atMs: number; kib: number }[]>();
  private timer: NodeJS.Timeout | null = null;
  private t0 = 0;

  constructor(readonly pids: Record<string, number>, private readonly everyMs = 1000) {}

  start(): void {
    this.t0 = performance.now();
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sample();
  }

  private sample(): void {
    const atMs = performance.now() - this.t0;
    for (const pid of Object.values(this.pids)) {
      const kib = rssKiB(pid);
      if (kib === null) continue;
      let list = this.samples.get(pid);
      if (!list) this.samples.set(pid, (list = []));
      list.push({ atMs, kib });
    }
  }

  /** Per process: RSS in MiB every `stepMs` (the smallest and largest sample of each step), for the printed figures. */
  series(stepMs: number): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [name, pid] of Object.entries(this.pids)) {
      const lo: number[] = [];
      const hi: number[] = [];
      for (const s of this.samples.get(pid) ?? []) {
        const k = Math.floor(s.atMs / stepMs);
        lo[k] = Math.min(lo[k] ?? Infinity, Math.round(s.kib / 1024));
        hi[k] = Math.max(hi[k] ?? 0, Math.round(s.kib / 1024));
      }
      out[name] = [...lo].map((v, k) => (v === hi[k] ? `${v}` : `${v}-${hi[k]}`));
    }
    return out;
  }

  /** Per process: the last sample at or before `baseMs` (the first sample if none), the last sample, and the growth between. */
  growth(baseMs: number): { name: string; pid: number; baseKiB: number; endKiB: number; peakKiB: number; growth: number; samples: number }[] {
    return Object.entries(this.pids).map(([name, pid]) => {
      const list = this.samples.get(pid) ?? [];
      const base = [...list].reverse().find((s) => s.atMs <= baseMs) ?? list[0];
      const last = list[list.length - 1];
      const baseKiB = base?.kib ?? NaN;
      const endKiB = last?.kib ?? NaN;
      return { name, pid, baseKiB, endKiB, peakKiB: Math.max(...list.map((s) => s.kib)), growth: (endKiB - baseKiB) / baseKiB, samples: list.length };
    });
  }
}

export interface AfterGc {
  /** The smallest RSS (KiB) seen after a forced full GC. */
  rssKiB: Record<string, number>;
  /** The smallest live JS heap (bytes) a forced full GC left. */
  heapBytes: Record<string, number>;
  /**
   * The smallest RSS (KiB) after a forced GC less the heap V8 keeps committed but free at that GC
   * (heapTotal - heapUsed): pages V8 holds for reuse, which swing by tens of MiB between GCs at an
   * unchanged live heap and say nothing of growth.
   */
  rssNetKiB: Record<string, number>;
  measurements: number;
}

/**
 * Forced full GCs (SIGUSR2, see gc-on-signal.mjs) every `everyMs` from now to `untilMs`
 * (performance.now()), at least one: per process the smallest RSS within `windowMs` after each, and
 * the live heap each reported on `output` (the server's captured output), the lowest of all. Native
 * memory the allocator keeps moves RSS by tens of MiB at an unchanged heap, and comes back down:
 * the lowest over several collections is the level to compare, at both ends alike.
 */
export async function afterGc(pids: Record<string, number>, output: () => string, untilMs: number, everyMs = 2000, windowMs = 1000): Promise<AfterGc> {
  const out: AfterGc = { rssKiB: {}, heapBytes: {}, rssNetKiB: {}, measurements: 0 };
  do {
    const from = output().length;
    const low: Record<string, number> = {};
    for (const pid of Object.values(pids)) {
      try {
        process.kill(pid, 'SIGUSR2');
      } catch {
        // gone: no figure for it, which the caller reports
      }
    }
    const end = performance.now() + windowMs;
    while (performance.now() < end) {
      await sleep(50);
      for (const [name, pid] of Object.entries(pids)) {
        const kib = rssKiB(pid);
        if (kib !== null) low[name] = Math.min(low[name] ?? Infinity, kib);
      }
    }
    for (const [name, kib] of Object.entries(low)) out.rssKiB[name] = Math.min(out.rssKiB[name] ?? Infinity, kib);
    for (const m of output().slice(from).matchAll(/\[gc-on-signal\] pid=(\d+) heapUsed=(\d+) heapTotal=(\d+)/g)) {
      const name = Object.keys(pids).find((k) => pids[k] === Number(m[1]));
      if (!name) continue;
      out.heapBytes[name] = Math.min(out.heapBytes[name] ?? Infinity, Number(m[2]));
      if (low[name] !== undefined) out.rssNetKiB[name] = Math.min(out.rssNetKiB[name] ?? Infinity, low[name] - (Number(m[3]) - Number(m[2])) / 1024);
    }
    out.measurements++;
    if (performance.now() + everyMs - windowMs >= untilMs) break;
    await sleep(everyMs - windowMs);
  } while (performance.now() < untilMs);
  return out;
}

export type StoreAt = { sqlitePath: string } | { databaseUrl: string; databaseSchema: string };

/** A store object on the same history the service uses, for reading it around the service. */
export function openStoreAt(at: StoreAt): HistoryStore {
  return 'sqlitePath' in at ? new SqliteHistoryStore({ path: at.sqlitePath }) : new PostgresHistoryStore({ connectionString: at.databaseUrl, schema: at.databaseSchema });
}

/** The stored history of `model`, read by the store class directly, not through the service. */
export async function readStored(at: StoreAt, model: string): Promise<BarSeries> {
  const store = openStoreAt(at);
  try {
    return (await store.load(model)).bars;
  } finally {
    await store.close();
  }
}

export interface StoredCheck {
  problems: string[];
  ackedStored: number;
  unknownStored: number;
  unknownAbsent: number;
}

function sameRow(stored: BarSeries, i: number, r: Row): boolean {
  return (
    Object.is(stored.open[i], r[1]) && Object.is(stored.high[i], r[2]) && Object.is(stored.low[i], r[3]) && Object.is(stored.close[i], r[4]) && Object.is(stored.volume[i], r[5])
  );
}

function describeStored(stored: BarSeries, i: number): string {
  return JSON.stringify([stored.date[i], stored.open[i], stored.high[i], stored.low[i], stored.close[i], stored.volume[i]]);
}

/**
 * Checks `stored` against what was sent: the seed and every acknowledged bar present once with its
 * exact values; a bar whose request got no answer absent, or present with the values sent; nothing
 * else stored. Returns the problems (at most `limit`), empty when all holds.
 */
export function checkStored(stored: BarSeries, sent: { seed: readonly Row[]; acked: readonly Row[]; unknown: readonly Row[] }, limit = 20): StoredCheck {
  const problems: string[] = [];
  const say = (p: string) => {
    if (problems.length < limit) problems.push(p);
  };
  const at = new Map<string, number>();
  for (let i = 0; i < stored.date.length; i++) {
    if (i > 0 && !(stored.date[i] > stored.date[i - 1])) say(`stored dates not strictly increasing at ${i}: ${stored.date[i - 1]}, ${stored.date[i]}`);
    if (at.has(stored.date[i])) say(`date ${stored.date[i]} stored twice`);
    at.set(stored.date[i], i);
  }
  const sentDates = new Set<string>();
  const mustHave = (r: Row, what: string) => {
    sentDates.add(r[0]);
    const i = at.get(r[0]);
    if (i === undefined) say(`${what} bar ${r[0]} is not stored`);
    else if (!sameRow(stored, i, r)) say(`${what} bar ${r[0]} stored as ${describeStored(stored, i)}, sent ${JSON.stringify(r)}`);
  };
  for (const r of sent.seed) mustHave(r, 'seed');
  for (const r of sent.acked) mustHave(r, 'acknowledged');
  let unknownStored = 0;
  for (const r of sent.unknown) {
    sentDates.add(r[0]);
    const i = at.get(r[0]);
    if (i === undefined) continue;
    unknownStored++;
    if (!sameRow(stored, i, r)) say(`unanswered bar ${r[0]} stored as ${describeStored(stored, i)}, sent ${JSON.stringify(r)}`);
  }
  for (const d of at.keys()) if (!sentDates.has(d)) say(`bar ${d} stored but never sent`);
  return { problems, ackedStored: sent.acked.filter((r) => at.has(r[0])).length, unknownStored, unknownAbsent: sent.unknown.length - unknownStored };
}

export interface ParityResult {
  status?: number;
  worker?: string;
  error?: string;
  /** The answer's history block (a read-only request: added 0). */
  history?: { bars: number; added: number; replaced: number; unchanged: number };
  compared: number;
  /** Bars whose served forecast is not Object.is-equal to the batch one, with both values (at most 10). */
  mismatches: { date: string; served: unknown; batch: number | null }[];
  mismatchCount: number;
}

/**
 * Every stored bar in one request on a fresh connection, against the batch features of the stored
 * history through the bundle's pipeline (an independent path from the service's incremental state).
 */
export async function parity(url: string, pipeline: FeaturePipeline, stored: BarSeries, timeoutMs = 120_000): Promise<ParityResult> {
  const n = stored.date.length;
  const a = await post(url, '/forecast', rowsBody(seriesRows(stored)), false, timeoutMs);
  const out: ParityResult = { status: a.status, worker: a.worker, error: a.error, history: a.body?.history, compared: 0, mismatches: [], mismatchCount: 0 };
  if (a.status !== 200) {
    if (a.body?.error) out.error = JSON.stringify(a.body.error);
    return out;
  }
  const served: unknown[] = a.body.y_pred;
  const dates: string[] = a.body.forecasts.map((f: { date: string }) => f.date);
  const batch = expectedForecasts(pipeline, stored, 0, n);
  out.compared = n;
  for (let i = 0; i < n; i++) {
    if (Object.is(served[i], batch[i]) && dates[i] === stored.date[i]) continue;
    out.mismatchCount++;
    if (out.mismatches.length < 10) out.mismatches.push({ date: stored.date[i], served: served[i], batch: batch[i] });
  }
  if (served.length !== n) out.mismatchCount += Math.abs(served.length - n);
  return out;
}

/** Counts by key, printed as `k=v` sorted by key. */
export class Tally {
  private readonly m = new Map<string, number>();
  add(k: string | number | undefined, by = 1): void {
    const key = String(k);
    this.m.set(key, (this.m.get(key) ?? 0) + by);
  }
  get(k: string | number): number {
    return this.m.get(String(k)) ?? 0;
  }
  keys(): string[] {
    return [...this.m.keys()];
  }
  total(): number {
    let t = 0;
    for (const v of this.m.values()) t += v;
    return t;
  }
  toString(): string {
    return [...this.m.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(' ') || 'none';
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
