import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { loadBundle } from '../../src/bundle/io.js';
import type { BundleManifest } from '../../src/bundle/types.js';
import { readBarsCsv } from '../../src/data/index.js';
import { getFeatureSet } from '../../src/features/index.js';
import { readSklearnScaler, readSklearnTree } from '../../src/interop/index.js';
import { StandardScaler, takeRows } from '../../src/models/index.js';
import { modelRows } from '../../src/training/train.js';
import { runCli } from '../helpers/cli.js';
import { needsReference, referenceFile, tempDir } from '../helpers/reference.js';

const withReference = needsReference('MSFT.csv', 'dtree_model.pkl', 'scaler_ml.pkl');

withReference.describe('the reference system, end to end through the CLI (MSFT.csv and the scikit-learn pickles)', () => {
  const work = tempDir();
  const imported = join(work, 'imported');
  const trained = join(work, 'trained');
  let trainOutput = '';

  beforeAll(async () => {
    const imp = await runCli(
      'import-sklearn',
      '--model', referenceFile('dtree_model.pkl'),
      '--scaler', referenceFile('scaler_ml.pkl'),
      '--features', 'reference',
      '--csv', referenceFile('MSFT.csv'),
      '--out', imported,
      '--name', 'msft', '--model-version', '1',
    );
    expect(imp.stderr).toBe('');
    expect(imp.code).toBe(0);
    const tr = await runCli(
      'train', '--csv', referenceFile('MSFT.csv'), '--features', 'reference', '--model', 'tree',
      '--out', trained, '--compare-sklearn-pickle', referenceFile('dtree_model.pkl'),
      '--name', 'msft-trained', '--model-version', '1',
    );
    expect(tr.code, tr.stderr).toBe(0);
    trainOutput = tr.stdout;
  });

  it('the StandardScaler fitted on the first 7,000 reference model rows equals scaler_ml.pkl bit for bit, unscaled means included', () => {
    const set = getFeatureSet('reference');
    const series = readBarsCsv(readFileSync(referenceFile('MSFT.csv'), 'utf8'), { numberParsing: 'legacy' });
    const rows = modelRows(set.computeBatch(series));
    expect(rows.X.rows).toBe(7961);
    const ours = new StandardScaler().fit(takeRows(rows.X, 0, 7000)).state!;
    const pickled = readSklearnScaler(readFileSync(referenceFile('scaler_ml.pkl')));
    const differ = (a: number[], b: number[]) => a.filter((x, i) => !Object.is(x, b[i])).length;
    console.log(`scaler vs scaler_ml.pkl: mean ${differ(ours.mean, pickled.mean)} / var ${differ(ours.variance, pickled.variance)} / scale ${differ(ours.scale, pickled.scale)} of 17 differ`);
    expect(ours.mean).toEqual(pickled.mean);
    expect(ours.variance).toEqual(pickled.variance);
    expect(ours.scale).toEqual(pickled.scale);
    expect(ours.nSamplesSeen).toBe(7000);
  });

  it('import-sklearn forecasts the 961 test dates from features the project computes, and predict gives the same numbers', async () => {
    const bundle = await loadBundle(imported);
    const ev = bundle.manifest.evaluation;
    expect(ev.dates.length).toBe(961);
    expect(ev.dates[0]).toBe('2014-10-02');
    expect(ev.dates.at(-1)).toBe('2018-07-26');
    const pred = await runCli('predict', imported, '--csv', referenceFile('MSFT.csv'), '--json');
    expect(pred.code).toBe(0);
    const byDate = new Map((JSON.parse(pred.stdout) as { date: string; y_pred: number }[]).map((r) => [r.date, r.y_pred]));
    const mismatches = ev.dates.filter((d, i) => !Object.is(byDate.get(d), ev.yPred[i]));
    expect(mismatches).toEqual([]);
    console.log(`imported pickle, test metrics: ${JSON.stringify(bundle.manifest.metrics.test)}`);
  });

  it('train --features reference grows the pickled tree node for node and prints its metrics beside the pickle\'s', async () => {
    expect(trainOutput).toContain('tree: 99 nodes, 50 leaves, depth 19');
    expect(trainOutput).toContain('equals');
    expect(trainOutput).toContain('test, pickled tree');
    const bundle = await loadBundle(trained);
    const pickled = readSklearnTree(readFileSync(referenceFile('dtree_model.pkl'))).state;
    const ours = bundle.manifest.model;
    expect(ours.kind).toBe('decision_tree_regressor');
    if (ours.kind !== 'decision_tree_regressor') return;
    for (const field of ['leftChild', 'rightChild', 'feature', 'threshold', 'impurity', 'nNodeSamples', 'weightedNNodeSamples', 'value'] as const) {
      expect(ours[field], field).toEqual(pickled[field]);
    }
    // Same tree, same features: the trained bundle's evaluation equals the imported one's.
    const importedManifest = (await loadBundle(imported)).manifest;
    expect(bundle.manifest.evaluation.yPred).toEqual(importedManifest.evaluation.yPred);
    expect(bundle.manifest.training.fitRows).toEqual([0, 5250]);
  });

  it('evaluate writes SVG and PNG charts and keeps the bundle loadable', async () => {
    const res = await runCli('evaluate', imported, '--json');
    expect(res.code, res.stderr).toBe(0);
    const doc = JSON.parse(res.stdout) as { metrics: { test: { rows: number } }; charts: string[] };
    expect(doc.metrics.test.rows).toBe(961);
    expect(doc.charts.some((c) => c.endsWith('.svg'))).toBe(true);
    expect(doc.charts.some((c) => c.endsWith('.png'))).toBe(true);
    await expect(loadBundle(imported)).resolves.toBeTruthy();
  });

  it('refuses a tampered, truncated or newer-format bundle with a clear error', async () => {
    const copy = (name: string) => {
      const dir = join(work, name);
      for (const f of readdirSync(imported)) writeFileSync(join(dir, f), readFileSync(join(imported, f)));
      return dir;
    };
    const { mkdirSync } = await import('node:fs');
    for (const name of ['tampered', 'truncated', 'newer']) mkdirSync(join(work, name), { recursive: true });

    const tampered = copy('tampered');
    const manifest = JSON.parse(readFileSync(join(tampered, 'manifest.json'), 'utf8')) as BundleManifest;
    if (manifest.model.kind === 'decision_tree_regressor') {
      const leaf = manifest.model.leftChild.indexOf(-1);
      manifest.model.value[leaf] += 1e-6;
    }
    writeFileSync(join(tampered, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    await expect(loadBundle(tampered)).rejects.toThrow(/manifest\.json .*modified or truncated/);

    const truncated = copy('truncated');
    const history = readFileSync(join(truncated, 'history.csv'), 'utf8');
    writeFileSync(join(truncated, 'history.csv'), history.slice(0, history.length / 2));
    await expect(loadBundle(truncated)).rejects.toThrow(/history\.csv .*modified or truncated/);

    const newer = copy('newer');
    const m2 = JSON.parse(readFileSync(join(newer, 'manifest.json'), 'utf8')) as BundleManifest;
    m2.formatVersion = 99;
    const body = JSON.stringify(m2, null, 2) + '\n';
    writeFileSync(join(newer, 'manifest.json'), body);
    const { sha256 } = await import('../../src/bundle/io.js');
    const sums = JSON.parse(readFileSync(join(newer, 'checksums.json'), 'utf8')) as { files: Record<string, string> };
    sums.files['manifest.json'] = sha256(body);
    writeFileSync(join(newer, 'checksums.json'), JSON.stringify(sums));
    await expect(loadBundle(newer)).rejects.toThrow(/format version 99, newer than/);

    const res = await runCli('evaluate', tampered);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/modified or truncated/);
  });
});
