/**
 * The fuzz suite's own reading of the documented request formats (docs/serving.md and the routes'
 * JSON schemas), written without the service's decoders: given the bytes a request carried, which
 * model it names and which bars it holds, or that it is invalid. With it the suite keeps its own
 * copy of every model's expected history, so it can tell whether the service stored exactly what a
 * valid request held and nothing of an invalid one, and whether the counts it answered are right.
 *
 * Where this reading and the service disagree on a clean request (a valid key, a JSON content
 * type, a well-formed URL) the suite reports it: either the service refuses what its documentation
 * accepts, or it accepts (and stores) what the documentation refuses.
 */
import type { Bar } from '../../src/data/bars.js';

export const BAR_FIELDS = ['date', 'open', 'high', 'low', 'close', 'volume'] as const;
const FIELD_SET: ReadonlySet<string> = new Set(BAR_FIELDS);
const VALUE_FIELDS = ['open', 'high', 'low', 'close', 'volume'] as const;
const DATATYPES = new Set(['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES']);
const NUMERIC_TYPES = new Set(['UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64']);
const OUTPUTS = new Set(['y_pred', 'date', 'reason']);

export const MAX_DEPTH = 32;
export const MAX_MEMBERS = 1024;
/** Longest string cell read as a date or a number; longest name looked at as a column. */
const MAX_CELL = 64;
/** Epoch milliseconds accepted: 1973-03-03 (earlier ones are likely seconds) to 3000-01-01. */
const MIN_EPOCH = 1e11;
const END_EPOCH = Date.UTC(3000, 0, 1);

/** A model name as long as a model name may be (bundle folder names: 1 to 128 characters), beyond any router default. */
export const LONG_MODEL = `m${'x'.repeat(119)}`;
/** Models served by the fuzz app: versions oldest first. */
export const MODELS: Readonly<Record<string, readonly string[]>> = { acme: ['1', '2'], beta: ['1'], [LONG_MODEL]: ['1'] };
export const DEFAULT_MODEL = 'acme';

export type Verdict<T> = { ok: true; value: T } | { ok: false; why: string };
const no = (why: string): { ok: false; why: string } => ({ ok: false, why });
const yes = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const own = (o: Obj, k: string) => Object.hasOwn(o, k);
/** JSON schema lengths count code points. */
const cpLength = (s: string) => [...s].length;
const isCell = (v: unknown) => v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));

/** Nesting depth and members per object, counted on the text (duplicate keys count): the service bounds both before parsing. */
export function withinComplexity(text: string): boolean {
  let depth = 0;
  const commas: number[] = [];
  const isObject: boolean[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    } else if (c === '[' || c === '{') {
      depth++;
      if (depth > MAX_DEPTH) return false;
      commas[depth] = 0;
      isObject[depth] = c === '{';
    } else if (c === ']' || c === '}') {
      if (depth > 0) depth--;
    } else if (c === ',' && depth > 0 && isObject[depth]) {
      commas[depth]++;
      if (commas[depth] + 1 > MAX_MEMBERS) return false;
    }
  }
  return true;
}

/** The body as the service reads it: UTF-8 (invalid sequences replaced), parsed once, bounded in depth and width. */
export function parseBody(bytes: Buffer): Verdict<unknown> {
  const text = bytes.toString('utf8');
  if (text.trim() === '' && !/[^\s]/.test(text)) return no('empty body');
  if (!withinComplexity(text)) return no('too complex');
  try {
    return yes(JSON.parse(text));
  } catch {
    return no('not JSON');
  }
}

// ---------------------------------------------------------------------------------------------
// Cells

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/** A bar date: epoch milliseconds (the UTC day) or an ISO-8601 string (the calendar date as written). */
export function readDate(v: unknown): string | null {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < MIN_EPOCH || v >= END_EPOCH) return null;
    return new Date(v).toISOString().slice(0, 10);
  }
  if (typeof v !== 'string' || v.length > MAX_CELL) return null;
  const m = ISO.exec(v.trim());
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (y < 1800 || y > 2999) return null;
  const real = new Date(Date.UTC(2000, mo - 1, d));
  // Year 2000 is a leap year: check February 29th against the real year separately.
  if (mo < 1 || mo > 12 || real.getUTCMonth() !== mo - 1) return null;
  if (mo === 2 && d === 29 && !((y % 4 === 0 && y % 100 !== 0) || y % 400 === 0)) return null;
  if (m[4] !== undefined && (Number(m[4]) > 23 || Number(m[5]) > 59 || (m[6] !== undefined && Number(m[6]) > 60))) return null;
  return `${m[1]}-${m[2]}-${m[3]}`;
}

