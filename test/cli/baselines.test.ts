import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBundle, writeBundle, type BundleManifest } from '../../src/bundle/index.js';
import type { Baselines } from '../../src/bundle/types.js';
import { generateSyntheticBars, writeBarsCsv } from '../../src/data/index.js';
import { runCli } from '../helpers/cli.js';
import { needsReference, referenceFile, tempDir } from '../helpers/reference.js';
import { trainTiny } from '../serve/helpers/bundles.js';
import { call, startTestServer, type TestServer } from '../serve/helpers/http.js';

/** The cells of the table line whose label starts with `label`, the first after line `from`. */
function rowAfter(stdout: string, from: number, label: string): { index: number; cells: string[] } {
  const lines = stdout.split('\n');
  const index = lines.findIndex((l, i) => i > from && l.startsWith(label));
  expect(index, `no line "${label}..." after line ${from} in:\n${stdout}`).toBeGreaterThan(from);
  return { index, cells: lines[index].slice(label.length).trim().split(/\s{2,}/) };
}

/** The persistence and training-mean rows following the line that starts with `metricsLabel` agree with the manifest's baselines. */
function expectBaselineRows(stdout: string, metricsLabel: string, b: Baselines): void {
  const metrics = rowAfter(stdout, -1, metricsLabel);
  const persistence = rowAfter(stdout, metrics.index, '  baseline: persistence (y = 1)');
  const mean = rowAfter(stdout, metrics.index, `  baseline: training mean (y = ${b.trainingMean.prediction.toPrecision(8)})`);
  expect([persistence.index, mean.index]).toEqual([metrics.index + 1, metrics.index + 2]);
  for (const [row, report] of [[persistence, b.persistence], [mean, b.trainingMean]] as const) {
    // The label of the mean row ends in its parenthesis; what remains are n, MAE, MSE, R2 and the verdict.
    expect(row.cells).toEqual([
      String(report.metrics.rows),
      report.metrics.mae.toPrecision(8),
      report.metrics.mse.toPrecision(8),
      report.metrics.r2.toPrecision(8),
      report.modelBeats ? 'yes' : 'no',
    ]);
  }
}

/** The manifest as a bundle made before baselines were recorded would have it. */
function withoutBaselines(m: BundleManifest): BundleManifest {
  const old = structuredClone(m);
  delete old.metrics.baselines;
  for (const f of old.training.folds) delete f.baselines;
  return old;
}

describe('forecast train and evaluate report the naive baselines beside the model', () => {
  const work = tempDir();
  const csv = join(work, 'bars.csv');
  const out = join(work, 'models', 'syn', '1');

  beforeAll(() => {
    writeFileSync(csv, writeBarsCsv(generateSyntheticBars({ seed: 5, bars: 900 })));
  });

  it('train prints persistence and the training mean under the test row and under every fold, with whether the model beats each', async () => {
    const res = await runCli('train', '--csv', csv, '--out', out, '--model', 'linear', '--cv', '3');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^rows +n +MAE +MSE +R2 +model beats it \(lower MSE\)$/m);
    const m = (await loadBundle(out)).manifest;
    expectBaselineRows(res.stdout, 'test (', m.metrics.baselines!);
    for (const f of m.training.folds) expectBaselineRows(res.stdout, `fold ${f.fold} (`, f.baselines!);
    // The cross-validation mean row has its baselines too: each averaged over the folds like the model's.
    const cv = rowAfter(res.stdout, -1, 'cross-validation mean');
    const mean = (k: 'mae' | 'mse' | 'r2', b: 'persistence' | 'trainingMean') => m.training.folds.reduce((s, f) => s + f.baselines![b].metrics[k], 0) / m.training.folds.length;
    const rows = m.training.folds.reduce((s, f) => s + f.metrics.rows, 0);
    for (const [label, b] of [['  baseline: persistence (y = 1)', 'persistence'], ["  baseline: training mean (each fold's)", 'trainingMean']] as const) {
      const row = rowAfter(res.stdout, cv.index, label);
      expect(row.index).toBe(cv.index + (b === 'persistence' ? 1 : 2));
      expect(row.cells).toEqual([String(rows), mean('mae', b).toPrecision(8), mean('mse', b).toPrecision(8), mean('r2', b).toPrecision(8), m.metrics.cv!.mse < mean('mse', b) ? 'yes' : 'no']);
    }
  });

  it('evaluate prints the same baseline rows, and --json carries them', async () => {
    const m = (await loadBundle(out)).manifest;
    const res = await runCli('evaluate', out, '--no-charts');
    expect(res.code, res.stderr).toBe(0);
    expectBaselineRows(res.stdout, 'test (', m.metrics.baselines!);
    for (const f of m.training.folds) expectBaselineRows(res.stdout, `fold ${f.fold} `, f.baselines!);
    expect(res.stdout).not.toMatch(/not recorded/);
    const json = await runCli('evaluate', out, '--no-charts', '--json');
    const parsed = JSON.parse(json.stdout);
    expect(parsed.metrics.baselines).toEqual(m.metrics.baselines);
    expect(parsed.folds.map((f: { baselines: Baselines }) => f.baselines)).toEqual(m.training.folds.map((f) => f.baselines));
  });

  it('evaluate loads a bundle made before baselines were recorded and says they are missing', async () => {
    const { manifest, series } = trainTiny({ name: 'old', version: '1' });
    const dir = join(work, 'old');
    await writeBundle(dir, withoutBaselines(manifest), series);
    const res = await runCli('evaluate', dir, '--no-charts');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/test \(/);
    expect(res.stdout).not.toMatch(/baseline: persistence/);
    expect(res.stdout).toMatch(/baselines: not recorded in this bundle/);
  });

  it('a bundle whose baselines are malformed is refused, naming the field', async () => {
    const { manifest, series } = trainTiny({ name: 'bad', version: '1' });
    const broken = structuredClone(manifest);
    (broken.training.folds[1].baselines as unknown as { persistence: string }).persistence = 'none';
    const dir = join(work, 'bad');
    await writeBundle(dir, broken, series);
    await expect(loadBundle(dir)).rejects.toThrow(/training\.folds\[1\]\.baselines is malformed/);
    const res = await runCli('evaluate', dir, '--no-charts');
    expect(res.code).not.toBe(0);
  });
});

