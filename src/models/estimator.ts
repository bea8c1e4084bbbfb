import { ForecastError } from '../errors.js';
import { LinearRegression } from './linear.js';
import { DecisionTreeRegressor } from './tree/index.js';
import type { LinearState, ModelState, TreeState } from './types.js';

/**
 * A regressor of one of the kinds a bundle can store. A closed union rather than `Regressor<ModelState>`,
 * so that code needing one kind (comparing trees node by node) checks it (`instanceof`, or the state's
 * `kind`) and the compiler follows, instead of a cast that fails later at run time.
 */
export type Estimator = DecisionTreeRegressor | LinearRegression;

/** The `kind` of every model state this program can rebuild. */
export const MODEL_KINDS: readonly ModelState['kind'][] = ['decision_tree_regressor', 'linear_regression'];

/** A fitted regressor rebuilt from the state a bundle stores; the overloads keep the kind. */
export function modelFromState(state: TreeState): DecisionTreeRegressor;
export function modelFromState(state: LinearState): LinearRegression;
export function modelFromState(state: ModelState): Estimator;
export function modelFromState(state: ModelState): Estimator {
  switch (state.kind) {
    case 'decision_tree_regressor':
      return DecisionTreeRegressor.fromState(state);
    case 'linear_regression':
      return LinearRegression.fromState(state);
    default:
      // Reached only by a state read from JSON that the type cannot describe.
      throw new ForecastError(`unknown model kind ${kindOf(state)}: expected one of ${MODEL_KINDS.join(', ')}`, 422, 'invalid_model');
  }
}

function kindOf(state: unknown): string {
  const kind = typeof state === 'object' && state !== null && 'kind' in state ? state.kind : undefined;
  return typeof kind === 'string' ? JSON.stringify(kind.slice(0, 64)) : typeof kind;
}
