import type { Bar } from '../data/bars.js';
import { ForecastError } from '../errors.js';
import type { BarConflict } from './types.js';

/**
 * Two values are the same price if they differ by at most this fraction of the larger one.
 * A price feed carries far fewer than 12 significant digits, so a resubmitted bar whose decimal text
 * another parser rounded one ulp differently (pandas' legacy parser vs a correctly rounded one,
 * FEATURES.md §3b.1, about 2e-16 relative) is the same bar, while any real correction is not.
 */
export const SAME_VALUE_RELATIVE_TOLERANCE = 1e-12;

const FIELDS = ['open', 'high', 'low', 'close', 'volume'] as const;

export function sameValue(stored: number, submitted: number): boolean {
  if (stored === submitted) return true;
  return Math.abs(stored - submitted) <= SAME_VALUE_RELATIVE_TOLERANCE * Math.max(Math.abs(stored), Math.abs(submitted));
}

/** The first field in which `submitted` really differs from `stored`, or null if it is the same bar. */
export function barDifference(stored: Bar, submitted: Bar): { field: string; stored: number; submitted: number } | null {
  for (const f of FIELDS) if (!sameValue(stored[f], submitted[f])) return { field: f, stored: stored[f], submitted: submitted[f] };
  return null;
}

export function sameBar(stored: Bar, submitted: Bar): boolean {
  return barDifference(stored, submitted) === null;
}

/** Bit-identical (the stored bar is already exactly the submitted one: nothing to write even on replace). */
export function identicalBar(a: Bar, b: Bar): boolean {
  return a.open === b.open && a.high === b.high && a.low === b.low && a.close === b.close && a.volume === b.volume;
}

/** The 409 answered when submitted bars differ from stored ones and replacing was not asked for. */
export function conflictError(conflicts: readonly BarConflict[]): ForecastError {
  const c = conflicts[0];
  const more = conflicts.length > 1 ? ` (and ${conflicts.length - 1} more conflicting bar${conflicts.length > 2 ? 's' : ''})` : '';
  return new ForecastError(
    `row ${c.row}: the bar of ${c.date} is already stored with ${c.field}=${c.stored}, submitted ${c.field}=${c.submitted}${more}; ` +
      'send ?replace=true to replace stored bars',
    409,
    'conflict',
    { row: c.row, date: c.date, field: c.field, stored: c.stored, submitted: c.submitted, conflicts: conflicts.slice(0, 50) },
  );
}

export interface MergePlan {
  inserts: Bar[];
  updates: Bar[];
  unchanged: number;
  conflicts: BarConflict[];
}

/** Classifies submitted bars against the stored bars of the same dates (the one merge rule of every store). */
export function planMerge(bars: readonly Bar[], stored: { get(date: string): Bar | undefined }, replace: boolean): MergePlan {
  const plan: MergePlan = { inserts: [], updates: [], unchanged: 0, conflicts: [] };
  for (let row = 0; row < bars.length; row++) {
    const bar = bars[row];
    const old = stored.get(bar.date);
    if (!old) {
      plan.inserts.push(bar);
      continue;
    }
    const diff = barDifference(old, bar);
    if (!diff) plan.unchanged++;
    else if (replace) plan.updates.push(bar);
    else plan.conflicts.push({ row, date: bar.date, ...diff });
  }
  return plan;
}
