/**
 * The benchmarks' results collector. Each bench records named figures (and tables, charts, notes)
 * here as well as printing them; bench/index.ts then writes BENCHMARKS.json and BENCHMARKS.md from
 * one run. A figure may carry a target: the files say whether it was met or MISSED. Benchmarks
 * never assert: a missed target is reported, not thrown.
 *
 *   import { results } from './results.js';
 *   results.figure({ id: 'startup.1m', label: 'start-up, 1,000,000 bars', value: 4.2, unit: 's', target: { op: '<', value: 5, unit: 's' } });
 *
 * Sections: one per bench file (`serve` for bench/serve.bench.ts), begun and ended by bench/index.ts.
 * `npm run bench NAME` replaces only the sections it ran in an existing BENCHMARKS.json (merge), so
 * one bench can be re-run after a change; `npm run bench` regenerates all. A bench run directly
 * (`npx tsx bench/tree.bench.ts`) records into a section that is never written.
 *
 * A bench that measures in child processes gives them `sinkEnv()`; each child's records are
 * appended to a file as JSON lines and taken in by `absorbSink()` once the child has exited.
 */
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir, totalmem, type as osType } from 'node:os';
import { join } from 'node:path';

export type TargetOp = '<' | '<=' | '>' | '>=';

export interface Target {
  op: TargetOp;
  value: number;
  unit: string;
}

export interface Figure {
  /** Unique within its section; stable across runs (the merge and the targets table use it). */
  id: string;
  label: string;
  /** null: not measured this run (skipped); `notes` says why. */
  value: number | null;
  unit: string;
  target?: Target;
  /** The command that produced the figure. */
  command: string;
  notes?: string;
  /** Significant digits shown (default: 3, at least the integer part). */
  digits?: number;
  /** Filled in when written: whether the target is met (null: no target or no value). */
  met?: boolean | null;
}

export interface Table {
  id: string;
  title: string;
  columns: string[];
  rows: (string | number | null)[][];
  command: string;
  notes?: string;
}

export interface Chart {
  id: string;
  title: string;
  /** PNG and SVG paths relative to the repository root. */
  png: string;
  svg?: string;
}

export interface Machine {
  cores: number;
  cpu: string;
  ramGiB: number;
  node: string;
  kernel: string;
  /** The load average when the section began (1, 5, 15 minutes): other work on the machine. */
  loadAverage?: number[];
}

export interface Section {
  name: string;
  title: string;
  command: string;
  /** ISO date-time the section began. */
  date: string;
  durationS: number;
  machine: Machine;
  status: 'ok' | 'failed';
  error?: string;
  figures: Figure[];
  tables: Table[];
  charts: Chart[];
  notes: string[];
}

export interface BenchmarksFile {
  format: 1;
  /** When the newest section was written. */
  updated: string;
  sections: Record<string, Section>;
}

export const SINK_ENV = 'BENCH_RESULTS_SINK';

export function machine(): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1].trim();
  } catch {
    // not Linux
  }
  let load: number[] | undefined;
  try {
    load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  } catch {
    load = undefined;
  }
  return {
    cores: availableParallelism(),
    cpu,
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: `${osType()} ${release()}`,
    ...(load ? { loadAverage: load } : {}),
  };
}

type Record_ = { kind: 'figure'; data: Figure } | { kind: 'table'; data: Table } | { kind: 'chart'; data: Chart } | { kind: 'note'; data: string };

class Collector {
  private current: Section | null = null;
  private started = 0;
  readonly done: Section[] = [];

  /** Begins the section of bench `name` (bench/index.ts). */
  begin(name: string, title: string): void {
    this.current = {
      name,
      title,
      command: `npm run bench ${name}`,
      date: new Date().toISOString(),
      durationS: 0,
      machine: machine(),
      status: 'ok',
      figures: [],
      tables: [],
      charts: [],
      notes: [],
    };
    this.started = performance.now();
  }

  /** Ends the current section (bench/index.ts). */
  end(error?: unknown): Section | null {
    const s = this.current;
    if (!s) return null;
    s.durationS = Math.round((performance.now() - this.started) / 100) / 10;
    if (error !== undefined) {
      s.status = 'failed';
      s.error = String((error as Error)?.message ?? error).split('\n')[0].slice(0, 300);
    }
    this.done.push(s);
    this.current = null;
    return s;
  }

  private section(): Section {
    if (!this.current) {
      const name = process.env[SINK_ENV] ? 'child' : 'direct';
      this.begin(name, name);
    }
    return this.current!;
  }

  /** The command of the current section (the default for each record). */
  get command(): string {
    return process.env.BENCH_COMMAND ?? this.section().command;
  }

