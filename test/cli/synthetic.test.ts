import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadBundle } from '../../src/bundle/index.js';
import { generateSyntheticBars, writeBarsCsv } from '../../src/data/index.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/reference.js';

/** The CLI on the project's own synthetic data: runs everywhere, with or without ../shared. */
describe('forecast CLI on synthetic bars', () => {
  const work = tempDir();
  const csv = join(work, 'bars.csv');
  const treeDir = join(work, 'tree');
  const linearDir = join(work, 'linear');

  beforeAll(() => {
    writeFileSync(csv, writeBarsCsv(generateSyntheticBars({ seed: 7, bars: 1200 })));
  });

  it('trains a causal tree with the modern recipe, prints the fold table and writes a loadable bundle', async () => {
    const res = await runCli('train', '--csv', csv, '--out', treeDir, '--max-leaf-nodes', '20', '--name', 'syn', '--model-version', '3');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/recipe: modern; features: causal; model: tree/);
    expect(res.stdout).toMatch(/tree: \d+ nodes, 20 leaves, depth \d+/);
    expect(res.stdout).toMatch(/fold 3 \(train 0\.\.\d+, validate \d+\.\.\d+\)/);
    expect(res.stdout).toMatch(/test \(\d{4}-\d\d-\d\d \.\. \d{4}-\d\d-\d\d\)/);
    const bundle = await loadBundle(treeDir);
    expect(bundle.id).toBe('syn@3');
    expect(bundle.manifest.featureSet.name).toBe('causal');
    expect(bundle.manifest.featureSet.csvRoundTrip).toBe(false);
    expect(bundle.manifest.hyperparameters).toMatchObject({ recipe: 'modern', maxLeafNodes: 20, thresholdRule: 'modern' });
    expect(bundle.manifest.training.folds).toHaveLength(3);
    const modelRows = 1200 - 199 - 1;
    expect(bundle.manifest.training.learnRows + bundle.manifest.evaluation.dates.length).toBe(modelRows);
  });

  it('predict --json reproduces the bundle\'s evaluation forecasts and prints full precision', async () => {
    const res = await runCli('predict', treeDir, '--csv', csv, '--json');
    expect(res.code, res.stderr).toBe(0);
    const rows = JSON.parse(res.stdout) as { date: string; y_pred: number }[];
    const byDate = new Map(rows.map((r) => [r.date, r.y_pred]));
    const { dates, yPred } = (await loadBundle(treeDir)).manifest.evaluation;
    expect(dates.filter((d, i) => !Object.is(byDate.get(d), yPred[i]))).toEqual([]);
    // The causal set has no look-ahead: the last bar gets a forecast too.
    expect(rows.at(-1)!.date).toBe(generateSyntheticBars({ seed: 7, bars: 1200 }).date[1199]);
  });

  it('trains a linear baseline', async () => {
    const res = await runCli('train', '--csv', csv, '--out', linearDir, '--model', 'linear', '--learn-rows', '800', '--cv', '4');
    expect(res.code, res.stderr).toBe(0);
    const bundle = await loadBundle(linearDir);
    expect(bundle.manifest.model.kind).toBe('linear_regression');
    expect(bundle.manifest.training.learnRows).toBe(800);
    expect(bundle.manifest.training.folds).toHaveLength(4);
    expect(Number.isFinite(bundle.manifest.metrics.test.mse)).toBe(true);
  });

  it('features writes the model-row matrix, scaled by a bundle when given', async () => {
    const raw = join(work, 'features.csv');
    const scaled = join(work, 'scaled.csv');
    expect((await runCli('features', '--csv', csv, '--set', 'causal', '--out', raw)).code).toBe(0);
    expect((await runCli('features', '--csv', csv, '--set', 'causal', '--bundle', treeDir, '--out', scaled)).code).toBe(0);
    const rawLines = readFileSync(raw, 'utf8').trim().split('\n');
    const scaledLines = readFileSync(scaled, 'utf8').trim().split('\n');
    expect(rawLines).toHaveLength(1 + 1000);
    expect(rawLines[0].split(',')[0]).toBe('date');
    expect(rawLines[0].split(',').at(-1)).toBe('y');
    // Scaled learn rows have mean ~0 in every feature column.
    const bundle = await loadBundle(treeDir);
    const learn = scaledLines.slice(1, 1 + bundle.manifest.training.learnRows).map((l) => l.split(',').slice(1, -1).map(Number));
    for (let j = 0; j < learn[0].length; j++) expect(Math.abs(learn.reduce((s, r) => s + r[j], 0) / learn.length)).toBeLessThan(1e-9);
    const reference = await runCli('features', '--csv', csv, '--set', 'reference', '--bundle', treeDir, '--out', scaled);
    expect(reference.code).toBe(1);
    expect(reference.stderr).toMatch(/uses the causal feature set, not reference/);
  });

  it('reports bad options and bad files as one clear line', async () => {
    const badSet = await runCli('train', '--csv', csv, '--out', join(work, 'x'), '--features', 'fancy');
    expect(badSet.code).toBe(1);
    expect(badSet.stderr).toMatch(/--features must be one of reference, causal; got "fancy"/);
    const missing = await runCli('train', '--csv', join(work, 'nope.csv'), '--out', join(work, 'x'));
    expect(missing.stderr).toMatch(/cannot read .*nope\.csv: ENOENT/);
    const tooMany = await runCli('train', '--csv', csv, '--out', join(work, 'x'), '--learn-rows', '5000');
    expect(tooMany.stderr).toMatch(/--learn-rows 5000 does not fit: the data has 1000 model rows/);
    const broken = join(work, 'broken.csv');
    const lines = readFileSync(csv, 'utf8').split('\n');
    lines[10] = lines[10].replace(/,([\d.]+),([\d.]+)$/, ',oops,$2');
    writeFileSync(broken, lines.join('\n'));
    const bad = await runCli('predict', treeDir, '--csv', broken);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/line 11/);
    expect(bad.stderr).toMatch(/close/);
    const notBundle = await runCli('evaluate', work);
    expect(notBundle.stderr).toMatch(/is not a bundle: checksums\.json is missing/);
  });
});
