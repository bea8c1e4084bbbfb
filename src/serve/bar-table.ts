/**
 * The internal bar table every protocol converts to: validated bars, oldest first, one per date.
 * Bad input is answered with a DataError naming the row (0-based position in the request) and the
 * field, and is rejected before anything touches the stored history.
 */
import type { Bar, BarSeries } from '../data/bars.js';
import { findBarProblem } from '../data/validate.js';
import { DataError } from '../errors.js';

export const BAR_COLUMNS = ['date', 'open', 'high', 'low', 'close', 'volume'] as const;
export type BarColumn = (typeof BAR_COLUMNS)[number];

/** Epoch milliseconds below this (1973-03-03) are read as a likely seconds/milliseconds mix-up. */
const MIN_EPOCH_MS = 1e11;
const MS_PER_DAY = 86_400_000;
const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

function invalid(message: string, row: number | undefined, field: string | undefined, code = 'invalid_value', status = 422): DataError {
  return new DataError(message, { ...(row !== undefined ? { row } : {}), ...(field !== undefined ? { field } : {}) }, status, code);
}

function where(row: number, field: string): string {
  return `row ${row}, field '${field}'`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

function ymd(y: number, m: number, d: number): string {
  return `${String(y).padStart(4, '0')}-${pad2(m)}-${pad2(d)}`;
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
    if (value >= 0 && value < MIN_EPOCH_MS)
      throw invalid(
        `${where(row, field)}: ${value} is before 1973 as epoch milliseconds: epoch seconds? Send milliseconds (pandas to_json's default) or an ISO date`,
        row,
        field,
        'invalid_date',
      );
    const d = new Date(value);
    const y = d.getUTCFullYear();
    if (Number.isNaN(d.getTime()) || y < 1800 || y > 2999)
      throw invalid(`${where(row, field)}: ${value} epoch milliseconds is not a date between 1800 and 2999`, row, field, 'invalid_date');
    return ymd(y, d.getUTCMonth() + 1, d.getUTCDate());
  }
  if (typeof value === 'string') {
    const m = ISO_RE.exec(value.trim());
    if (m) {
      const y = Number(m[1]);
      const mo = Number(m[2]);
      const da = Number(m[3]);
      const check = new Date(Date.UTC(y, mo - 1, da));
      const timeOk = m[4] === undefined || (Number(m[4]) < 24 && Number(m[5]) < 60 && (m[6] === undefined || Number(m[6]) < 61));
      if (y >= 1800 && y <= 2999 && check.getUTCFullYear() === y && check.getUTCMonth() === mo - 1 && check.getUTCDate() === da && timeOk)
        return ymd(y, mo, da);
    }
    throw invalid(`${where(row, field)}: '${value.length > 40 ? value.slice(0, 40) + '...' : value}' is not a valid ISO-8601 date (YYYY-MM-DD)`, row, field, 'invalid_date');
  }
  throw invalid(`${where(row, field)}: ${JSON.stringify(value)} is not a date (epoch milliseconds or an ISO-8601 string)`, row, field, 'invalid_date');
}

function parseValue(value: unknown, row: number, field: string): number {
  if (typeof value !== 'number')
    throw invalid(`${where(row, field)}: ${JSON.stringify(value)} is not a number`, row, field, value === null ? 'non_finite' : 'invalid_type');
  if (!Number.isFinite(value)) throw invalid(`${where(row, field)}: ${value} is not finite`, row, field, 'non_finite');
  if (field === 'volume') {
    if (value < 0) throw invalid(`${where(row, field)}: volume ${value} is negative`, row, field);
  } else if (!(value > 0)) throw invalid(`${where(row, field)}: price ${value} is not positive`, row, field);
  return value;
}

/** Maps submitted column names (any order, any case) to bar fields; unknown, repeated or missing names are errors. */
export function mapColumns(columns: readonly unknown[], dateFromIndex: boolean): Map<BarColumn, number> {
  const map = new Map<BarColumn, number>();
  columns.forEach((raw, j) => {
    if (typeof raw !== 'string') throw invalid(`column ${j}: name ${JSON.stringify(raw)} is not a string`, undefined, String(raw), 'invalid_column', 400);
    const name = raw.trim().toLowerCase() as BarColumn;
    if (!(BAR_COLUMNS as readonly string[]).includes(name))
      throw new DataError(`column '${raw}' is not a bar field (expected ${BAR_COLUMNS.join(', ')})`, { column: raw }, 422, 'unknown_column');
    if (map.has(name)) throw new DataError(`column '${raw}' appears twice`, { column: raw }, 422, 'duplicate_column');
    map.set(name, j);
  });
  for (const c of BAR_COLUMNS) {
    if (c === 'date' && dateFromIndex) continue;
    if (!map.has(c)) throw new DataError(`column '${c}' is missing (need ${BAR_COLUMNS.join(', ')})`, { column: c }, 422, 'missing_column');
  }
  return map;
}

