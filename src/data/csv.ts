import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { DataError } from '../errors.js';
import type { BarSeries } from './bars.js';
import { parseIsoDay } from './dates.js';
import { fastDecimal } from './fast-decimal.js';
import { parseLegacyFloat } from './legacy-float.js';
import { findDateProblem, findValueProblem, type BarField } from './validate.js';

/**
 * How CSV numbers become doubles: `legacy` = pandas' legacy parser, which the reference feature set
 * is defined with (FEATURES.md §3b.1); `exact` = correctly rounded (`Number`).
 */
export type NumberParsing = 'legacy' | 'exact';

export interface ReadBarsOptions {
  numberParsing: NumberParsing;
  /** Name used in error messages (a file name); default `CSV`. */
  sourceName?: string;
  /**
   * Quote the file's text in error messages (default true: a user's own CSV is best reported with the
   * offending value). False for a file that may be anything, such as a bundle's history.csv (a link
   * to another file, a file from elsewhere): messages then name the line, the column and the problem,
   * with columns named by this reader's own field names or their 1-based position, never a cell.
   */
  quoteContents?: boolean;
  /**
   * Skip rows whose every numeric cell (open, high, low, close, volume) is `null`, case-insensitive:
   * Yahoo writes such a row for a day without data. Default false: they are refused with the
   * DataError code {@link NULL_ROW_CODE}, so a caller can say how to skip them. A row with only some
   * cells null, or with a bad date, is refused either way.
   */
  skipNullRows?: boolean;
  /** Told the 1-based line number of each row `skipNullRows` skipped. */
  onSkippedRow?: (line: number) => void;
}

/** The DataError code of a row whose every numeric cell is `null` (see `skipNullRows`). */
export const NULL_ROW_CODE = 'null_row';

/** Where each bar field is read from, by lower-cased header name. */
const PLAIN_LAYOUT: Record<BarField, string> = { date: 'date', open: 'open', high: 'high', low: 'low', close: 'close', volume: 'volume' };
/** Yahoo: `Close` is dropped and `Adj Close` becomes close (FEATURES.md §1). */
const YAHOO_LAYOUT: Record<BarField, string> = { ...PLAIN_LAYOUT, close: 'adj close' };
const FIELDS: readonly BarField[] = ['date', 'open', 'high', 'low', 'close', 'volume'];
/** Header names this reader knows: safe to print even when the file's text is not. */
const KNOWN_COLUMNS = new Set([...Object.values(PLAIN_LAYOUT), ...Object.values(YAHOO_LAYOUT)]);
const NUMERIC: readonly Exclude<BarField, 'date'>[] = ['open', 'high', 'low', 'close', 'volume'];
const NULL_VALUE = 'value is null (Yahoo writes null for a day without data)';
/** A plain decimal number; both parsers are given only text of this shape. */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Reads daily bars from CSV text, oldest first: Yahoo's `Date,Open,High,Low,Close,Adj Close,Volume`
 * or a plain `date,open,high,low,close,volume` (header case-insensitive, columns in any order,
 * other columns ignored, blank lines skipped). Every value is validated (see `findBarProblem`);
 * the first problem throws a DataError naming the 1-based line and the column as the header spells it.
 */
