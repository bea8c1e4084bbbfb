/**
 * The internal bar table every protocol converts to: validated bars, oldest first, one per date.
 * Bad input is answered with a DataError naming the row (0-based position in the request) and the
 * field, and is rejected before anything touches the stored history.
 */
import { formatIsoDay } from '../data/dates.js';
import type { Bar, BarSeries } from '../data/bars.js';
import { findValueProblem } from '../data/validate.js';
import { DataError } from '../errors.js';

export const BAR_COLUMNS = ['date', 'open', 'high', 'low', 'close', 'volume'] as const;
export type BarColumn = (typeof BAR_COLUMNS)[number];

/**
 * A bar table without a bar, in one wording whoever finds it: these decoders, or first the routes'
 * JSON schemas (`minItems`, worded by ./errors.ts), so that an empty table gets the same answer on
 * every route.
 */
export function noRows(field: 'data' | 'dataframe_records'): DataError {
  const what = field === 'data' ? 'rows' : 'records';
  return new DataError(`${field} has no ${what}: send at least one bar (${BAR_COLUMNS.join(', ')})`, { field }, 422, 'empty');
}

/** Epoch milliseconds below this (1973-03-03) are read as a likely seconds/milliseconds mix-up. */
const MIN_EPOCH_MS = 1e11;
/** 3000-01-01T00:00:00Z: dates are years 1800 to 2999 (ISO) or 1973 to 2999 (epoch ms). */
const END_EPOCH_MS = 32_503_680_000_000;
const MS_PER_DAY = 86_400_000;
/**
 * Longest string cell read as a date or a number. An ISO timestamp with nanoseconds and an offset is
 * 35 characters and a double needs at most 24 significant characters; anything longer is refused
 * before it is trimmed, matched or echoed, so no cell costs more than a constant.
 */
export const MAX_CELL_CHARS = 64;
/** Longest name (column, field, input) repeated in an error message or its details. */
const MAX_ECHO_CHARS = 64;
// Every quantifier is bounded or followed by a fixed delimiter, so matching is linear (and the input is at most MAX_CELL_CHARS).
const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

const BAR_COLUMN_SET: ReadonlySet<string> = new Set(BAR_COLUMNS);

function invalid(message: string, row: number | undefined, field: string | undefined, code = 'invalid_value', status = 422): DataError {
  return new DataError(message, { ...(row !== undefined ? { row } : {}), ...(field !== undefined ? { field } : {}) }, status, code);
}

function where(row: number, field: string): string {
  return `row ${row}, field '${field}'`;
}

/**
 * A submitted name as it may appear in a message or in `details`: names are echoed so clients see
 * what they sent, but a hostile 1 MiB name must not come back as a 1 MiB error.
 */
export function echoName(name: string): string {
  return name.length > MAX_ECHO_CHARS ? `${name.slice(0, MAX_ECHO_CHARS)}...` : name;
}

/**
 * A submitted value for a message: short whatever was sent. Never JSON.stringify of a submitted
 * object or array (it recurses on depth and copies the whole value), never a whole long string.
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'string')
    return value.length > 40 ? `${JSON.stringify(value.slice(0, 40))}... (${value.length} characters)` : JSON.stringify(value);
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** `YYYY-MM-DD` of the UTC day of epoch milliseconds in [MIN_EPOCH_MS, END_EPOCH_MS). */
export function isoDayOfEpochMs(ms: number): string {
  return formatIsoDay(Math.floor(ms / MS_PER_DAY));
}

/**
 * A bar date from epoch milliseconds (pandas `to_json(orient="split")`: the UTC calendar date of the
 * instant) or an ISO-8601 string (`YYYY-MM-DD`, optionally with a time and offset: the calendar date
 * as written).
 */
