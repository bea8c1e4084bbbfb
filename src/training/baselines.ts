import type { BaselineReport, Baselines, RegressionMetrics } from '../bundle/types.js';
import { pairwiseSum } from '../models/pairwise-sum.js';
import { regressionMetrics } from '../models/metrics.js';

/**
 * What doing nothing scores on the same rows the model is scored on, so a negative R² can be read:
 * - persistence: the target is close[t+1] / close[t], so "tomorrow's close equals today's" is the
 *   constant forecast 1;
 * - training mean: the mean target of the rows the forecast could have learned from (scikit-learn's
 *   DummyRegressor; numpy's pairwise sum, so the mean equals `np.mean` bit for bit).
 * The model beats a baseline when its MSE on these rows is lower.
 *
 * The one computation of baselines: for the test rows (against the learn rows' targets) and for each
 * cross-validation fold (against the fold's training rows).
 */
export function baselines(trainTargets: ArrayLike<number>, evalTargets: ArrayLike<number>, model: RegressionMetrics): Baselines {
  const trainingMean = pairwiseSum((i) => trainTargets[i], 0, trainTargets.length) / trainTargets.length;
  const report = (prediction: number): BaselineReport => {
    const metrics = regressionMetrics(evalTargets, new Float64Array(evalTargets.length).fill(prediction));
    return { prediction, metrics, modelBeats: model.mse < metrics.mse };
  };
  return { persistence: report(1), trainingMean: report(trainingMean) };
}