export function readBarsCsv(text: string, options: ReadBarsOptions): BarSeries {
  const source = options.sourceName ?? 'CSV';
  const quote = options.quoteContents ?? true;
  const parseNumber = options.numberParsing === 'legacy' ? parseLegacyFloat : Number;
  const fail = (line: number, column: string, message: string, code?: string): never => {
    throw new DataError(`${source}: line ${line}, column "${column}": ${message}`, { line, column }, 422, code);
  };

  const lines = splitLines(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  let headerAt = 0;
  while (headerAt < lines.length && lines[headerAt].trim() === '') headerAt++;
  if (headerAt === lines.length) throw new DataError(`${source}: the file is empty: expected a header line with date, open, high, low, close and volume`, { line: 1 });

  const header = lines[headerAt].split(',').map(unquote);
  const byName = new Map<string, number>();
  header.forEach((name, i) => {
    const key = name.toLowerCase();
    if (byName.has(key)) fail(headerAt + 1, quote ? name : KNOWN_COLUMNS.has(key) ? key : String(i + 1), 'the column appears twice in the header');
    byName.set(key, i);
  });
  const layout = byName.has(YAHOO_LAYOUT.close) ? YAHOO_LAYOUT : PLAIN_LAYOUT;
  const columnOf = {} as Record<BarField, number>;
  for (const field of FIELDS) {
    const index = byName.get(layout[field]);
    if (index === undefined) fail(headerAt + 1, layout[field], `the header has no "${layout[field]}" column${quote ? ` (header: ${header.join(',')})` : ''}`);
    columnOf[field] = index as number;
  }
  // Unquoted: the header matched case-insensitively, so this reader's own spelling says the same.
  const columnName = (field: BarField) => (quote ? header[columnOf[field]] : layout[field]);

  const capacity = lines.length - headerAt - 1;
  const date: string[] = [];
  const columns = {
    open: new Float64Array(capacity),
    high: new Float64Array(capacity),
    low: new Float64Array(capacity),
    close: new Float64Array(capacity),
    volume: new Float64Array(capacity),
  };
  const values = new Float64Array(5);
  // Column positions in NUMERIC order, and the furthest one a line must reach.
  const numericAt = NUMERIC.map((f) => columnOf[f]);
  const dateAt = columnOf.date;
  let n = 0;
  let previousDate: string | undefined;
  // A million-line bundle history is read at every start: one split per line, no closure or
  // lower-casing per cell (the messages below are built only on the failing line).
  const missing = (lineNo: number, field: BarField, cells: number): never =>
    fail(lineNo, columnName(field), `value is missing: the line has ${cells} values, the header ${header.length} columns`);
  // The layout this program writes (`writeBarsCsv`: a bundle's history), read exactly: lines that
  // are plain `date,open,high,low,close,volume` with short decimals are read in place (fastDecimal);
  // any other line, and any line with a problem, goes through the general path below, which gives
  // the same values and reports the problem.
  /** Stores a validated bar, by either path. */
  const keep = (d: string, o: number, h: number, lo: number, cl: number, v: number): void => {
    date.push(d);
    columns.open[n] = o;
    columns.high[n] = h;
    columns.low[n] = lo;
    columns.close[n] = cl;
    columns.volume[n] = v;
    previousDate = d;
    n++;
  };
  const canonical = parseNumber === Number && header.length === 6 && FIELDS.every((f, i) => columnOf[f] === i);
  const readCanonical = (raw: string): boolean => {
    const c1 = raw.indexOf(',');
    const c2 = raw.indexOf(',', c1 + 1);
    const c3 = raw.indexOf(',', c2 + 1);
    const c4 = raw.indexOf(',', c3 + 1);
    const c5 = raw.indexOf(',', c4 + 1);
    if (c1 < 0 || c2 < 0 || c3 < 0 || c4 < 0 || c5 < 0 || raw.indexOf(',', c5 + 1) >= 0) return false;
    const o = exactCell(raw, c1 + 1, c2);
    const h = exactCell(raw, c2 + 1, c3);
    const lo = exactCell(raw, c3 + 1, c4);
    const cl = exactCell(raw, c4 + 1, c5);
    const v = exactCell(raw, c5 + 1, raw.length);
    // NaN (not read here) fails the checks too.
    if (findValueProblem(o, h, lo, cl, v) !== null) return false;
    const d = raw.slice(0, c1);
    if (findDateProblem(d, previousDate) !== null) return false;
    keep(d, o, h, lo, cl, v);
    return true;
  };
  for (let l = headerAt + 1; l < lines.length; l++) {
    const raw = lines[l];
    if (canonical && readCanonical(raw)) continue;
    if (raw.length === 0 || raw.trim() === '') continue;
    const lineNo = l + 1;
    const cells = raw.split(',');
    if (cells.length > header.length) fail(lineNo, String(header.length + 1), `the line has ${cells.length} values, the header ${header.length} columns`);

    if (dateAt >= cells.length) missing(lineNo, 'date', cells.length);
    const d = unquote(cells[dateAt]);
    const dateProblem = findDateProblem(d, previousDate);
    if (dateProblem) fail(lineNo, columnName('date'), quote ? dateProblem : unquotedDateProblem(d, previousDate));
    // After the date check: a day without data must still be a valid day in order.
    if (isNullRow(cells, numericAt)) {
      if (!options.skipNullRows) fail(lineNo, columnName(NUMERIC[0]), NULL_VALUE, NULL_ROW_CODE);
      options.onSkippedRow?.(lineNo);
      continue;
    }

    for (let k = 0; k < 5; k++) {
      const at = numericAt[k];
      if (at >= cells.length) missing(lineNo, NUMERIC[k], cells.length);
      const s = unquote(cells[at]);
      if (!DECIMAL.test(s)) {
        const field = NUMERIC[k];
        if (s === '') fail(lineNo, columnName(field), 'value is empty');
        if (s.toLowerCase() === 'null') fail(lineNo, columnName(field), NULL_VALUE);
        fail(lineNo, columnName(field), quote ? `${JSON.stringify(s)} is not a number` : 'the value is not a number');
      }
      values[k] = parseNumber(s);
    }
    const problem = findValueProblem(values[0], values[1], values[2], values[3], values[4]);
    if (problem) fail(lineNo, columnName(problem.field), quote ? problem.message : unquotedValueProblem(problem.field, values));

    keep(d, values[0], values[1], values[2], values[3], values[4]);
  }
  return {
    date,
    open: columns.open.slice(0, n),
    high: columns.high.slice(0, n),
    low: columns.low.slice(0, n),
    close: columns.close.slice(0, n),
    volume: columns.volume.slice(0, n),
  };
}

/** A cell of a canonical line read exactly: in place when short, else `Number` of its text; NaN when it is no plain decimal. */
function exactCell(raw: string, start: number, end: number): number {
  const x = fastDecimal(raw, start, end);
  if (x === x) return x;
  const s = raw.slice(start, end);
  return DECIMAL.test(s) ? Number(s) : Number.NaN;
}

/** `readBarsCsv` on a file; errors name the file. */
export async function readBarsCsvFile(path: string, options: ReadBarsOptions): Promise<BarSeries> {
  const text = await readFile(path, 'utf8');
  return readBarsCsv(text, { ...options, sourceName: options.sourceName ?? basename(path) });
}

/**
 * Plain `date,open,high,low,close,volume` CSV, numbers printed with `String(x)` (the shortest text
 * that reads back to the same double when parsed exactly: read it back with `numberParsing: 'exact'`;
 * the legacy parser may move such text by an ulp).
 */
export function writeBarsCsv(series: BarSeries): string {
  return `${BARS_CSV_HEADER}\n${barsCsvRows(series, 0, series.date.length)}`;
}

/** The header line of `writeBarsCsv`'s layout. */
export const BARS_CSV_HEADER = 'date,open,high,low,close,volume';

/** Bars `start` to `end` (exclusive) in `writeBarsCsv`'s layout, each line ended (a chunk of a streamed file). */
export function barsCsvRows(series: BarSeries, start: number, end: number): string {
  let out = '';
  for (let i = start; i < end; i++) out += `${series.date[i]},${series.open[i]},${series.high[i]},${series.low[i]},${series.close[i]},${series.volume[i]}\n`;
  return out;
}

/**
 * Yahoo's CSV layout, the one a user downloads (`forecast synth`), so such a file is read exactly as
 * theirs would be. A series has no dividends or splits to adjust for: `Adj Close` equals `Close`.
 */
export function writeYahooCsv(series: BarSeries): string {
  const n = series.date.length;
  const out: string[] = new Array(n + 1);
  out[0] = 'Date,Open,High,Low,Close,Adj Close,Volume';
  for (let i = 0; i < n; i++) {
    const close = series.close[i];
    out[i + 1] = `${series.date[i]},${series.open[i]},${series.high[i]},${series.low[i]},${close},${close},${series.volume[i]}`;
  }
  return out.join('\n') + '\n';
}

/** `findDateProblem`'s verdict without the dates. */
function unquotedDateProblem(date: string, previousDate: string | undefined): string {
  if (Number.isNaN(parseIsoDay(date))) return 'the value is not a valid YYYY-MM-DD date';
  return date === previousDate ? "the date repeats the previous bar's date" : "the date is out of order: it comes before the previous bar's date";
}

/** `findValueProblem`'s verdict on `field` without the values (open, high, low, close, volume). */
function unquotedValueProblem(field: BarField, values: Float64Array): string {
  const x = values[NUMERIC.findIndex((f) => f === field)];
  if (!Number.isFinite(x)) return `${field} must be a finite number`;
  if (field === 'volume') return 'volume must not be negative';
  if (!(x > 0)) return `${field} must be positive`;
  return 'high is below low';
}

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const s = lines[i];
    if (s.charCodeAt(s.length - 1) === 13 /* \r */) lines[i] = s.slice(0, -1);
  }
  return lines;
}

/** Whether every numeric cell of a row is `null`: a Yahoo day without data. */
function isNullRow(cells: readonly string[], numericAt: readonly number[]): boolean {
  for (const at of numericAt) if (at >= cells.length || unquote(cells[at]).toLowerCase() !== 'null') return false;
  return true;
}

function unquote(cell: string): string {
  const s = cell.trim();
  return s.length >= 2 && s.charCodeAt(0) === 34 && s.charCodeAt(s.length - 1) === 34 ? s.slice(1, -1).trim() : s;
}