describe('model cards carry the baselines', () => {
  const work = tempDir();
  const models = join(work, 'models');
  const fresh = trainTiny({ name: 'fresh', version: '1' });
  const old = trainTiny({ name: 'old', version: '1', seed: 2 });
  let srv: TestServer;

  beforeAll(async () => {
    await writeBundle(join(models, 'fresh', '1'), fresh.manifest, fresh.series);
    await writeBundle(join(models, 'old', '1'), withoutBaselines(old.manifest), old.series);
    srv = await startTestServer({ modelsDir: models, sqlitePath: join(work, 'h.sqlite') });
  });
  afterAll(async () => {
    await srv?.close();
  });

  const cardOf = (r: { prediction: number; metrics: { mae: number; mse: number; r2: number; rows: number }; modelBeats: boolean }) => ({
    prediction: r.prediction,
    ...r.metrics,
    model_beats: r.modelBeats,
  });

  it('GET /models/NAME: the test set\'s and every fold\'s persistence and training mean, with model_beats', async () => {
    const card = await call(srv.url, '/models/fresh');
    expect(card.status).toBe(200);
    const b = fresh.manifest.metrics.baselines!;
    expect(card.body.metrics.baselines).toEqual({ persistence: cardOf(b.persistence), training_mean: cardOf(b.trainingMean) });
    expect(card.body.metrics.test).toEqual(fresh.manifest.metrics.test);
    expect(card.body.training.folds).toEqual(
      fresh.manifest.training.folds.map((f) => ({
        fold: f.fold,
        train: f.train,
        validation: f.validation,
        metrics: f.metrics,
        baselines: { persistence: cardOf(f.baselines!.persistence), training_mean: cardOf(f.baselines!.trainingMean) },
      })),
    );
  });

  it('a bundle made before baselines were recorded is served, its card saying null', async () => {
    const card = await call(srv.url, '/models/old/versions/1');
    expect(card.status).toBe(200);
    expect(card.body.metrics.baselines).toBeNull();
    expect(card.body.training.folds.map((f: { baselines: unknown }) => f.baselines)).toEqual(old.manifest.training.folds.map(() => null));
  });
});

needsReference('MSFT.csv', 'dtree_model.pkl', 'scaler_ml.pkl').describe('forecast import-sklearn reports the baselines on the same test rows (MSFT reference)', () => {
  it('prints persistence and the training mean under the imported model\'s test row', async () => {
    const out = join(tempDir(), 'msft', '1');
    const res = await runCli(
      'import-sklearn', '--model', referenceFile('dtree_model.pkl'), '--scaler', referenceFile('scaler_ml.pkl'),
      '--features', 'reference', '--csv', referenceFile('MSFT.csv'), '--out', out,
    );
    expect(res.code, res.stderr).toBe(0);
    const m = (await loadBundle(out)).manifest;
    expect(m.metrics.baselines!.persistence.metrics.rows).toBe(m.metrics.test.rows);
    expectBaselineRows(res.stdout, 'test (', m.metrics.baselines!);
  });
});
