import type { Bar, BarSeries } from '../data/bars.js';
import { findBarProblem, findDateProblem, findValueProblem } from '../data/validate.js';
import { DataError } from '../errors.js';
import type { FeatureEngine, FeatureTable } from './types.js';

/**
 * The indicator state of one feature set: consumes bars one at a time, in order, with constant work
 * per bar, and writes each bar's feature row. A set with a look-ahead also revises the rows of the
 * previous `lookahead` bars, whose values were provisional.
 */
export interface IndicatorState {
  /** Consumes the next bar and writes its row at `rows[offset .. offset + width)`. */
  step(open: number, high: number, low: number, close: number, volume: number, rows: Float64Array, offset: number): void;
}

/** What a feature set supplies to the shared engine and batch code. */
export interface FeatureSetDefinition {
  readonly featureNames: readonly string[];
  readonly lookahead: number;
  /** Bars before this index never have every feature defined. */
  readonly warmupBars: number;
  createIndicators(): IndicatorState;
}

const INITIAL_CAPACITY = 1024;

/**
 * A growing history's feature rows: the engine behind every feature set. `append` validates the bar
 * and runs the set's indicator state once (constant work); every row stays in memory so that
 * `featuresAt` of any bar is a copy of one row.
 */
export class IncrementalFeatureTable implements FeatureEngine {
  private readonly width: number;
  private readonly indicators: IndicatorState;
  private rows: Float64Array;
  private count = 0;
  private readonly dates: string[] = [];

  constructor(definition: FeatureSetDefinition, capacity = INITIAL_CAPACITY) {
    this.width = definition.featureNames.length;
    this.indicators = definition.createIndicators();
    this.rows = new Float64Array(Math.max(1, capacity) * this.width);
  }

  get length(): number {
    return this.count;
  }

  /** Throws a DataError naming the field, and leaves the state unchanged, if the bar is invalid or not after the last one. */
  append(bar: Bar): void {
    const problem = findBarProblem(bar, this.count > 0 ? this.dates[this.count - 1] : undefined);
    if (problem) throw new DataError(`bar ${JSON.stringify(bar.date)}: ${problem.message}`, { field: problem.field });
    this.appendValid(bar.date, bar.open, bar.high, bar.low, bar.close, bar.volume);
  }

  /**
   * Appends every bar of a series. A DataError names the series row (0-based) and the field; the
   * bars before that row stay appended.
   */
  appendSeries(series: BarSeries): void {
    const { date: dates, open, high, low, close, volume } = series;
    const n = dates.length;
    this.reserve(this.count + n);
    for (let i = 0; i < n; i++) {
      const date = dates[i];
      const previous = this.count > 0 ? this.dates[this.count - 1] : undefined;
      const dateProblem = findDateProblem(date, previous);
      const problem = dateProblem ? { field: 'date', message: dateProblem } : findValueProblem(open[i], high[i], low[i], close[i], volume[i]);
      if (problem) throw new DataError(`row ${i}, field "${problem.field}": ${problem.message}`, { row: i, field: problem.field });
      this.appendValid(date, open[i], high[i], low[i], close[i], volume[i]);
    }
  }

  featuresAt(i: number, out: Float64Array): void {
    if (!(Number.isInteger(i) && i >= 0 && i < this.count)) throw new RangeError(`no bar ${i}: the engine holds bars 0 .. ${this.count - 1}`);
    if (out.length < this.width) throw new RangeError(`featuresAt needs an output of length ${this.width}, got ${out.length}`);
    const rows = this.rows;
    const start = i * this.width;
    for (let k = 0; k < this.width; k++) out[k] = rows[start + k];
  }

  /** The rows and dates so far, sharing memory with the state (for a batch that is then discarded). */
  snapshot(): { values: Float64Array; dates: string[] } {
    return { values: this.rows.subarray(0, this.count * this.width), dates: this.dates };
  }

  private appendValid(date: string, open: number, high: number, low: number, close: number, volume: number): void {
    if ((this.count + 1) * this.width > this.rows.length) this.reserve(2 * (this.count + 1));
    this.indicators.step(open, high, low, close, volume, this.rows, this.count * this.width);
    this.dates.push(date);
    this.count++;
  }

  private reserve(bars: number): void {
    if (bars * this.width <= this.rows.length) return;
    const grown = new Float64Array(bars * this.width);
    grown.set(this.rows.subarray(0, this.count * this.width));
    this.rows = grown;
  }
}

/** An engine for a feature set, seeded with `history` if given (room for growth reserved). */
export function createFeatureEngine(definition: FeatureSetDefinition, history?: BarSeries): IncrementalFeatureTable {
  const engine = new IncrementalFeatureTable(definition, history ? history.date.length + INITIAL_CAPACITY : INITIAL_CAPACITY);
  if (history) engine.appendSeries(history);
  return engine;
}

/**
 * Features of a whole history: the engine run over it, so that batch rows and engine rows are the
 * same numbers by construction. Model rows (FEATURES.md §4, generalised): from the first bar with
 * every feature defined (`warmupBars`) to the last bar whose target is known and whose look-ahead
 * lies inside the history the target was computed from, i.e. `end = length - 1 - lookahead`
 * (exclusive). The reference pipeline dropped the final bar (no target) before computing `atr`, so
 * its last row lacked the look-ahead and was left out as well: 200 .. N-3 on MSFT.csv.
 */
export function computeFeatureTable(definition: FeatureSetDefinition, series: BarSeries): FeatureTable {
  const n = series.date.length;
  const state = new IncrementalFeatureTable(definition, n);
  state.appendSeries(series);
  const { values, dates } = state.snapshot();
  const target = new Float64Array(n);
  const close = series.close;
  for (let t = 0; t < n - 1; t++) target[t] = close[t + 1] / close[t];
  if (n > 0) target[n - 1] = Number.NaN;
  const modelRowStart = Math.min(definition.warmupBars, n);
  const modelRowEnd = Math.max(modelRowStart, n - 1 - definition.lookahead);
  return {
    featureNames: definition.featureNames,
    dates,
    values: { rows: n, cols: definition.featureNames.length, data: values },
    target,
    modelRowStart,
    modelRowEnd,
  };
}