/** Domain checks across a bar: high not below low. */
function checkBar(bar: Bar, row: number): void {
  if (bar.high < bar.low) throw invalid(`${where(row, 'high')}: high ${bar.high} is below low ${bar.low}`, row, 'high');
  // The feature engine's own rule (src/data/validate.ts): a bar it would refuse must never be stored.
  const problem = findBarProblem(bar);
  if (problem) throw invalid(`${where(row, problem.field)}: ${problem.message}`, row, problem.field);
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
 * pandas "split" frame → bars. `columns` name the fields in any order; dates come from the `date`
 * column, or from `index` when there is no `date` column (a DatetimeIndex).
 */
export function barsFromSplit(frame: { columns: readonly unknown[]; data: readonly unknown[]; index?: readonly unknown[] | null }): Bar[] {
  const { columns, data } = frame;
  const index = frame.index ?? null;
  const hasDateColumn = columns.some((c) => typeof c === 'string' && c.trim().toLowerCase() === 'date');
  if (!hasDateColumn && index === null)
    throw new DataError(`column 'date' is missing (need ${BAR_COLUMNS.join(', ')}; or dates as the index)`, { column: 'date' }, 422, 'missing_column');
  const map = mapColumns(columns, !hasDateColumn);
  if (index !== null && index.length !== data.length)
    throw new DataError(`index has ${index.length} entries but data has ${data.length} rows`, { field: 'index' }, 400, 'invalid_shape');
  if (data.length === 0) throw new DataError('data has no rows', { field: 'data' }, 422, 'empty');
  const width = columns.length;
  const bars: Bar[] = new Array(data.length);
  const jd = map.get('date');
  const jo = map.get('open')!;
  const jh = map.get('high')!;
  const jl = map.get('low')!;
  const jc = map.get('close')!;
  const jv = map.get('volume')!;
  for (let r = 0; r < data.length; r++) {
    const row = data[r];
    if (!Array.isArray(row)) throw invalid(`row ${r}: not an array of ${width} values`, r, undefined, 'invalid_row', 400);
    if (row.length !== width) throw invalid(`row ${r}: has ${row.length} values, expected ${width} (one per column)`, r, undefined, 'invalid_row');
    const bar: Bar = {
      date: jd !== undefined ? parseBarDate(row[jd], r, 'date') : parseBarDate(index![r], r, 'index'),
      open: parseValue(row[jo], r, 'open'),
      high: parseValue(row[jh], r, 'high'),
      low: parseValue(row[jl], r, 'low'),
      close: parseValue(row[jc], r, 'close'),
      volume: parseValue(row[jv], r, 'volume'),
    };
    checkBar(bar, r);
    bars[r] = bar;
  }
  checkOrder(bars);
  return bars;
}

/** Records (`[{date, open, ...}, ...]`, MLflow `dataframe_records`) → bars. */
export function barsFromRecords(records: readonly unknown[]): Bar[] {
  if (records.length === 0) throw new DataError('no records', { field: 'dataframe_records' }, 422, 'empty');
  const bars: Bar[] = new Array(records.length);
  for (let r = 0; r < records.length; r++) {
    const rec = records[r];
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) throw invalid(`row ${r}: not an object`, r, undefined, 'invalid_row', 400);
    const fields = new Map<string, unknown>();
    for (const [k, v] of Object.entries(rec)) {
      const name = k.trim().toLowerCase();
      if (!(BAR_COLUMNS as readonly string[]).includes(name))
        throw new DataError(`row ${r}: field '${k}' is not a bar field (expected ${BAR_COLUMNS.join(', ')})`, { row: r, field: k }, 422, 'unknown_column');
      if (fields.has(name)) throw new DataError(`row ${r}: field '${k}' appears twice`, { row: r, field: k }, 422, 'duplicate_column');
      fields.set(name, v);
    }
    for (const c of BAR_COLUMNS) if (!fields.has(c)) throw new DataError(`row ${r}: field '${c}' is missing`, { row: r, field: c }, 422, 'missing_column');
    const bar: Bar = {
      date: parseBarDate(fields.get('date'), r),
      open: parseValue(fields.get('open'), r, 'open'),
      high: parseValue(fields.get('high'), r, 'high'),
      low: parseValue(fields.get('low'), r, 'low'),
      close: parseValue(fields.get('close'), r, 'close'),
      volume: parseValue(fields.get('volume'), r, 'volume'),
    };
    checkBar(bar, r);
    bars[r] = bar;
  }
  checkOrder(bars);
  return bars;
}

/** Equal-length columns keyed by bar field (OIP tensors by name) → bars. */
export function barsFromColumns(columns: ReadonlyMap<string, readonly unknown[]>): Bar[] {
  for (const c of BAR_COLUMNS) if (!columns.has(c)) throw new DataError(`input '${c}' is missing`, { field: c }, 422, 'missing_column');
  const n = columns.get('date')!.length;
  for (const [name, col] of columns)
    if (col.length !== n) throw new DataError(`input '${name}' has ${col.length} values, input 'date' has ${n}`, { field: name }, 422, 'invalid_shape');
  const names = [...BAR_COLUMNS];
  const rows: unknown[][] = new Array(n);
  for (let r = 0; r < n; r++) rows[r] = names.map((c) => columns.get(c)![r]);
  return barsFromSplit({ columns: names, data: rows });
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
