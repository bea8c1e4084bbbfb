/** Feature sets: the one definition of the features that training, evaluation and serving call. */
import { causalFeatureSet } from './causal.js';
import { referenceFeatureSet } from './reference.js';
import type { FeatureSet, FeatureSetName } from './types.js';

export type { FeatureEngine, FeatureSet, FeatureSetName, FeatureTable } from './types.js';
export { CAUSAL_PARAMETERS, causalFeatureSet } from './causal.js';
export { REFERENCE_PARAMETERS, referenceFeatureSet } from './reference.js';

export const FEATURE_SETS: Readonly<Record<FeatureSetName, FeatureSet>> = Object.freeze({
  reference: referenceFeatureSet,
  causal: causalFeatureSet,
});

/** The feature set of that name; throws a RangeError naming the known sets otherwise. */
export function getFeatureSet(name: string): FeatureSet {
  if (!Object.prototype.hasOwnProperty.call(FEATURE_SETS, name))
    throw new RangeError(`unknown feature set ${JSON.stringify(name)}: expected one of ${Object.keys(FEATURE_SETS).join(', ')}`);
  return FEATURE_SETS[name as FeatureSetName];
}