  private add(r: Record_): void {
    const sink = process.env[SINK_ENV];
    if (sink) appendFileSync(sink, JSON.stringify(r) + '\n');
    const s = this.section();
    if (r.kind === 'figure') {
      const i = s.figures.findIndex((f) => f.id === r.data.id);
      if (i >= 0) s.figures[i] = r.data;
      else s.figures.push(r.data);
    } else if (r.kind === 'table') {
      const i = s.tables.findIndex((t) => t.id === r.data.id);
      if (i >= 0) s.tables[i] = r.data;
      else s.tables.push(r.data);
    } else if (r.kind === 'chart') s.charts.push(r.data);
    else s.notes.push(r.data);
  }

  figure(f: Omit<Figure, 'command' | 'met'> & { command?: string }): Figure {
    const fig: Figure = { ...f, command: f.command ?? this.command };
    if (fig.value !== null && !Number.isFinite(fig.value)) fig.value = null;
    this.add({ kind: 'figure', data: fig });
    return fig;
  }

  table(t: Omit<Table, 'command'> & { command?: string }): void {
    this.add({ kind: 'table', data: { ...t, command: t.command ?? this.command } });
  }

  chart(c: Chart): void {
    this.add({ kind: 'chart', data: c });
  }

  note(text: string): void {
    this.add({ kind: 'note', data: text });
  }

