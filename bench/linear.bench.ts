/**
 * LinearRegression fit time on the project's design: 17 causal features of a synthetic history,
 * standardised, degree-2 expansion (171 columns, the first the constant 1). Three shapes:
 * the reference fold size (5,250 × 171), a wide rank-deficient fold (150 × 171, fewer rows than
 * columns, as early TimeSeriesSplit folds of short histories are), and a whole `train()` with the
 * linear model on 600 synthetic bars (three folds of ~88, ~176 and ~264 rows).
 *
 *   npx tsx bench/linear.bench.ts
 */
import { fileURLToPath } from 'node:url';
import { generateSyntheticBars } from '../src/data/index.js';
import { causalFeatureSet } from '../src/features/index.js';
import { LinearRegression } from '../src/models/linear.js';
import { type Matrix, sliceRows } from '../src/models/matrix.js';
import { PolynomialFeatures } from '../src/models/polynomial.js';
import { StandardScaler } from '../src/models/scaler.js';
import { modelRows, train } from '../src/training/train.js';
import { results } from './results.js';

export const title = 'linear regression fit';

const REPEATS = 7;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

/** Standardised, expanded causal features of a synthetic history: the matrix train() fits. */
function design(bars: number): { X: Matrix; y: Float64Array } {
  const table = causalFeatureSet.computeBatch(generateSyntheticBars({ seed: 1, bars }));
  const rows = modelRows(table);
  const scaled = new StandardScaler().fit(rows.X).transform(rows.X);
  return { X: new PolynomialFeatures().fit(scaled).transform(scaled), y: rows.y };
}

function timeFits(id: string, label: string, X: Matrix, y: Float64Array): void {
  const ms: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const t0 = performance.now();
    new LinearRegression().fit(X, y);
    ms.push(performance.now() - t0);
  }
  const rest = ms.slice(1);
  console.log(
    `  fit ${label.padEnd(24)} first ${ms[0].toFixed(0).padStart(5)} ms, then median ${median(rest).toFixed(0).padStart(5)} ms ` +
      `(min ${Math.min(...rest).toFixed(0)}, max ${Math.max(...rest).toFixed(0)}; ${REPEATS} fits)`,
  );
  results.figure({
    id,
    label: `LinearRegression fit ${label}`,
    value: median(rest),
    unit: 'ms',
    notes: `standardised degree-2 causal features of synthetic bars; median of ${REPEATS - 1} after a first fit of ${ms[0].toFixed(0)} ms`,
  });
}

export default async function run(): Promise<void> {
  const { X, y } = design(5600);
  if (X.rows < 5250) throw new Error(`expected at least 5,250 model rows, got ${X.rows}`);
  timeFits('fit.5250', `${5250} x ${X.cols}`, sliceRows(X, 0, 5250), y.slice(0, 5250));
  timeFits('fit.150-wide', `${150} x ${X.cols} (wide)`, sliceRows(X, 0, 150), y.slice(0, 150));

  const series = generateSyntheticBars({ seed: 1, bars: 600 });
  const ms: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    train({ series, source: { file: 'synthetic', sha256: '' }, featureSet: 'causal', model: 'linear' });
    ms.push(performance.now() - t0);
  }
  console.log(`  train() linear, 600 synthetic bars: ${ms.map((t) => t.toFixed(0)).join(', ')} ms`);
  results.figure({ id: 'train.600', label: 'train() with the linear model, 600 synthetic bars', value: median(ms), unit: 'ms', notes: `median of 3 (${ms.map((t) => t.toFixed(0)).join(', ')} ms)` });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await run();
}
