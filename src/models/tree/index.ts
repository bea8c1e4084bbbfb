export { DecisionTreeRegressor } from './regressor.js';
export type { DecisionTreeRegressorOptions, ThresholdRule } from './regressor.js';
export { compareTrees, describeTreeDifference } from './compare.js';
export type { TreeDifference } from './compare.js';
