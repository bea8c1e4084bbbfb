/**
 * Summaries of V8 CPU profiles (`node --cpu-prof`): the functions with the most self time and the
 * most inclusive time (self plus everything they called; a sample counts once per function however
 * deep the recursion), each with its share of the profiled time, source file and line.
 *
 *   npx tsx bench/cpuprofile.ts FILE.cpuprofile [--top 25] [--filter src/]
 *
 * `--filter` keeps only functions whose file contains the text in the inclusive table (the self table
 * always shows everything: a hot built-in is the answer as often as a hot project function).
 * Used by bench/profile.ts, which runs the scenarios whose targets miss under the profiler.
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  /** `name (file:line)`. */
  name: string;
  selfMs: number;
  totalMs: number;
  selfShare: number;
  totalShare: number;
}

export interface ProfileSummary {
  file: string;
  /** Wall time covered by the samples (ms). */
  profiledMs: number;
  /** Time in the `(idle)` pseudo-function: the event loop waiting (ms). */
  idleMs: number;
  self: FunctionTime[];
  inclusive: FunctionTime[];
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const maps = new Map<string, SourceMap | null>();

/** The source map beside a compiled file (`FILE.map`, as tsc and esbuild write them), if any. */
function mapOf(file: string): SourceMap | null {
  let m = maps.get(file);
  if (m === undefined) {
    m = null;
    if (existsSync(`${file}.map`)) {
      try {
        m = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
      } catch {
        m = null;
      }
    }
    maps.set(file, m);
  }
  return m;
}

/**
 * `name (file:line)`, the line 1-based. A compiled file with a source map is shown as the TypeScript
 * file and line it came from. (Code run through tsx has no map on disk: its lines are the
 * transformed code's, often 1; bench/profile.ts profiles a compiled build for that reason.)
 */
function frameName(f: CallFrame): string {
  const name = f.functionName || '(anonymous)';
  if (!f.url) return name;
  let file = f.url.startsWith('file://') ? fileURLToPath(f.url) : f.url;
  let line = f.lineNumber + 1;
  const map = file.startsWith('/') ? mapOf(file) : null;
  if (map) {
    const e = map.findEntry(f.lineNumber, f.columnNumber) as { originalSource?: string; originalLine?: number };
    if (e && e.originalSource) {
      const src = e.originalSource.startsWith('file://') ? fileURLToPath(e.originalSource) : resolve(dirname(file), e.originalSource);
      file = src;
      line = (e.originalLine ?? 0) + 1;
    }
  }
  if (file.startsWith(ROOT)) file = relative(ROOT, file);
  file = file.replace(/^.*node_modules\//, 'node_modules/');
  return `${name} (${file}:${line})`;
}

/**
 * Self and inclusive time per function of one profile. `window` keeps only the samples taken between
 * two instants of the machine's monotonic clock (µs, as `process.hrtime.bigint() / 1000n` reads it in
 * any process: V8 stamps samples with the same clock), e.g. the load phase of a server profiled from
 * its start.
 */
export function summarizeProfile(file: string, top = 25, filter?: string, window?: { fromUs: number; toUs: number }): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = new Map<number, string>();
  for (const n of p.nodes) key.set(n.id, frameName(n.callFrame));

  const self = new Map<string, number>();
  const total = new Map<string, number>();
  // The delta after a sample is the time it stands for (V8 gives the delta before the next one).
  let profiled = 0;
  let idle = 0;
  let at = p.startTime;
  for (let s = 0; s < p.samples.length; s++) {
    at += p.timeDeltas[s] ?? 0;
    const dt = (p.timeDeltas[s + 1] ?? 0) / 1000;
    if (dt <= 0) continue;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    const id = p.samples[s];
    const k = key.get(id)!;
    profiled += dt;
    if (k === '(idle)') {
      idle += dt;
      continue;
    }
    self.set(k, (self.get(k) ?? 0) + dt);
    const seen = new Set<string>();
    for (let node: number | undefined = id; node !== undefined; node = parent.get(node)) {
      const name = key.get(node)!;
      if (name === '(root)' || seen.has(name)) continue;
      seen.add(name);
      total.set(name, (total.get(name) ?? 0) + dt);
    }
  }
  const busy = Math.max(1e-9, profiled - idle);
  const rows = (m: Map<string, number>, keep: (name: string) => boolean) =>
    [...m.entries()]
      .filter(([name]) => keep(name))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name]) => ({ name, selfMs: self.get(name) ?? 0, totalMs: total.get(name) ?? 0, selfShare: (self.get(name) ?? 0) / busy, totalShare: (total.get(name) ?? 0) / busy }));
  const pseudo = (name: string) => !/^\((program|garbage collector|idle)\)/.test(name);
  return {
    file,
    profiledMs: profiled,
    idleMs: idle,
    self: rows(self, () => true),
    inclusive: rows(total, (name) => pseudo(name) && (!filter || name.includes(filter))),
  };
}

/** The summary as text (busy = profiled time minus idle). */
export function formatSummary(s: ProfileSummary, title = s.file): string {
  const pct = (x: number) => `${(100 * x).toFixed(1).padStart(5)} %`;
  const ms = (x: number) => `${x.toFixed(0).padStart(7)} ms`;
  const lines = [`${title}: ${s.profiledMs.toFixed(0)} ms profiled, ${(s.profiledMs - s.idleMs).toFixed(0)} ms busy (shares are of busy time)`];
  lines.push('  self time:');
  for (const f of s.self) lines.push(`    ${ms(f.selfMs)} ${pct(f.selfShare)}  ${f.name}`);
  lines.push('  inclusive time:');
  for (const f of s.inclusive) lines.push(`    ${ms(f.totalMs)} ${pct(f.totalShare)}  ${f.name}`);
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const opt = (name: string) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  const top = Number(opt('--top') ?? 25);
  const filter = opt('--filter');
  if (args.length === 0) {
    console.error('usage: npx tsx bench/cpuprofile.ts FILE.cpuprofile [--top N] [--filter TEXT]');
    process.exit(2);
  }
  for (const f of args) console.log(formatSummary(summarizeProfile(f, top, filter)));
}
