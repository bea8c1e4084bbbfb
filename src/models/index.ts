/** Public surface of the models stage. */
export type { Matrix } from './matrix.js';
export { createMatrix, matrixFromRows, matrixRow, sliceRows } from './matrix.js';
export { StandardScaler, type ScalerState } from './scaler.js';
export { PolynomialFeatures, type PolynomialState } from './polynomial.js';
export { DecisionTreeRegressor } from './tree/index.js';
export { LinearRegression } from './linear.js';
export { TimeSeriesSplit } from './cv.js';
export { regressionMetrics, meanAbsoluteError, meanSquaredError, r2Score } from './metrics.js';
export { FeaturePipeline, csvRoundTrip, takeRows } from './pipeline.js';
export type { Regressor, TreeState, LinearState, ModelState } from './types.js';

import { DecisionTreeRegressor } from './tree/index.js';
import { LinearRegression } from './linear.js';
import type { ModelState, Regressor } from './types.js';

/** A fitted regressor rebuilt from the state a bundle stores. */
export function modelFromState(state: ModelState): Regressor<ModelState> {
  switch (state.kind) {
    case 'decision_tree_regressor':
      return DecisionTreeRegressor.fromState(state) as unknown as Regressor<ModelState>;
    case 'linear_regression':
      return LinearRegression.fromState(state) as unknown as Regressor<ModelState>;
    default:
      throw new Error(`unknown model kind ${(state as { kind: string }).kind}`);
  }
}
