import type { LinearState } from './types.js';

/** How far apart two linear models are: `--compare-sklearn-pickle` for `--model linear`. */
export interface LinearDifference {
  /** Input counts when they differ (nothing else is compared then), else null. */
  nFeatures: [a: number, b: number] | null;
  /** Largest |a.coef[j] - b.coef[j]|, and that over the largest |coef| of either model (0 when all are 0). */
  maxCoefDiff: number;
  relativeCoefDiff: number;
  interceptDiff: number;
  /** Every coefficient and the intercept equal bit for bit (`Object.is`). */
  identical: boolean;
}

/**
 * Least squares solved by another factorisation agrees to rounding, not bit for bit (see
 * LinearRegression), so the comparison reports distances rather than the first differing field.
 */
export function compareLinearModels(a: LinearState, b: LinearState): LinearDifference {
  if (a.nFeatures !== b.nFeatures || a.coef.length !== b.coef.length)
    return { nFeatures: [a.coef.length, b.coef.length], maxCoefDiff: NaN, relativeCoefDiff: NaN, interceptDiff: NaN, identical: false };
  let maxDiff = 0;
  let scale = 0;
  let identical = Object.is(a.intercept, b.intercept);
  for (let j = 0; j < a.coef.length; j++) {
    maxDiff = Math.max(maxDiff, Math.abs(a.coef[j] - b.coef[j]));
    scale = Math.max(scale, Math.abs(a.coef[j]), Math.abs(b.coef[j]));
    if (!Object.is(a.coef[j], b.coef[j])) identical = false;
  }
  return { nFeatures: null, maxCoefDiff: maxDiff, relativeCoefDiff: scale === 0 ? maxDiff : maxDiff / scale, interceptDiff: Math.abs(a.intercept - b.intercept), identical };
}

/** One line for the CLI. */
export function describeLinearDifference(d: LinearDifference): string {
  if (d.nFeatures) return `the models take ${d.nFeatures[0]} and ${d.nFeatures[1]} inputs`;
  if (d.identical) return 'identical, bit for bit';
  const g = (x: number) => x.toPrecision(3);
  return `coefficients differ by at most ${g(d.maxCoefDiff)} (${g(d.relativeCoefDiff)} of the largest), intercepts by ${g(d.interceptDiff)}`;
}
