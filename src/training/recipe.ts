/**
 * Training recipes: the numbers that define how a model is trained, in one place.
 *
 * The `reference` recipe is the seed system's (FEATURES.md §4-§5): 7,000 learn rows, the last fold
 * of a 3-split TimeSeriesSplit, and the tree the seed really grew. Its quirks (scikit-learn 0.19's
 * threshold rule, the depth that version really reached, the CSV round trip of the scaled matrices)
 * belong to this recipe and nowhere else; every other model uses modern rules.
 */
export interface TreeHyperparameters {
  maxDepth: number | null;
  minSamplesSplit: number;
  minSamplesLeaf: number;
  maxLeafNodes: number | null;
  randomState: number;
  thresholdRule: 'modern' | 'sklearn-0.19';
}

export interface Recipe {
  name: 'reference' | 'modern';
  /** Learn rows (the rest of the model rows are the test set); `null` = 88% of the model rows. */
  learnRows: number | null;
  cvSplits: number;
  polynomialDegree: 2 | null;
  csvRoundTrip: boolean;
  tree: TreeHyperparameters;
}

export const REFERENCE_RECIPE: Recipe = {
  name: 'reference',
  learnRows: 7000,
  cvSplits: 3,
  polynomialDegree: 2,
  csvRoundTrip: true,
  tree: {
    // The seed asked for max_depth=18, but scikit-learn 0.19's best-first builder grew one level
    // past it; 19 regrows the pickled tree under modern rules (FEATURES.md §5).
    maxDepth: 19,
    minSamplesSplit: 5,
    minSamplesLeaf: 1,
    maxLeafNodes: 50,
    randomState: 1,
    thresholdRule: 'sklearn-0.19',
  },
};

export const MODERN_RECIPE: Recipe = {
  name: 'modern',
  learnRows: null,
  cvSplits: 3,
  polynomialDegree: 2,
  csvRoundTrip: false,
  tree: { maxDepth: 18, minSamplesSplit: 5, minSamplesLeaf: 1, maxLeafNodes: 50, randomState: 1, thresholdRule: 'modern' },
};

/** Share of model rows used for learning when `learnRows` is not given (the seed's 7,000 of 7,961). */
export const DEFAULT_LEARN_FRACTION = 0.88;
