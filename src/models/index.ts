/** Public surface of the models stage. */
export type { Matrix } from './matrix.js';
export { createMatrix, matrixFromRows, matrixRow, sliceRows } from './matrix.js';
export { StandardScaler, type ScalerState } from './scaler.js';
export { PolynomialFeatures, type PolynomialState } from './polynomial.js';
export { DecisionTreeRegressor } from './tree/index.js';
export { ModelInputError } from './types.js';
export { LinearRegression } from './linear.js';
export { compareLinearModels, describeLinearDifference, type LinearDifference } from './linear-compare.js';
export { TimeSeriesSplit } from './cv.js';
export { regressionMetrics, meanAbsoluteError, meanSquaredError, r2Score } from './metrics.js';
export { FeaturePipeline, csvRoundTrip, takeRows, type ForecastPipeline } from './pipeline.js';
export type { Regressor, TreeState, LinearState, ModelState } from './types.js';
export { MODEL_KINDS, modelFromState, type Estimator } from './estimator.js';
