import type { Bar, BarSeries } from '../data/bars.js';
import type { Matrix } from '../data/matrix.js';

export type FeatureSetName = 'reference' | 'causal';

/**
 * A named feature set: the one definition that training, evaluation, serving and `verify` all call
 * (parity by construction).
 */
export interface FeatureSet {
  readonly name: FeatureSetName;
  /** Feature columns of a model row, in model order. */
  readonly featureNames: readonly string[];
  /** How this set reads CSV numbers: `legacy` = pandas' legacy parser (FEATURES.md §3b.1), `exact` = correctly rounded. */
  readonly numberParsing: 'legacy' | 'exact';
  /** How many later bars a row's features read (reference: 1, the look-ahead `atr`; causal: 0). */
  readonly lookahead: number;
  /** Known defects of the definition, told to users (FEATURES.md §6 for the reference set). */
  readonly caveats: readonly string[];
  /** Bars before this index never have every feature defined (reference: 200; FEATURES.md §4). */
  readonly warmupBars: number;
  /**
   * Features of every bar of a history at once. Throws a DataError naming the row and field if a
   * bar is invalid or out of date order.
   */
  computeBatch(series: BarSeries): FeatureTable;
  /**
   * An incremental engine, optionally seeded with a history, whose rows equal `computeBatch`'s bit
   * for bit once their look-ahead bars have arrived.
   */
  createEngine(history?: BarSeries): FeatureEngine;
}

/** Features for every bar of a history, aligned with the bars. */
export interface FeatureTable {
  readonly featureNames: readonly string[];
  readonly dates: readonly string[];
  /** One row per bar; NaN (or ±Infinity) where a feature is not defined. */
  readonly values: Matrix;
  /** `target[t]` = next bar's return `close[t+1] / close[t]`; NaN for the last bar. */
  readonly target: Float64Array;
  /**
   * Bars `[modelRowStart, modelRowEnd)` are model rows (training / evaluation rows): from the first
   * bar with every feature defined (`warmupBars`) to the last whose target is known and whose
   * look-ahead is satisfied (`modelRowEnd = length - 1 - lookahead`). For the reference set on
   * MSFT.csv: 200 and 8161, i.e. bars 200 .. N-3 inclusive, 7,961 rows (FEATURES.md §4). Features
   * inside the range can still be non-finite on unusual data (flat prices): consumers check.
   */
  readonly modelRowStart: number;
  /** Exclusive. */
  readonly modelRowEnd: number;
}

/** Incremental feature state over a growing history (constant work per appended bar). */
export interface FeatureEngine {
  /** Number of bars appended so far. */
  readonly length: number;
  /**
   * Appends the next bar (constant work). Throws a DataError naming the field, and changes nothing,
   * if the bar is invalid or its date is not after the last bar's.
   */
  append(bar: Bar): void;
  /**
   * Writes the features of bar `i` as known now into `out` (length >= featureNames.length), O(1).
   * With a look-ahead set, the newest `lookahead` bars' values are provisional until later bars
   * arrive (reference: the newest bar's `atr` uses high - low only, as pandas does on F's last row).
   */
  featuresAt(i: number, out: Float64Array): void;
}
