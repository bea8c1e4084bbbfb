/**
 * `train --compare-sklearn-pickle`: the pickle is read and checked against `--model` before training,
 * and its input width before anything is written, so a mismatch is one clear line and no bundle
 * (it was a TypeError behind a cast, after the bundle was written).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticBars, writeBarsCsv } from '../../src/data/index.js';
import { compareLinearModels, describeLinearDifference, type LinearState } from '../../src/models/index.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/reference.js';

const pickle = (name: string) => fileURLToPath(new URL(`../fixtures/pickles/${name}`, import.meta.url));

describe('train --compare-sklearn-pickle', () => {
  const work = tempDir();
  const csv = join(work, 'bars.csv');
  beforeAll(() => writeFileSync(csv, writeBarsCsv(generateSyntheticBars({ seed: 3, bars: 700 }))));

  it('--model linear with a pickled tree: an option error before training, no bundle', async () => {
    const out = join(work, 'linear-vs-tree');
    const res = await runCli('train', '--csv', csv, '--out', out, '--model', 'linear', '--compare-sklearn-pickle', pickle('tree.pkl'));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/--compare-sklearn-pickle .*tree\.pkl holds a DecisionTreeRegressor, but --model linear grows a LinearRegression/);
    expect(res.stderr).not.toMatch(/TypeError/);
    expect(res.stderr).not.toMatch(/^features\.\.\./m);
    expect(existsSync(out)).toBe(false);
  });

  it('--model tree with a pickled linear model: the same, the other way round', async () => {
    const out = join(work, 'tree-vs-linear');
    const res = await runCli('train', '--csv', csv, '--out', out, '--compare-sklearn-pickle', pickle('linear.pkl'));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/holds a LinearRegression, but --model tree grows a DecisionTreeRegressor/);
    expect(existsSync(out)).toBe(false);
  });

  it('a pickle of the right kind trained on other features: an error naming both widths, no bundle', async () => {
    const out = join(work, 'linear-narrow');
    const res = await runCli('train', '--csv', csv, '--out', out, '--model', 'linear', '--compare-sklearn-pickle', pickle('linear.pkl'));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/the pickled model takes 3 inputs; the trained one takes \d+ \(the causal set's \d+ features after degree-2 expansion\): it was not trained on these features/);
    expect(existsSync(out)).toBe(false);
  });

  it('a missing or non-model pickle: one line, no bundle', async () => {
    const missing = await runCli('train', '--csv', csv, '--out', join(work, 'x'), '--compare-sklearn-pickle', join(work, 'nope.pkl'));
    expect(missing.stderr).toMatch(/--compare-sklearn-pickle: cannot read .*nope\.pkl: ENOENT/);
    const scaler = await runCli('train', '--csv', csv, '--out', join(work, 'x'), '--compare-sklearn-pickle', pickle('scaler_p4.pkl'));
    expect(scaler.stderr).toMatch(/a scaler, not a model/);
    expect(existsSync(join(work, 'x'))).toBe(false);
  });

  it('compares linear models by distance, since least squares agrees to rounding, not bit for bit', () => {
    const a: LinearState = { kind: 'linear_regression', nFeatures: 2, coef: [1, -4], intercept: 0.5 };
    expect(describeLinearDifference(compareLinearModels(a, { ...a, coef: [...a.coef] }))).toBe('identical, bit for bit');
    // Powers of two: every difference below is exact.
    const d = compareLinearModels(a, { ...a, coef: [1, -4 + 2 ** -40], intercept: 0.5 + 2 ** -42 });
    expect(d).toEqual({ nFeatures: null, maxCoefDiff: 2 ** -40, relativeCoefDiff: 2 ** -42, interceptDiff: 2 ** -42, identical: false });
    expect(describeLinearDifference(d)).toBe('coefficients differ by at most 9.09e-13 (2.27e-13 of the largest), intercepts by 2.27e-13');
    expect(describeLinearDifference(compareLinearModels(a, { ...a, nFeatures: 3, coef: [1, 2, 3] }))).toBe('the models take 2 and 3 inputs');
  });
});