export function parseBarDate(value: unknown, row: number, field = 'date'): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || !Number.isInteger(value))
      throw invalid(`${where(row, field)}: ${value} is not a whole number of epoch milliseconds`, row, field, 'invalid_date');
    // Negative epochs too: any epoch before 1973 is as likely to be seconds, and older bars have ISO dates.
    if (value < MIN_EPOCH_MS)
      throw invalid(
        `${where(row, field)}: ${value} is before 1973 as epoch milliseconds: epoch seconds? Send milliseconds (pandas to_json's default), or an ISO date for bars before 1973`,
        row,
        field,
        'invalid_date',
      );
    if (value >= END_EPOCH_MS)
      throw invalid(`${where(row, field)}: ${value} epoch milliseconds is not a date between 1973 and 2999`, row, field, 'invalid_date');
    return isoDayOfEpochMs(value);
  }
  if (typeof value === 'string') {
    if (value.length > MAX_CELL_CHARS)
      throw invalid(`${where(row, field)}: a ${value.length}-character string is too long for a date (at most ${MAX_CELL_CHARS})`, row, field, 'invalid_date');
    const m = ISO_RE.exec(value.trim());
    if (m) {
      const y = Number(m[1]);
      const mo = Number(m[2]);
      const da = Number(m[3]);
      const check = new Date(Date.UTC(y, mo - 1, da));
      const timeOk = m[4] === undefined || (Number(m[4]) < 24 && Number(m[5]) < 60 && (m[6] === undefined || Number(m[6]) < 61));
      if (y >= 1800 && y <= 2999 && check.getUTCFullYear() === y && check.getUTCMonth() === mo - 1 && check.getUTCDate() === da && timeOk)
        return `${m[1]}-${m[2]}-${m[3]}`;
    }
    throw invalid(`${where(row, field)}: ${describeValue(value)} is not a valid ISO-8601 date (YYYY-MM-DD)`, row, field, 'invalid_date');
  }
  throw invalid(`${where(row, field)}: ${describeValue(value)} is not a date (epoch milliseconds or an ISO-8601 string)`, row, field, 'invalid_date');
}

function parseValue(value: unknown, row: number, field: string): number {
  if (typeof value !== 'number')
    throw invalid(`${where(row, field)}: ${describeValue(value)} is not a number`, row, field, value === null ? 'non_finite' : 'invalid_type');
  if (!Number.isFinite(value)) throw invalid(`${where(row, field)}: ${value} is not finite`, row, field, 'non_finite');
  if (field === 'volume') {
    if (value < 0) throw invalid(`${where(row, field)}: volume ${value} is negative`, row, field);
  } else if (!(value > 0)) throw invalid(`${where(row, field)}: price ${value} is not positive`, row, field);
  return value;
}

/** Where each bar field is among the submitted columns. */
export type ColumnMap = Map<BarColumn, number>;

/** Maps submitted column names (any order, any case) to bar fields; unknown, repeated or missing names are errors. */
export function mapColumns(columns: readonly unknown[], dateFromIndex: boolean): ColumnMap {
  const map: ColumnMap = new Map();
  // Stops at the first name that is not a new bar field, so at most 7 names are looked at.
  for (let j = 0; j < columns.length; j++) {
    const raw = columns[j];
    if (typeof raw !== 'string') throw invalid(`column ${j}: name ${describeValue(raw)} is not a string`, undefined, `column ${j}`, 'invalid_column', 400);
    const name = raw.length <= MAX_ECHO_CHARS ? raw.trim().toLowerCase() : '';
    if (!BAR_COLUMN_SET.has(name))
      throw new DataError(`column '${echoName(raw)}' is not a bar field (expected ${BAR_COLUMNS.join(', ')})`, { column: echoName(raw) }, 422, 'unknown_column');
    if (map.has(name as BarColumn)) throw new DataError(`column '${echoName(raw)}' appears twice`, { column: echoName(raw) }, 422, 'duplicate_column');
    map.set(name as BarColumn, j);
  }
  for (const c of BAR_COLUMNS) {
    if (c === 'date' && dateFromIndex) continue;
    if (!map.has(c)) throw new DataError(`column '${c}' is missing (need ${BAR_COLUMNS.join(', ')})`, { column: c }, 422, 'missing_column');
  }
  return map;
}

/** Domain checks across a bar: high not below low. */
function checkBar(bar: Bar, row: number): void {
  if (bar.high < bar.low) throw invalid(`${where(row, 'high')}: high ${bar.high} is below low ${bar.low}`, row, 'high');
  // The feature engine's own value rule (src/data/validate.ts): a bar it would refuse must never be
  // stored. Its date rule (a real YYYY-MM-DD) holds by construction of parseBarDate, so the date is
  // not parsed a second time for every bar.
  const problem = findValueProblem(bar.open, bar.high, bar.low, bar.close, bar.volume);
  if (problem) throw invalid(`${where(row, problem.field)}: ${problem.message}`, row, problem.field);
}

