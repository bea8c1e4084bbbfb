import { ForecastError } from '../errors.js';
import { pairwiseSum } from './pairwise-sum.js';

/**
 * scikit-learn's regression metrics (1.2, single output, no sample weights). Sums use numpy's
 * pairwise summation in numpy's operand order, so the values equal scikit-learn's bit for bit.
 */

export interface RegressionMetrics {
  mae: number;
  mse: number;
  r2: number;
  rows: number;
}

function check(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, fn: string): number {
  const n = yTrue.length;
  if (n !== yPred.length) throw new ForecastError(`${fn}: y_true has ${n} values, y_pred has ${yPred.length}`, 422, 'invalid_data');
  if (n === 0) throw new ForecastError(`${fn}: no values`, 422, 'invalid_data');
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(yTrue[i])) throw new ForecastError(`${fn}: y_true[${i}] is ${yTrue[i]}`, 422, 'invalid_data');
    if (!Number.isFinite(yPred[i])) throw new ForecastError(`${fn}: y_pred[${i}] is ${yPred[i]}`, 422, 'invalid_data');
  }
  return n;
}

/** `np.average(np.abs(y_pred - y_true))`. */
export function meanAbsoluteError(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): number {
  const n = check(yTrue, yPred, 'meanAbsoluteError');
  return pairwiseSum((i) => Math.abs(yPred[i] - yTrue[i]), 0, n) / n;
}

/** `np.average((y_true - y_pred) ** 2)`. */
export function meanSquaredError(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): number {
  const n = check(yTrue, yPred, 'meanSquaredError');
  return (
    pairwiseSum(
      (i) => {
        const e = yTrue[i] - yPred[i];
        return e * e;
      },
      0,
      n,
    ) / n
  );
}

/**
 * `1 - SS_res / SS_tot`. Like scikit-learn (`force_finite=True`): when y_true is constant
 * (SS_tot = 0) the score is 1 for a perfect prediction and 0 otherwise, never -Infinity; with
 * fewer than two rows it is NaN (R² is not defined), as scikit-learn returns.
 */
export function r2Score(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): number {
  const n = check(yTrue, yPred, 'r2Score');
  if (n < 2) return NaN;
  const num = pairwiseSum(
    (i) => {
      const e = yTrue[i] - yPred[i];
      return e * e;
    },
    0,
    n,
  );
  const mean = pairwiseSum((i) => yTrue[i], 0, n) / n;
  const den = pairwiseSum(
    (i) => {
      const e = yTrue[i] - mean;
      return e * e;
    },
    0,
    n,
  );
  if (num === 0) return 1;
  if (den === 0) return 0;
  return 1 - num / den;
}

export function regressionMetrics(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): RegressionMetrics {
  return {
    mae: meanAbsoluteError(yTrue, yPred),
    mse: meanSquaredError(yTrue, yPred),
    r2: r2Score(yTrue, yPred),
    rows: yTrue.length,
  };
}
