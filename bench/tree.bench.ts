/**
 * DecisionTreeRegressor fit and predict time on the reference fold (FEATURES.md §5: MSFT_X_learn
 * rows 0..5249, degree-2 expansion, best-first 50 leaves, min_samples_split=5, max_depth=19),
 * measured side by side with scikit-learn 1.2.1 when /usr/bin/python3 has it.
 *
 *   npx tsx bench/tree.bench.ts
 *
 * Reads ../shared/reference (never copied into the repository); skips when it is absent.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseLegacyFloat } from '../src/data/legacy-float.js';
import { type Matrix, matrixFromRows, sliceRows } from '../src/models/matrix.js';
import { PolynomialFeatures } from '../src/models/polynomial.js';
import { DecisionTreeRegressor, compareTrees, describeTreeDifference } from '../src/models/tree/index.js';
import type { TreeState } from '../src/models/types.js';
import { results } from './results.js';

export const title = 'decision tree fit, beside scikit-learn on the reference fold';

const REFERENCE_DIR = fileURLToPath(new URL('../../shared/reference/', import.meta.url));
const FIXTURE = new URL('../test/fixtures/sklearn/reference_fold.json', import.meta.url);
const PYTHON = '/usr/bin/python3';
const REPEATS = 5;
const TRAIN_ROWS = 5250;
/** As many rows as the reference test set; its features are not in ../shared, so validation rows stand in. */
const PREDICT_ROWS = 961;
const PARAMS = { maxDepth: 19, minSamplesSplit: 5, maxLeafNodes: 50, randomState: 1 } as const;