/** One validated bar from its six cells (row `row` of the request). */
function decodeBar(row: number, date: unknown, dateField: string, open: unknown, high: unknown, low: unknown, close: unknown, volume: unknown): Bar {
  const bar: Bar = {
    date: parseBarDate(date, row, dateField),
    open: parseValue(open, row, 'open'),
    high: parseValue(high, row, 'high'),
    low: parseValue(low, row, 'low'),
    close: parseValue(close, row, 'close'),
    volume: parseValue(volume, row, 'volume'),
  };
  checkBar(bar, row);
  return bar;
}

/** Rows must be oldest first, one per date. */
export function checkOrder(bars: readonly Bar[]): void {
  for (let r = 1; r < bars.length; r++) {
    const prev = bars[r - 1].date;
    const cur = bars[r].date;
    if (cur === prev) throw invalid(`${where(r, 'date')}: date ${cur} repeats row ${r - 1} (one row per date)`, r, 'date', 'duplicate_date');
    if (cur < prev) throw invalid(`${where(r, 'date')}: date ${cur} is before row ${r - 1}'s ${prev} (rows must be sorted oldest first)`, r, 'date', 'unsorted_dates');
  }
}

/**
 * Rows decoded between two turns of the event loop. A 1 MiB body holds ~45,000 tiny rows, 10-25 ms
 * of decoding on a busy core, on top of the JSON.parse of the body in the same turn; in slices of
 * ~1-2 ms the rest of the service (other requests, /healthz) is answered while a big table is read.
 * Requests of fewer rows are decoded in one go, without any added latency.
 */
const ROWS_PER_SLICE = 4096;

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** `decode(r)` for every row, in slices of ROWS_PER_SLICE rows, then the date order. */
async function decodeRows(n: number, decode: (row: number) => Bar): Promise<Bar[]> {
  const bars: Bar[] = new Array(n);
  for (let r = 0; r < n; r++) {
    if (r > 0 && r % ROWS_PER_SLICE === 0) await nextTurn();
    bars[r] = decode(r);
  }
  checkOrder(bars);
  return bars;
}

/**
 * pandas "split" frame → bars. `columns` name the fields in any order; dates come from the `date`
 * column, or from `index` when there is no `date` column (a DatetimeIndex).
 */
export async function barsFromSplit(frame: { columns: readonly unknown[]; data: readonly unknown[]; index?: readonly unknown[] | null }): Promise<Bar[]> {
  const { columns, data } = frame;
  const index = frame.index ?? null;
  const hasDateColumn = columns.some((c) => typeof c === 'string' && c.length <= MAX_ECHO_CHARS && c.trim().toLowerCase() === 'date');
  if (!hasDateColumn && index === null)
    throw new DataError(`column 'date' is missing (need ${BAR_COLUMNS.join(', ')}; or dates as the index)`, { column: 'date' }, 422, 'missing_column');
  const map = mapColumns(columns, !hasDateColumn);
  if (index !== null && index.length !== data.length)
    throw new DataError(`index has ${index.length} entries but data has ${data.length} rows`, { field: 'index' }, 400, 'invalid_shape');
  if (data.length === 0) throw noRows('data');
  const width = columns.length;
  const jd = map.get('date');
  const jo = map.get('open')!;
  const jh = map.get('high')!;
  const jl = map.get('low')!;
  const jc = map.get('close')!;
  const jv = map.get('volume')!;
  return decodeRows(data.length, (r) => {
    const row = data[r];
    if (!Array.isArray(row)) throw invalid(`row ${r}: not an array of ${width} values`, r, undefined, 'invalid_row', 400);
    if (row.length !== width) throw invalid(`row ${r}: has ${row.length} values, expected ${width} (one per column)`, r, undefined, 'invalid_row');
    return jd !== undefined
      ? decodeBar(r, row[jd], 'date', row[jo], row[jh], row[jl], row[jc], row[jv])
      : decodeBar(r, index![r], 'index', row[jo], row[jh], row[jl], row[jc], row[jv]);
  });
}

/**
 * A table of `rows` rows whose cells are read by row and column, whatever layout they came in (an
 * OIP tensor flat or nested, one tensor per column): bars are decoded in place, without copying the
 * cells into rows first. `columns` name the fields as for a split frame.
 */