  /** Environment for a child process whose records this process takes in with `absorbSink`. */
  sinkEnv(): { env: Record<string, string>; absorb: () => void } {
    const dir = mkdtempSync(join(tmpdir(), 'bench-sink-'));
    const file = join(dir, 'records.jsonl');
    return {
      env: { [SINK_ENV]: file, BENCH_COMMAND: this.command },
      absorb: () => {
        if (existsSync(file)) {
          for (const line of readFileSync(file, 'utf8').split('\n')) if (line) this.add(JSON.parse(line) as Record_);
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }

  /** Figures recorded so far in this process (all sections), by section name. */
  figures(section?: string): Figure[] {
    const all = [...this.done, ...(this.current ? [this.current] : [])];
    return all.filter((s) => section === undefined || s.name === section).flatMap((s) => s.figures);
  }
}

export const results = new Collector();

// ------------------------------------------------------------------------------------------
// Targets and units

const SCALE: Record<string, [string, number]> = {
  ns: ['time', 1e-9],
  µs: ['time', 1e-6],
  us: ['time', 1e-6],
  ms: ['time', 1e-3],
  s: ['time', 1],
  B: ['bytes', 1],
  KiB: ['bytes', 1024],
  MiB: ['bytes', 1024 ** 2],
  GiB: ['bytes', 1024 ** 3],
  '×': ['ratio', 1],
  ratio: ['ratio', 1],
  '': ['ratio', 1],
};

/** `value` of unit `from` in unit `to`; NaN when they do not convert. */
export function convert(value: number, from: string, to: string): number {
  if (from === to) return value;
  const a = SCALE[from];
  const b = SCALE[to];
  if (!a || !b || a[0] !== b[0]) return Number.NaN;
  return (value * a[1]) / b[1];
}

/** Whether a figure meets its target (null: no target, no value, or units that do not convert). */
export function targetMet(f: Pick<Figure, 'value' | 'unit' | 'target'>): boolean | null {
  if (!f.target || f.value === null) return null;
  const t = convert(f.target.value, f.target.unit, f.unit);
  if (Number.isNaN(t)) return null;
  switch (f.target.op) {
    case '<':
      return f.value < t;
    case '<=':
      return f.value <= t;
    case '>':
      return f.value > t;
    case '>=':
      return f.value >= t;
  }
}

export function formatNumber(x: number | null, digits = 3): string {
  if (x === null || !Number.isFinite(x)) return 'n/a';
  const abs = Math.abs(x);
  if (abs >= 10 ** digits || Number.isInteger(x)) return Math.round(x).toLocaleString('en-US');
  if (abs === 0) return '0';
  const decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(abs)));
  return x.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

const showUnit = (u: string) => (u === '' || u === 'ratio' ? '' : u === '×' ? '×' : ` ${u}`);
export const formatValue = (f: Pick<Figure, 'value' | 'unit' | 'digits'>) => `${formatNumber(f.value, f.digits)}${f.value === null ? '' : showUnit(f.unit)}`;
export const formatTarget = (t: Target) => `${t.op.replace('<=', '≤').replace('>=', '≥')} ${Number(t.value.toPrecision(6)).toLocaleString('en-US', { maximumFractionDigits: 6 })}${showUnit(t.unit)}`;

// ------------------------------------------------------------------------------------------
// Files

/** Merges this run's sections into the previous file (a subset run replaces only its sections). */
export function mergeSections(previous: BenchmarksFile | null, sections: Section[], full: boolean): BenchmarksFile {
  const merged: Record<string, Section> = full || !previous ? {} : { ...previous.sections };
  for (const s of sections) {
    for (const f of s.figures) f.met = targetMet(f);
    merged[s.name] = s;
  }
  return { format: 1, updated: new Date().toISOString(), sections: merged };
}

export function readBenchmarksFile(path: string): BenchmarksFile | null {
  if (!existsSync(path)) return null;
  try {
    const f = JSON.parse(readFileSync(path, 'utf8')) as BenchmarksFile;
    return f.format === 1 && f.sections ? f : null;
  } catch {
    return null;
  }
}

const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const day = (iso: string) => iso.replace('T', ' ').replace(/:\d\d\.\d+Z$/, ' UTC');

function machineLine(m: Machine): string {
  const load = m.loadAverage ? `; load average at start ${m.loadAverage.map((x) => x.toFixed(2)).join(' / ')}` : '';
  return `${m.cores} cores (os.availableParallelism()), ${m.cpu}, ${m.ramGiB} GiB RAM, Node ${m.node}, ${m.kernel}${load}`;
}

function status(f: Figure): string {
  const met = f.met ?? targetMet(f);
  if (met === null) return f.target ? (f.value === null ? 'not measured' : '?') : '';
  return met ? 'met' : '**MISSED**';
}

/** BENCHMARKS.md from the merged file. `order` gives the section order (others follow by name). */
export function renderMarkdown(file: BenchmarksFile, order: readonly string[] = []): string {
  const names = Object.keys(file.sections).sort((a, b) => {
    const ia = order.indexOf(a);
    const ib = order.indexOf(b);
    return (ia < 0 ? 1e9 : ia) - (ib < 0 ? 1e9 : ib) || a.localeCompare(b);
  });
  const sections = names.map((n) => file.sections[n]);
  const machines = [...new Set(sections.map((s) => machineLine({ ...s.machine, loadAverage: undefined })))];
  const out: string[] = [];
  out.push('# Benchmarks', '');
  out.push(
    '_Generated by `npm run bench` (every bench, one run) or `npm run bench NAME` (re-runs bench/NAME.bench.ts and replaces only its section below); do not edit by hand. ' +
      'The same figures, machine-readable: [BENCHMARKS.json](BENCHMARKS.json)._',
    '',
  );
  out.push(`- Updated: ${day(file.updated)}`);
  for (const m of machines) out.push(`- Machine: ${m}`);
  out.push(
    '- Benchmarks print and record; they never assert. This machine is shared (other work runs beside the benches; see each section\'s load average): ' +
      'absolute figures move between runs, so compare figures as ratios **within one section** (one run), as the headline ratios do.',
    '',
  );

  const targeted = sections.flatMap((s) => s.figures.filter((f) => f.target).map((f) => ({ s, f })));
  if (targeted.length > 0) {
    const missed = targeted.filter(({ f }) => (f.met ?? targetMet(f)) === false).length;
    out.push('## Targets', '');
    out.push(`${targeted.length - missed} of ${targeted.length} targets met${missed ? `, **${missed} MISSED**` : ''}.`, '');
    out.push('| bench | figure | value | target | status |', '| --- | --- | ---: | --- | --- |');
    for (const { s, f } of targeted) out.push(`| [${s.name}](#${anchor(s)}) | ${esc(f.label)} | ${formatValue(f)} | ${formatTarget(f.target!)} | ${status(f)} |`);
    out.push('');
  }

  for (const s of sections) {
    out.push(`## ${s.title}`, '');
    out.push(`\`${s.command}\` · ${day(s.date)} · ${s.durationS} s${s.status === 'failed' ? ` · **FAILED**: ${esc(s.error ?? '')}` : ''}`);
    out.push('');
    out.push(`Machine: ${machineLine(s.machine)}`, '');
    if (s.figures.length > 0) {
      out.push('| figure | value | target | status | command | notes |', '| --- | ---: | --- | --- | --- | --- |');
      for (const f of s.figures)
        out.push(`| ${esc(f.label)} | ${formatValue(f)} | ${f.target ? formatTarget(f.target) : ''} | ${status(f)} | \`${esc(f.command)}\` | ${esc(f.notes ?? '')} |`);
      out.push('');
    }
    for (const t of s.tables) {
      out.push(`**${esc(t.title)}** (\`${esc(t.command)}\`)`, '');
      out.push(`| ${t.columns.map(esc).join(' | ')} |`, `| ${t.columns.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`);
      for (const r of t.rows) out.push(`| ${r.map((c) => (c === null ? '' : typeof c === 'number' ? formatNumber(c) : esc(c))).join(' | ')} |`);
      out.push('');
      if (t.notes) out.push(t.notes, '');
    }
    for (const c of s.charts) out.push(`![${esc(c.title)}](${c.png})`, '');
    for (const n of s.notes) out.push(`- ${n}`);
    if (s.notes.length) out.push('');
  }
  return out.join('\n');
}

function anchor(s: Section): string {
  return s.title
    .toLowerCase()
    .replace(/[^\p{L}\p{N} -]/gu, '')
    .trim()
    .replace(/ /g, '-');
}

export function writeBenchmarkFiles(jsonPath: string, mdPath: string, file: BenchmarksFile, order: readonly string[]): void {
  writeFileSync(jsonPath, JSON.stringify(file, null, 2) + '\n');
  writeFileSync(mdPath, renderMarkdown(file, order) + '\n');
}
