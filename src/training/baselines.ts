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

/** The cross-validation mean: each metric averaged over the folds (rows: their total), as the seed reported it. */
export function meanOfMetrics(list: readonly RegressionMetrics[]): RegressionMetrics | null {
  if (list.length === 0) return null;
  const avg = (f: (m: RegressionMetrics) => number) => list.reduce((s, m) => s + f(m), 0) / list.length;
  return { mae: avg((m) => m.mae), mse: avg((m) => m.mse), r2: avg((m) => m.r2), rows: list.reduce((s, m) => s + m.rows, 0) };
}

/**
 * The folds' baselines averaged like the model's cross-validation mean, beside it; null unless
 * every fold recorded them. The training-mean baseline forecasts each fold's own training mean.
 */
export function meanFoldBaselines(folds: readonly { baselines?: Baselines }[], cv: RegressionMetrics): { persistence: RegressionMetrics; trainingMean: RegressionMetrics; beatsPersistence: boolean; beatsTrainingMean: boolean } | null {
  if (folds.length === 0 || folds.some((f) => !f.baselines)) return null;
  const persistence = meanOfMetrics(folds.map((f) => f.baselines!.persistence.metrics))!;
  const trainingMean = meanOfMetrics(folds.map((f) => f.baselines!.trainingMean.metrics))!;
  return { persistence, trainingMean, beatsPersistence: cv.mse < persistence.mse, beatsTrainingMean: cv.mse < trainingMean.mse };
}