export async function barsFromCells(columns: readonly unknown[], rows: number, cell: (row: number, column: number) => unknown): Promise<Bar[]> {
  const map = mapColumns(columns, false);
  if (rows === 0) throw noRows('data');
  const jd = map.get('date')!;
  const jo = map.get('open')!;
  const jh = map.get('high')!;
  const jl = map.get('low')!;
  const jc = map.get('close')!;
  const jv = map.get('volume')!;
  return decodeRows(rows, (r) => decodeBar(r, cell(r, jd), 'date', cell(r, jo), cell(r, jh), cell(r, jl), cell(r, jc), cell(r, jv)));
}

/** Records (`[{date, open, ...}, ...]`, MLflow `dataframe_records`) → bars. */
export async function barsFromRecords(records: readonly unknown[]): Promise<Bar[]> {
  if (records.length === 0) throw noRows('dataframe_records');
  const values = new Map<string, unknown>();
  return decodeRows(records.length, (r) => {
    const rec = records[r];
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) throw invalid(`row ${r}: not an object`, r, undefined, 'invalid_row', 400);
    values.clear();
    // Own keys only, read into a Map: a `__proto__` or `constructor` key (an own data property, as
    // JSON.parse makes it) is just an unknown field; nothing inherited is ever read or written.
    // Stops at the first key that is not a new bar field.
    for (const k of Object.keys(rec)) {
      const name = k.length <= MAX_ECHO_CHARS ? k.trim().toLowerCase() : '';
      if (!BAR_COLUMN_SET.has(name))
        throw new DataError(`row ${r}: field '${echoName(k)}' is not a bar field (expected ${BAR_COLUMNS.join(', ')})`, { row: r, field: echoName(k) }, 422, 'unknown_column');
      if (values.has(name)) throw new DataError(`row ${r}: field '${echoName(k)}' appears twice`, { row: r, field: echoName(k) }, 422, 'duplicate_column');
      values.set(name, (rec as Record<string, unknown>)[k]);
    }
    for (const c of BAR_COLUMNS) if (!values.has(c)) throw new DataError(`row ${r}: field '${c}' is missing`, { row: r, field: c }, 422, 'missing_column');
    return decodeBar(r, values.get('date'), 'date', values.get('open'), values.get('high'), values.get('low'), values.get('close'), values.get('volume'));
  });
}

/** Equal-length columns keyed by bar field (OIP tensors by name) → bars. */
export async function barsFromColumns(columns: ReadonlyMap<string, readonly unknown[]>): Promise<Bar[]> {
  for (const c of BAR_COLUMNS) if (!columns.has(c)) throw new DataError(`input '${c}' is missing`, { field: c }, 422, 'missing_column');
  const n = columns.get('date')!.length;
  for (const [name, col] of columns)
    if (col.length !== n) throw new DataError(`input '${echoName(name)}' has ${col.length} values, input 'date' has ${n}`, { field: echoName(name) }, 422, 'invalid_shape');
  const cols = BAR_COLUMNS.map((c) => columns.get(c)!);
  return barsFromCells(BAR_COLUMNS, n, (r, j) => cols[j][r]);
}

/** A BarSeries as pandas split JSON (what `df.to_json(orient="split")` of a bar frame gives). */
export interface SplitFrame {
  columns: string[];
  index?: number[];
  data: (string | number)[][];
}

/**
 * Builds a `POST /forecast` body from bars `[start, end)` of a series: dates as epoch milliseconds
 * (pandas' default) or ISO strings, full round-trip precision (JSON.stringify prints shortest
 * round-trip decimals). For parity tests and clients.
 */
export function seriesToSplitJson(
  series: BarSeries,
  options: { start?: number; end?: number; dates?: 'epoch' | 'iso'; index?: boolean } = {},
): SplitFrame {
  const start = options.start ?? 0;
  const end = options.end ?? series.date.length;
  const data: (string | number)[][] = [];
  for (let i = start; i < end; i++) {
    const d = series.date[i];
    data.push([options.dates === 'iso' ? d : Date.parse(`${d}T00:00:00Z`), series.open[i], series.high[i], series.low[i], series.close[i], series.volume[i]]);
  }
  const frame: SplitFrame = { columns: [...BAR_COLUMNS], data };
  if (options.index !== false) frame.index = Array.from({ length: end - start }, (_, k) => start + k);
  return frame;
}

export { MS_PER_DAY };
