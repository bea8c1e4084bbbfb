import type { Bar, BarSeries } from '../data/bars.js';
import type { Matrix } from '../models/matrix.js';

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
  /** Features of every bar of a history at once. */
  computeBatch(series: BarSeries): FeatureTable;
  /** An incremental engine whose rows equal `computeBatch`'s bit for bit. */
  createEngine(): FeatureEngine;
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
   * Bars that are model rows (training / evaluation rows): every feature finite, target known and
   * the look-ahead satisfied. For the reference set on MSFT.csv: bar indices 200 .. N-3 (FEATURES.md §4).
   */
  readonly modelRowStart: number;
  readonly modelRowEnd: number;
}

/** Incremental feature state over a growing history (constant work per appended bar). */
export interface FeatureEngine {
  /** Number of bars appended so far. */
  readonly length: number;
  append(bar: Bar): void;
  /**
   * Writes the features of bar `i` as known now into `out` (length = featureNames.length).
   * With a look-ahead set, the newest bars' values are provisional until later bars arrive.
   */
  featuresAt(i: number, out: Float64Array): void;
}