export interface TreeBenchResult {
  skipped?: string;
  oursFitMs?: number[];
  oursFitMedianMs?: number;
  oursPredictMs?: number;
  oursPredictRowUs?: number;
  sklearnFitMs?: number[];
  sklearnFitMedianMs?: number;
  sklearnPredictMs?: number;
  speedup?: number;
  identical?: string;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function readCsv(name: string): number[][] {
  const lines = readFileSync(REFERENCE_DIR + name, 'utf8').split(/\r?\n/).filter((l) => l.length > 0);
  return lines.slice(1).map((line) => line.split(',').map(parseLegacyFloat));
}

function loadFold(): { X: Matrix; y: Float64Array } {
  const raw = matrixFromRows(readCsv('MSFT_X_learn.csv'));
  const X = new PolynomialFeatures().fit(raw).transform(raw);
  const y = Float64Array.from(readCsv('MSFT_y_learn.csv').map((r) => r[0]));
  return { X, y };
}

const SKLEARN_SCRIPT = `
import json, sys, time
import numpy as np, pandas as pd, sklearn
from sklearn.preprocessing import PolynomialFeatures
from sklearn.tree import DecisionTreeRegressor
ref, repeats, train_rows, predict_rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
X = pd.read_csv(ref + 'MSFT_X_learn.csv', float_precision='legacy').values
y = pd.read_csv(ref + 'MSFT_y_learn.csv', float_precision='legacy').values[:, 0]
Xp = PolynomialFeatures(degree=2).fit_transform(X)
Xtr, ytr = Xp[:train_rows], y[:train_rows]
Xte = Xp[train_rows:train_rows + predict_rows]
fits = []
for _ in range(repeats):
    est = DecisionTreeRegressor(max_depth=19, min_samples_split=5, max_leaf_nodes=50, random_state=1)
    t0 = time.perf_counter()
    est.fit(Xtr, ytr)
    fits.append((time.perf_counter() - t0) * 1000)
preds = []
for _ in range(20):
    t0 = time.perf_counter()
    est.predict(Xte)
    preds.append((time.perf_counter() - t0) * 1000)
print(json.dumps({'version': sklearn.__version__, 'fit_ms': fits, 'predict_ms': sorted(preds)[len(preds) // 2]}))
`;

function sklearnTimes(): { version: string; fit_ms: number[]; predict_ms: number } | string {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  const r = spawnSync(PYTHON, ['-c', SKLEARN_SCRIPT, REFERENCE_DIR, String(REPEATS), String(TRAIN_ROWS), String(PREDICT_ROWS)], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (r.status !== 0) return `scikit-learn not usable: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`;
  return JSON.parse(r.stdout.trim().split('\n').pop() as string);
}

export default async function run(): Promise<TreeBenchResult> {
  if (!existsSync(REFERENCE_DIR + 'MSFT_X_learn.csv') || !existsSync(REFERENCE_DIR + 'MSFT_y_learn.csv')) {
    const skipped = `reference data not found at ${REFERENCE_DIR}: tree benchmark skipped`;
    console.log(skipped);
    results.note(skipped);
    return { skipped };
  }
  const { X, y } = loadFold();
  const Xtrain = sliceRows(X, 0, TRAIN_ROWS);
  const ytrain = y.subarray(0, TRAIN_ROWS);
  const Xpred = sliceRows(X, TRAIN_ROWS, TRAIN_ROWS + PREDICT_ROWS);

  // Ours: the first fit includes V8's compilation; report it, then the median of REPEATS more.
  let t0 = performance.now();
  let model = new DecisionTreeRegressor(PARAMS).fit(Xtrain, ytrain);
  const coldMs = performance.now() - t0;
  const fits: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    t0 = performance.now();
    model = new DecisionTreeRegressor(PARAMS).fit(Xtrain, ytrain);
    fits.push(performance.now() - t0);
  }
  const predicts: number[] = [];
  for (let r = 0; r < 20; r++) {
    t0 = performance.now();
    model.predict(Xpred);
    predicts.push(performance.now() - t0);
  }
  const oursPredictMs = median(predicts);
  const row = Xpred.data.subarray(0, Xpred.cols);
  const rowReps = 200_000;
  t0 = performance.now();
  let sink = 0;
  for (let r = 0; r < rowReps; r++) sink += model.predictRow(row);
  const oursPredictRowUs = ((performance.now() - t0) * 1000) / rowReps;
  if (!Number.isFinite(sink)) throw new Error('predictRow returned a non-finite value');

  let identical = 'fixture test/fixtures/sklearn/reference_fold.json missing';
  if (existsSync(FIXTURE)) {
    const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as { tree: TreeState };
    identical = describeTreeDifference(compareTrees(model.state as TreeState, fixture.tree));
  }

  const result: TreeBenchResult = {
    oursFitMs: fits,
    oursFitMedianMs: median(fits),
    oursPredictMs,
    oursPredictRowUs,
    identical,
  };
  const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
  console.log(`tree: reference fold ${TRAIN_ROWS} x ${X.cols}, best-first 50 leaves (tree vs scikit-learn fixture: ${identical})`);
  console.log(`  ours     fit   median of ${REPEATS}: ${fmt(result.oursFitMedianMs as number)}  [${fits.map((t) => t.toFixed(0)).join(', ')}] (first, cold: ${fmt(coldMs)})`);

  const sk = sklearnTimes();
  if (typeof sk === 'string') {
    console.log(`  scikit-learn: skipped (${sk})`);
  } else {
    result.sklearnFitMs = sk.fit_ms;
    result.sklearnFitMedianMs = median(sk.fit_ms);
    result.sklearnPredictMs = sk.predict_ms;
    result.speedup = (result.sklearnFitMedianMs as number) / (result.oursFitMedianMs as number);
    console.log(`  sklearn  fit   median of ${REPEATS}: ${fmt(result.sklearnFitMedianMs)}  [${sk.fit_ms.map((t) => t.toFixed(0)).join(', ')}] (scikit-learn ${sk.version})`);
    console.log(`  fit speed-up (sklearn / ours): ${result.speedup.toFixed(2)}x`);
  }
  console.log(`  ours     predict ${PREDICT_ROWS} rows: ${oursPredictMs.toFixed(3)} ms; predictRow: ${oursPredictRowUs.toFixed(3)} us/row`);
  if (result.sklearnPredictMs !== undefined) {
    console.log(`  sklearn  predict ${PREDICT_ROWS} rows: ${result.sklearnPredictMs.toFixed(3)} ms`);
  }
  const fold = `reference fold ${TRAIN_ROWS} x ${X.cols}, best-first 50 leaves; median of ${REPEATS} fits`;
  const skNote = typeof sk === 'string' ? `scikit-learn not measured: ${sk} (apt-get install python3-sklearn python3-pandas)` : `scikit-learn ${sk.version} (${PYTHON}), the same fold and parameters`;
  results.figure({ id: 'fit.ours', label: 'tree fit, ours', value: result.oursFitMedianMs ?? null, unit: 'ms', notes: `${fold}; first (cold) fit ${coldMs.toFixed(0)} ms; tree vs scikit-learn fixture: ${identical}` });
  results.figure({ id: 'fit.sklearn', label: "tree fit, Debian's scikit-learn", value: result.sklearnFitMedianMs ?? null, unit: 'ms', notes: `${fold}; ${skNote}` });
  results.figure({ id: 'fit.speedup', label: 'tree fit speed-up (scikit-learn time / ours)', value: result.speedup ?? null, unit: '×', notes: 'ratio within one run' });
  results.figure({ id: 'predict.ours', label: `tree predict ${PREDICT_ROWS} rows, ours`, value: oursPredictMs, unit: 'ms', notes: `median of 20; predictRow ${oursPredictRowUs.toFixed(3)} µs/row` });
  results.figure({ id: 'predict.sklearn', label: `tree predict ${PREDICT_ROWS} rows, scikit-learn`, value: result.sklearnPredictMs ?? null, unit: 'ms', notes: typeof sk === 'string' ? skNote : 'median of 20' });
  return result;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await run();
}
