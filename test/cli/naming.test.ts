/**
 * Issue 10, item 3: a bundle is named as its folder says (`--out models/acme/1` is acme@1, the name
 * and version the service's registry serves it under), and a bundle folder is replaced only with
 * `--force`, as a whole: nothing of the old bundle (its charts) is left beside the new one.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBundle } from '../../src/bundle/index.js';
import { generateSyntheticBars, writeBarsCsv } from '../../src/data/index.js';
import { ModelRegistry } from '../../src/serve/registry.js';
import { SqliteHistoryStore } from '../../src/store/index.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/reference.js';

/** Small and fast: the bundles' contents do not matter here, only their names and files. */
const FAST = ['--max-leaf-nodes', '8'];

describe('forecast train: bundle names from the --out folder', () => {
  const work = tempDir('forecast-naming-');
  const csv = join(work, 'bars.csv');
  const models = join(work, 'models');

  beforeAll(() => writeFileSync(csv, writeBarsCsv(generateSyntheticBars({ seed: 11, bars: 900 }))));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('--out models/acme/1 makes acme@1, which the registry serves under the same name without a warning', async () => {
    const res = await runCli('train', '--csv', csv, '--out', join(models, 'acme', '1'), ...FAST);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('(acme@1)');
    expect((await loadBundle(join(models, 'acme', '1'))).id).toBe('acme@1');

    const store = new SqliteHistoryStore({ path: join(work, 'registry.sqlite') });
    const logs: string[] = [];
    try {
      const report = await new ModelRegistry(store, null, (msg) => void logs.push(msg)).load({ modelsDir: models });
      expect(report.models).toEqual(['acme@1']);
      expect(report.refused).toEqual([]);
      expect(logs.filter((l) => l.includes('is served as'))).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('--name and --model-version each override their part of the folder name', async () => {
    const named = await runCli('train', '--csv', csv, '--out', join(work, 'elsewhere', 'acme', '2'), '--name', 'other', ...FAST);
    expect(named.code, named.stderr).toBe(0);
    expect((await loadBundle(join(work, 'elsewhere', 'acme', '2'))).id).toBe('other@2');
    const versioned = await runCli('train', '--csv', csv, '--out', join(work, 'elsewhere', 'acme', '3'), '--model-version', '7', ...FAST);
    expect(versioned.code, versioned.stderr).toBe(0);
    expect((await loadBundle(join(work, 'elsewhere', 'acme', '3'))).id).toBe('acme@7');
  });

  it('keeps the default naming when the last two folders are no model name and version', async () => {
    // A version folder with a space cannot be a URL name: the recipe's defaults apply to both parts.
    const out = join(work, 'odd', 'acme', 'first try');
    const res = await runCli('train', '--csv', csv, '--out', out, ...FAST);
    expect(res.code, res.stderr).toBe(0);
    const { manifest } = await loadBundle(out);
    expect(manifest.name).toBe('causal-tree');
    expect(manifest.version).toMatch(/^\d{8}T\d{6}$/);
  });

  it('refuses a --name the service would refuse, naming the option, before anything is written', async () => {
    const out = join(work, 'badname', 'acme', '1');
    const res = await runCli('train', '--csv', csv, '--out', out, '--name', 'my model', ...FAST);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('--name "my model" is not a name the service accepts');
    expect(existsSync(out)).toBe(false);
  });
});

describe('forecast train and import-sklearn: an existing bundle is replaced only with --force, as a whole', () => {
  const work = tempDir('forecast-overwrite-');
  const csv = join(work, 'bars.csv');
  const out = join(work, 'models', 'acme', '1');
  const hidden = () => readdirSync(dirname(out)).filter((n) => n.startsWith('.'));

  beforeAll(async () => {
    writeFileSync(csv, writeBarsCsv(generateSyntheticBars({ seed: 12, bars: 900 })));
    const first = await runCli('train', '--csv', csv, '--out', out, ...FAST);
    expect(first.code, first.stderr).toBe(0);
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('refuses to overwrite without --force, naming the folder and --force, and leaves the bundle as it was', async () => {
    const before = readFileSync(join(out, 'checksums.json'), 'utf8');
    const res = await runCli('train', '--csv', csv, '--out', out, '--max-leaf-nodes', '4');
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`bundle folder ${out} already exists: pass --force to replace it`);
    expect(readFileSync(join(out, 'checksums.json'), 'utf8')).toBe(before);
  });

  it('refuses before the slow part: the CSV is not even read', async () => {
    const res = await runCli('train', '--csv', join(work, 'no-such.csv'), '--out', out);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`bundle folder ${out} already exists`);
  });

  it('import-sklearn refuses the same way, before reading its pickles', async () => {
    const res = await runCli('import-sklearn', '--model', join(work, 'no-such-model.pkl'), '--scaler', join(work, 'no-such-scaler.pkl'), '--csv', csv, '--out', out);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`bundle folder ${out} already exists: pass --force to replace it`);
  });

  it('--force replaces the bundle: the charts and files of the old one are gone, no temporary folder is left', async () => {
    const charts = await runCli('evaluate', out);
    expect(charts.code, charts.stderr).toBe(0);
    expect(readdirSync(out)).toContain('evaluation-forecast.png');
    writeFileSync(join(out, 'notes.txt'), 'left by hand\n');

    const res = await runCli('train', '--csv', csv, '--out', out, '--force', '--max-leaf-nodes', '4');
    expect(res.code, res.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['checksums.json', 'history.csv', 'manifest.json']);
    const bundle = await loadBundle(out);
    expect(bundle.id).toBe('acme@1');
    expect(bundle.manifest.hyperparameters).toMatchObject({ maxLeafNodes: 4 });
    expect(hidden()).toEqual([]);
  });

  it('a forced run that fails leaves the old bundle whole and no temporary folder', async () => {
    const before = readFileSync(join(out, 'checksums.json'), 'utf8');
    const res = await runCli('train', '--csv', csv, '--out', out, '--force', '--learn-rows', '5000');
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/--learn-rows 5000 does not fit/);
    expect(readFileSync(join(out, 'checksums.json'), 'utf8')).toBe(before);
    await loadBundle(out);
    expect(hidden()).toEqual([]);
  });

  it('never writes into a folder that holds something other than a bundle, even with --force', async () => {
    const mine = join(work, 'mine');
    mkdirSync(mine);
    writeFileSync(join(mine, 'thesis.tex'), 'mine\n');
    const res = await runCli('train', '--csv', csv, '--out', mine, '--force', ...FAST);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`${mine} is not empty and holds no bundle`);
    expect(readdirSync(mine)).toEqual(['thesis.tex']);
  });

  it('writes into an empty folder', async () => {
    const empty = join(work, 'models', 'empty', '1');
    mkdirSync(empty, { recursive: true });
    const res = await runCli('train', '--csv', csv, '--out', empty, ...FAST);
    expect(res.code, res.stderr).toBe(0);
    expect((await loadBundle(empty)).id).toBe('empty@1');
  });
});
