import { DataError } from '../errors.js';
import type { Bar } from './bars.js';
import { parseIsoDay } from './dates.js';

export type BarField = keyof Bar;

/** What is wrong with a bar, and in which field. */
export interface BarProblem {
  field: BarField;
  message: string;
}

const NUMERIC_FIELDS = ['open', 'high', 'low', 'close', 'volume'] as const;

/**
 * The first problem with one bar, or null: the date must be a real `YYYY-MM-DD` date strictly after
 * `previousDate` (when given); prices finite and positive; high not below low; volume finite and not
 * negative. Open and close are deliberately not required to lie within [low, high]: Yahoo's close is
 * the adjusted close while high and low are not adjusted (FEATURES.md §1), so it often falls outside.
 */
export function findBarProblem(bar: Bar, previousDate?: string): BarProblem | null {
  const dateProblem = findDateProblem(bar.date, previousDate);
  if (dateProblem) return { field: 'date', message: dateProblem };
  return findValueProblem(bar.open, bar.high, bar.low, bar.close, bar.volume);
}

/** Date part of `findBarProblem`. */
export function findDateProblem(date: string, previousDate?: string): string | null {
  if (Number.isNaN(parseIsoDay(date))) return `date ${JSON.stringify(date)} is not a valid YYYY-MM-DD date`;
  if (previousDate !== undefined) {
    if (date === previousDate) return `date ${date} repeats the previous bar's date`;
    // Strict YYYY-MM-DD strings order like the dates they name.
    if (date < previousDate) return `date ${date} is out of order: it comes before the previous bar's date ${previousDate}`;
  }
  return null;
}

/** Value part of `findBarProblem`. */
export function findValueProblem(open: number, high: number, low: number, close: number, volume: number): BarProblem | null {
  // No array of prices here: the feature engine calls this on every appended bar.
  const problem = priceProblem('open', open) ?? priceProblem('high', high) ?? priceProblem('low', low) ?? priceProblem('close', close);
  if (problem) return problem;
  if (high < low) return { field: 'high', message: `high ${high} is below low ${low}` };
  if (!Number.isFinite(volume)) return { field: 'volume', message: `volume must be a finite number, got ${volume}` };
  if (volume < 0) return { field: 'volume', message: `volume must not be negative, got ${volume}` };
  return null;
}

function priceProblem(field: BarField, x: number): BarProblem | null {
  if (!Number.isFinite(x)) return { field, message: `${field} must be a finite number, got ${x}` };
  if (!(x > 0)) return { field, message: `${field} must be positive, got ${x}` };
  return null;
}

/** Throws a DataError naming the field if the bar is invalid (see `findBarProblem`). */
export function validateBar(bar: Bar, previousDate?: string): void {
  const problem = findBarProblem(bar, previousDate);
  if (problem) throw new DataError(problem.message, { field: problem.field });
}

export interface ValidateBarsOptions {
  /** Date of the bar before `rows[0]` (e.g. the newest stored bar) when the rows must follow it. */
  previousDate?: string;
  /** Number reported for `rows[0]` in errors (default 0: rows are 0-based array indices). */
  firstRow?: number;
}

/**
 * Validates bars that arrive as JSON (`{date, open, high, low, close, volume}` objects, oldest
 * first) and returns them typed. Throws a DataError whose location names the row and the field, and
 * whose message says what is wrong: a missing, null or non-numeric value, or any problem of
 * `findBarProblem`, including dates out of order or repeated.
 */
export function validateBars(rows: readonly unknown[], options: ValidateBarsOptions = {}): Bar[] {
  const firstRow = options.firstRow ?? 0;
  let previousDate = options.previousDate;
  const bars: Bar[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = firstRow + i;
    const fail = (field: string, message: string): never => {
      throw new DataError(`row ${row}, field "${field}": ${message}`, { row, field });
    };
    const input = rows[i];
    if (typeof input !== 'object' || input === null || Array.isArray(input)) fail('date', 'a bar must be an object with date, open, high, low, close and volume');
    const record = input as Record<string, unknown>;
    const date = record.date;
    if (date === undefined) fail('date', 'date is missing');
    if (typeof date !== 'string') fail('date', `date must be a YYYY-MM-DD string, got ${JSON.stringify(date)}`);
    const values: number[] = [];
    for (const field of NUMERIC_FIELDS) {
      const v = record[field];
      if (v === undefined) fail(field, `${field} is missing`);
      if (v === null) fail(field, `${field} is null`);
      if (typeof v !== 'number') fail(field, `${field} must be a number, got ${JSON.stringify(v)}`);
      values.push(v as number);
    }
    const bar: Bar = { date: date as string, open: values[0], high: values[1], low: values[2], close: values[3], volume: values[4] };
    const problem = findBarProblem(bar, previousDate);
    if (problem) fail(problem.field, problem.message);
    bars[i] = bar;
    previousDate = bar.date;
  }
  return bars;
}