function readValue(v: unknown, field: (typeof VALUE_FIELDS)[number]): number | null {
  if (typeof v !== 'number' || !Number.isFinite(v)) return null;
  if (field === 'volume') return v < 0 ? null : v;
  return v > 0 ? v : null;
}

/** A bar from its six cells, or why not. */
function readBar(cells: Record<(typeof BAR_FIELDS)[number], unknown>): Verdict<Bar> {
  const date = readDate(cells.date);
  if (date === null) return no('bad date');
  const bar: Bar = { date, open: 0, high: 0, low: 0, close: 0, volume: 0 };
  for (const f of VALUE_FIELDS) {
    const x = readValue(cells[f], f);
    if (x === null) return no(`bad ${f}`);
    bar[f] = x;
  }
  if (bar.high < bar.low) return no('high below low');
  return yes(bar);
}

function sorted(bars: Bar[]): Verdict<Bar[]> {
  for (let i = 1; i < bars.length; i++) if (!(bars[i - 1].date < bars[i].date)) return no('dates not strictly increasing');
  return yes(bars);
}

/** Column names → position of each bar field, or null (unknown, repeated or missing name). */
function columnMap(names: readonly unknown[], dateOptional: boolean): Map<string, number> | null {
  const map = new Map<string, number>();
  for (let j = 0; j < names.length; j++) {
    const n = names[j];
    if (typeof n !== 'string') return null;
    const key = n.length <= MAX_CELL ? n.trim().toLowerCase() : '';
    if (!FIELD_SET.has(key) || map.has(key)) return null;
    map.set(key, j);
  }
  for (const f of BAR_FIELDS) if (!map.has(f) && !(f === 'date' && dateOptional)) return null;
  return map;
}

// ---------------------------------------------------------------------------------------------
// Protocols

/** A pandas split frame (`/forecast`, MLflow `dataframe_split`). */
export function readSplit(f: unknown): Verdict<Bar[]> {
  if (!isObj(f)) return no('frame not an object');
  for (const k of Object.keys(f)) if (k !== 'columns' && k !== 'index' && k !== 'data') return no(`unknown key ${k}`);
  if (!own(f, 'columns') || !own(f, 'data')) return no('columns or data missing');
  const { columns, data } = f;
  if (!Array.isArray(columns) || columns.length < 1 || columns.length > 64) return no('columns');
  if (!columns.every((c) => typeof c === 'string' && cpLength(c) <= 64)) return no('column names');
  const hasIndex = own(f, 'index');
  const index = f.index;
  if (hasIndex && (!Array.isArray(index) || !index.every(isCell))) return no('index');
  if (!Array.isArray(data) || data.length < 1) return no('data');
  if (!data.every((row) => Array.isArray(row) && row.every(isCell))) return no('data cells');
  const hasDate = columns.some((c) => typeof c === 'string' && c.length <= MAX_CELL && c.trim().toLowerCase() === 'date');
  if (!hasDate && !hasIndex) return no('no dates');
  const map = columnMap(columns, !hasDate);
  if (!map) return no('columns');
  if (hasIndex && (index as unknown[]).length !== data.length) return no('index length');
  const bars: Bar[] = [];
  for (let r = 0; r < data.length; r++) {
    const row = data[r] as unknown[];
    if (row.length !== columns.length) return no('row width');
    const cell = (f: string) => row[map.get(f)!];
    const bar = readBar({
      date: hasDate ? cell('date') : (index as unknown[])[r],
      open: cell('open'),
      high: cell('high'),
      low: cell('low'),
      close: cell('close'),
      volume: cell('volume'),
    });
    if (!bar.ok) return bar;
    bars.push(bar.value);
  }
  return sorted(bars);
}

function readRecords(records: unknown): Verdict<Bar[]> {
  if (!Array.isArray(records) || records.length < 1) return no('records');
  const bars: Bar[] = [];
  for (const rec of records) {
    if (!isObj(rec)) return no('record not an object');
    const keys = Object.keys(rec);
    if (keys.length > 64) return no('record too wide');
    if (!keys.every((k) => isCell(rec[k]))) return no('record cells');
    const cells = new Map<string, unknown>();
    for (const k of keys) {
      const name = k.length <= MAX_CELL ? k.trim().toLowerCase() : '';
      if (!FIELD_SET.has(name) || cells.has(name)) return no(`record key ${k}`);
      cells.set(name, rec[k]);
    }
    if (cells.size !== 6) return no('record fields missing');
    const bar = readBar(Object.fromEntries(cells) as Record<(typeof BAR_FIELDS)[number], unknown>);
    if (!bar.ok) return bar;
    bars.push(bar.value);
  }
  return sorted(bars);
}

