import { ForecastError } from '../errors.js';

/** One train/validation split as half-open row ranges `[start, end)`. */
export interface Fold {
  train: [start: number, end: number];
  test: [start: number, end: number];
}

export interface TimeSeriesSplitOptions {
  nSplits: number;
  /** Keep at most this many of the most recent rows before each test block. */
  maxTrainSize?: number | null;
  /** Rows per test block (default `floor(nSamples / (nSplits + 1))`). */
  testSize?: number | null;
  /** Rows left out between the end of train and the start of test. */
  gap?: number;
}

function checkInt(name: string, v: number, min: number): void {
  if (!Number.isSafeInteger(v) || v < min) throw new ForecastError(`TimeSeriesSplit: ${name} must be an integer >= ${min}, got ${v}`, 422, 'invalid_option');
}

/**
 * scikit-learn's `TimeSeriesSplit` (1.2, same folds as 0.19 for its parameters): `nSplits` test
 * blocks of `testSize` rows ending at the last row, each trained on everything before it (less
 * `gap`, at most `maxTrainSize` rows). For 7,000 rows and 3 splits the last fold trains on rows
 * 0..5249 and validates on 5250..6999 (FEATURES.md §5). Contiguous ranges, not index arrays:
 * every fold is a slice of time.
 */
export class TimeSeriesSplit {
  readonly nSplits: number;
  readonly maxTrainSize: number | null;
  readonly testSize: number | null;
  readonly gap: number;

  constructor(options: TimeSeriesSplitOptions) {
    checkInt('nSplits', options.nSplits, 2);
    this.nSplits = options.nSplits;
    this.maxTrainSize = options.maxTrainSize ?? null;
    this.testSize = options.testSize ?? null;
    this.gap = options.gap ?? 0;
    if (this.maxTrainSize !== null) checkInt('maxTrainSize', this.maxTrainSize, 1);
    if (this.testSize !== null) checkInt('testSize', this.testSize, 1);
    checkInt('gap', this.gap, 0);
  }

  *split(nSamples: number): Generator<Fold> {
    checkInt('nSamples', nSamples, 0);
    const nFolds = this.nSplits + 1;
    const testSize = this.testSize ?? Math.floor(nSamples / nFolds);
    if (nFolds > nSamples) {
      throw new ForecastError(`Cannot have number of folds=${nFolds} greater than the number of samples=${nSamples}.`, 422, 'invalid_option');
    }
    if (nSamples - this.gap - testSize * this.nSplits <= 0) {
      throw new ForecastError(
        `Too many splits=${this.nSplits} for number of samples=${nSamples} with test_size=${testSize} and gap=${this.gap}.`,
        422,
        'invalid_option',
      );
    }
    for (let testStart = nSamples - this.nSplits * testSize; testStart < nSamples; testStart += testSize) {
      const trainEnd = testStart - this.gap;
      // scikit-learn tests `if self.max_train_size and ...`: 0 or None mean "no limit".
      const trainStart = this.maxTrainSize && this.maxTrainSize < trainEnd ? trainEnd - this.maxTrainSize : 0;
      yield { train: [trainStart, trainEnd], test: [testStart, testStart + testSize] };
    }
  }

  /** All folds as an array. */
  folds(nSamples: number): Fold[] {
    return [...this.split(nSamples)];
  }

  getNSplits(): number {
    return this.nSplits;
  }
}