export function readMlflow(b: unknown): Verdict<Bar[]> {
  if (!isObj(b)) return no('not an object');
  const allowed = new Set(['dataframe_split', 'dataframe_records', 'instances', 'inputs', 'params']);
  for (const k of Object.keys(b)) if (!allowed.has(k)) return no(`unknown key ${k}`);
  if (own(b, 'params') && !isObj(b.params)) return no('params');
  const given = ['dataframe_split', 'dataframe_records', 'instances', 'inputs'].filter((k) => own(b, k));
  if (given.length !== 1) return no('not exactly one input');
  // The schema is checked on every key before the handler refuses tensors.
  if (own(b, 'dataframe_split') && !isObj(b.dataframe_split)) return no('dataframe_split');
  if (given[0] === 'dataframe_split') return readSplit(b.dataframe_split);
  if (given[0] === 'dataframe_records') return readRecords(b.dataframe_records);
  return no('tensor input');
}

interface Tensor {
  name: string;
  shape: number[];
  datatype: string;
  data: unknown[];
  parameters?: Obj;
}

/** A tensor's cells by row and column, checked against its shape, or null. */
function tensorTable(t: Tensor): { rows: number; width: number; cell(r: number, c: number): unknown } | null {
  const { shape, data } = t;
  if (!shape.every((d) => d >= 1)) return null;
  const rows = shape[0];
  const width = shape.length === 2 ? shape[1] : 1;
  if (data.length > 0 && Array.isArray(data[0])) {
    if (shape.length !== 2 || data.length !== rows) return null;
    for (const row of data) if (!Array.isArray(row) || row.length !== width || row.some(Array.isArray)) return null;
    return { rows, width, cell: (r, c) => (data[r] as unknown[])[c] };
  }
  if (data.some(Array.isArray) || rows * width !== data.length) return null;
  return { rows, width, cell: (r, c) => data[r * width + c] };
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function readOip(b: unknown): Verdict<{ bars: Bar[]; replace: boolean }> {
  if (!isObj(b)) return no('not an object');
  if (own(b, 'id') && !(typeof b.id === 'string' && cpLength(b.id) <= 256)) return no('id');
  if (own(b, 'parameters')) {
    if (!isObj(b.parameters)) return no('parameters');
    if (own(b.parameters, 'replace') && typeof b.parameters.replace !== 'boolean') return no('parameters.replace');
  }
  if (!own(b, 'inputs')) return no('no inputs');
  const inputs = b.inputs;
  if (!Array.isArray(inputs) || inputs.length < 1 || inputs.length > 16) return no('inputs');
  for (const t of inputs) {
    if (!isObj(t) || !own(t, 'name') || !own(t, 'shape') || !own(t, 'datatype') || !own(t, 'data')) return no('input fields');
    if (typeof t.name !== 'string' || cpLength(t.name) < 1 || cpLength(t.name) > 64) return no('input name');
    if (!Array.isArray(t.shape) || t.shape.length < 1 || t.shape.length > 2 || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) return no('shape');
    if (typeof t.datatype !== 'string' || !DATATYPES.has(t.datatype)) return no('datatype');
    if (!Array.isArray(t.data)) return no('data');
    if (own(t, 'parameters')) {
      if (!isObj(t.parameters)) return no('input parameters');
      const cols = t.parameters.columns;
      if (own(t.parameters, 'columns') && !(Array.isArray(cols) && cols.length <= 64 && cols.every((c) => typeof c === 'string' && cpLength(c) <= 64)))
        return no('parameters.columns');
    }
  }
  if (own(b, 'outputs')) {
    const o = b.outputs;
    if (!Array.isArray(o) || o.length > 16) return no('outputs');
    for (const x of o) if (!isObj(x) || !own(x, 'name') || typeof x.name !== 'string' || cpLength(x.name) < 1 || cpLength(x.name) > 64) return no('output');
  }
  const tensors = inputs as Tensor[];
  const bars = tensors.length === 1 && tensors[0].shape.length === 2 ? oipTable(tensors[0]) : oipColumns(tensors);
  if (!bars.ok) return bars;
  if (own(b, 'outputs')) {
    const names = (b.outputs as Obj[]).map((x) => x.name as string);
    if (!names.every((n) => OUTPUTS.has(n)) || new Set(names).size !== names.length) return no('outputs');
  }
  const params = b.parameters as Obj | undefined;
  return yes({ bars: bars.value, replace: params !== undefined && own(params, 'replace') && params.replace === true });
}

/** One [n, k] tensor holding the whole table. */
function oipTable(t: Tensor): Verdict<Bar[]> {
  const table = tensorTable(t);
  if (!table) return no('shape and data disagree');
  const cols: unknown[] = t.parameters !== undefined && own(t.parameters, 'columns') && t.parameters.columns !== undefined ? (t.parameters.columns as unknown[]) : [...BAR_FIELDS];
  if (cols.length === 0 || t.shape[1] !== cols.length) return no('columns and shape disagree');
  if (t.datatype !== 'FP64' && t.datatype !== 'BYTES') return no('table datatype');
  const map = columnMap(cols, false);
  if (!map) return no('columns');
  const bytes = t.datatype === 'BYTES';
  const bars: Bar[] = [];
  for (let r = 0; r < table.rows; r++) {
    const cells: Record<string, unknown> = {};
    for (const f of BAR_FIELDS) {
      let v = table.cell(r, map.get(f)!);
      if (bytes && typeof v === 'string') {
        if (f === 'date') {
          if (v.length <= MAX_CELL && /^-?\d+$/.test(v.trim())) v = Number(v.trim());
        } else {
          if (v.length > MAX_CELL || !DECIMAL.test(v.trim())) return no(`bytes ${f}`);
          v = Number(v.trim());
        }
      }
      cells[f] = v;
    }
    const bar = readBar(cells as Record<(typeof BAR_FIELDS)[number], unknown>);
    if (!bar.ok) return bar;
    bars.push(bar.value);
  }
  return sorted(bars);
}

/** One tensor per bar field. */
function oipColumns(tensors: readonly Tensor[]): Verdict<Bar[]> {
  const cols = new Map<string, unknown[]>();
  for (const t of tensors) {
    const name = t.name.trim().toLowerCase();
    if (!FIELD_SET.has(name) || cols.has(name)) return no(`input ${t.name}`);
    if (t.shape.length === 2 && t.shape[1] !== 1) return no('column shape');
    if (name === 'date' ? !['BYTES', 'INT64', 'FP64'].includes(t.datatype) : !NUMERIC_TYPES.has(t.datatype)) return no('column datatype');
    const table = tensorTable(t);
    if (!table) return no('shape and data disagree');
    cols.set(name, Array.from({ length: table.rows }, (_, r) => table.cell(r, 0)));
  }
  if (cols.size !== 6) return no('inputs missing');
  const n = cols.get('date')!.length;
  if ([...cols.values()].some((c) => c.length !== n)) return no('column lengths');
  const bars: Bar[] = [];
  for (let r = 0; r < n; r++) {
    const bar = readBar(Object.fromEntries(BAR_FIELDS.map((f) => [f, cols.get(f)![r]])) as Record<(typeof BAR_FIELDS)[number], unknown>);
    if (!bar.ok) return bar;
    bars.push(bar.value);
  }
  return sorted(bars);
}

// ---------------------------------------------------------------------------------------------
// Expected history

const TOLERANCE = 1e-12;

function sameValue(a: number, b: number): boolean {
  return a === b || Math.abs(a - b) <= TOLERANCE * Math.max(Math.abs(a), Math.abs(b));
}

export interface MergeCounts {
  added: number;
  replaced: number;
  unchanged: number;
}

/** One model's expected stored history: what the service must hold after every acknowledged write. */
export class ExpectedHistory {
  readonly bars = new Map<string, Bar>();
  version: number;

  constructor(initial: readonly Bar[], version: number) {
    for (const b of initial) this.bars.set(b.date, { ...b });
    this.version = version;
  }

  /** What merging `bars` does: counts, or a conflict (a stored bar differs and `replace` is off). */
  plan(bars: readonly Bar[], replace: boolean): MergeCounts | 'conflict' {
    const counts = { added: 0, replaced: 0, unchanged: 0 };
    for (const b of bars) {
      const old = this.bars.get(b.date);
      if (!old) counts.added++;
      else if (VALUE_FIELDS.every((f) => sameValue(old[f], b[f]))) counts.unchanged++;
      else if (replace) counts.replaced++;
      else return 'conflict';
    }
    return counts;
  }

  /** Applies an acknowledged merge: new dates stored, differing bars replaced, same bars kept as stored. */
  apply(bars: readonly Bar[], replace: boolean): MergeCounts {
    const counts = this.plan(bars, replace);
    if (counts === 'conflict') throw new Error('apply() of a conflicting merge');
    for (const b of bars) {
      const old = this.bars.get(b.date);
      if (!old || !VALUE_FIELDS.every((f) => sameValue(old[f], b[f]))) this.bars.set(b.date, { ...b });
    }
    if (counts.added + counts.replaced > 0) this.version++;
    return counts;
  }

  sorted(): Bar[] {
    return [...this.bars.values()].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
  }

  dates(): string[] {
    return [...this.bars.keys()].sort();
  }
}
