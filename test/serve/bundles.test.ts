/**
 * The registry never lets one bundle block serving: at start and on reload every valid version is
 * served and every other one is refused (reported with its folder, code and a one-line reason, and
 * logged); zero models is a state the service starts in and answers 503 `no_models` from.
 */
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ForecastError } from '../../src/errors.js';
import { ModelRegistry, type RefusedBundle } from '../../src/serve/registry.js';
import { SqliteHistoryStore } from '../../src/store/index.js';
import { editManifest, tempDir } from '../bundle/helpers.js';
import { trainTiny, writeTinyBundle } from './helpers/bundles.js';

const SECRET = 'Zq9-s3cr3t';

describe('ModelRegistry: refused bundles never block the others', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: SqliteHistoryStore;
  let logs: { msg: string; extra?: Record<string, unknown> }[];
  let models: string;
  const registry = (defaultModel: string | null = null) => new ModelRegistry(store, defaultModel, (msg, extra) => void logs.push({ msg, extra }));
  const bundle = (name: string, version: string) => writeTinyBundle(join(models, name, version), { name, version, featureSet: 'causal' });
  /** A version folder whose history.csv was cut short: a tampered bundle. */
  const damage = (dir: string) => writeFileSync(join(dir, 'history.csv'), readFileSync(join(dir, 'history.csv'), 'utf8').slice(0, 200));
  const codes = (refused: readonly RefusedBundle[]) => refused.map((r) => `${r.model ?? '?'}@${r.version ?? '?'}:${r.code}`).sort();

  beforeEach(() => {
    tmp = tempDir('forecast-registry-test-');
    store = new SqliteHistoryStore({ path: join(tmp.dir, 'h.sqlite') });
    logs = [];
    models = join(tmp.dir, 'models');
    mkdirSync(models);
  });
  afterEach(async () => {
    await store.close();
    tmp.cleanup();
  });

  it('a fresh start serves every valid version and refuses the damaged one (was: the whole start failed)', async () => {
    await bundle('acme', '1');
    damage(await bundle('acme', '2'));
    await bundle('beta', '1');
    const reg = registry();
    const report = await reg.load({ modelsDir: models });
    expect(report.models).toEqual(['acme@1', 'beta@1']);
    expect(report.refused).toHaveLength(1);
    expect(report.refused[0]).toMatchObject({ dir: join(models, 'acme', '2'), model: 'acme', version: '2', code: 'bundle_tampered' });
    expect(report.refused[0].reason).toMatch(/bundle file history\.csv in .*acme\/2 was modified or truncated/);
    expect(reg.refused()).toEqual(report.refused);
    expect(reg.resolve('acme').id).toBe('acme@1');
    // Logged, once per refusal, with the structured refusal.
    expect(logs.filter((l) => l.msg.startsWith('bundle refused:'))).toEqual([{ msg: `bundle refused: ${report.refused[0].reason}`, extra: { refused: report.refused[0] } }]);
  });

  it('a reload with a new damaged version answers a report (was: a 422 and nothing reloaded) and serves the new good ones', async () => {
    await bundle('acme', '1');
    const reg = registry();
    await reg.load({ modelsDir: models });
    damage(await bundle('acme', '2'));
    await bundle('beta', '1');
    const report = await reg.load({ modelsDir: models });
    expect(report).toMatchObject({ models: ['acme@1', 'beta@1'], added: ['beta@1'], kept: ['acme@1'], removed: [] });
    expect(codes(report.refused)).toEqual(['acme@2:bundle_tampered']);
  });

  it('refuses each kind of bad folder with its own code, and serves the rest', async () => {
    await bundle('good', '1');
    editManifest(await bundle('fancy', '1'), (m) => (m.featureSet.name = 'fancy'));
    editManifest(await bundle('newer', '1'), (m) => (m.formatVersion = 99));
    // A valid bundle in a folder whose name cannot be a model name in URLs.
    await writeTinyBundle(join(models, 'bad name!', '1'), { name: 'badname', version: '1', featureSet: 'causal' });
    const unreadable = await bundle('unreadable', '1');
    rmSync(join(unreadable, 'history.csv'));
    mkdirSync(join(unreadable, 'history.csv'));
    mkdirSync(join(models, 'empty', '1'), { recursive: true });
    mkdirSync(join(models, 'nothing'));
    mkdirSync(join(models, 'lost+found'));
    // A name folder that is itself a bundle: served under the folder's name and the manifest's version.
    cpSync(join(models, 'good', '1'), join(models, 'good2'), { recursive: true });
    // The same folder named twice (as the bundle folder and inside the models folder): the first claim is served.
    const reg = registry();
    const report = await reg.load({ modelsDir: models, bundleDir: join(models, 'good', '1') });
    expect(report.models).toEqual(['good@1', 'good2@1']);
    expect(codes(report.refused)).toEqual([
      'bad name!@1:invalid_model_name',
      'empty@1:bundle_not_found',
      'fancy@1:bundle_unknown_feature_set',
      'good@1:duplicate_model',
      'newer@1:bundle_newer_format',
      'nothing@?:bundle_not_found',
      'unreadable@1:bundle_unreadable',
    ]);
    const fancy = report.refused.find((r) => r.code === 'bundle_unknown_feature_set')!;
    expect(fancy.reason).toMatch(/feature set "fancy", which this program does not know \(known: reference, causal\)/);
    expect(report.refused.find((r) => r.code === 'duplicate_model')!.reason).toMatch(/two bundles claim good@1: .*good\/1 is served, .*good\/1 is not/);
    for (const r of report.refused) expect(r.reason).not.toMatch(/\n/);
  });

  it('no bundle at all: zero models, resolve() is a 503 no_models, and a reload once bundles arrive serves them', async () => {
    const reg = registry();
    const empty = await reg.load({ modelsDir: models });
    expect(empty).toEqual({ models: [], added: [], removed: [], kept: [], refused: [] });
    expect(reg.all()).toEqual([]);
    expect(reg.defaultName).toBe(null);
    const err = (() => {
      try {
        reg.resolve();
      } catch (e) {
        return e as ForecastError;
      }
      throw new Error('resolved');
    })();
    expect(err).toBeInstanceOf(ForecastError);
    expect([err.status, err.code]).toEqual([503, 'no_models']);
    expect(err.message).toMatch(/^no model is loaded/);
    await bundle('acme', '1');
    expect((await reg.load({ modelsDir: models })).added).toEqual(['acme@1']);
    expect(reg.resolve().id).toBe('acme@1');
  });

  it('a models folder that does not exist is zero models and one refusal naming it (a missing mount still starts)', async () => {
    const reg = registry();
    const missing = join(tmp.dir, 'not-mounted');
    const report = await reg.load({ modelsDir: missing });
    expect(report.models).toEqual([]);
    expect(report.refused).toEqual([{ dir: missing, code: 'models_not_found', reason: `models folder ${missing} does not exist` }]);
    expect(() => reg.resolve()).toThrow(/no model is loaded \(1 bundle folder refused: see \/readyz\)/);
  });

  it('a served version whose folder becomes damaged keeps serving the copy loaded before, reported as refused', async () => {
    const dir = await bundle('acme', '1');
    await bundle('acme', '2');
    const reg = registry();
    await reg.load({ modelsDir: models });
    const served = reg.resolve('acme', '2');
    damage(join(models, 'acme', '2'));
    const report = await reg.load({ modelsDir: models });
    expect(report).toMatchObject({ models: ['acme@2', 'acme@1'], kept: ['acme@2', 'acme@1'], added: [], removed: [] });
    expect(codes(report.refused)).toEqual(['acme@2:bundle_tampered']);
    expect(report.refused[0].reason).toMatch(/; still serving acme@2 as loaded before$/);
    // The same object: its feature state and history mirror carry on.
    expect(reg.resolve('acme', '2')).toBe(served);
    // Restored on disk (the same files): the next reload refuses nothing and still keeps the same object.
    await bundle('acme', '2');
    const fixed = await reg.load({ modelsDir: models });
    expect(fixed.refused).toEqual([]);
    expect(reg.resolve('acme', '2')).toBe(served);
    // Removed from disk: no longer served.
    rmSync(dir, { recursive: true });
    expect((await reg.load({ modelsDir: models })).removed).toEqual(['acme@1']);
  });

  it('a version folder changed in place under the same name@version is refused; the copy loaded first stays', async () => {
    const dir = await bundle('acme', '1');
    const reg = registry();
    await reg.load({ modelsDir: models });
    const first = reg.resolve('acme');
    // A valid bundle of another model written over the folder, still claiming acme@1.
    const other = trainTiny({ name: 'acme', version: '1', featureSet: 'causal', maxDepth: 3 });
    const { writeBundle } = await import('../../src/bundle/index.js');
    await writeBundle(dir, other.manifest, other.series);
    const report = await reg.load({ modelsDir: models });
    expect(codes(report.refused)).toEqual(['acme@1:bundle_changed']);
    expect(report.refused[0].reason).toMatch(/changed since acme@1 was loaded from it: publish a changed model as a new version/);
    expect(reg.resolve('acme')).toBe(first);
  });

  it('a single bundle folder retrained in place with a new version serves the new version', async () => {
    const dir = join(tmp.dir, 'single');
    await writeTinyBundle(dir, { name: 'acme', version: '1', featureSet: 'causal' });
    const reg = registry();
    await reg.load({ bundleDir: dir });
    await writeTinyBundle(dir, { name: 'acme', version: '2', featureSet: 'causal' });
    const report = await reg.load({ bundleDir: dir });
    expect(report).toMatchObject({ models: ['acme@2'], added: ['acme@2'], removed: ['acme@1'], refused: [] });
  });

  it('a configured default model that is not loaded: named models still serve, the default is a 503', async () => {
    await bundle('acme', '1');
    damage(await bundle('msft', '1'));
    const reg = registry('msft');
    const report = await reg.load({ modelsDir: models });
    expect(report.models).toEqual(['acme@1']);
    expect(reg.defaultName).toBe(null);
    expect(reg.resolve('acme').id).toBe('acme@1');
    expect(() => reg.resolve()).toThrow(expect.objectContaining({ status: 503, code: 'default_model_unavailable' }));
    expect(logs.some((l) => l.msg.includes("the default model 'msft' is not loaded"))).toBe(true);
  });

  it('models() gives each model with its versions and shared history (what GET /models syncs)', async () => {
    await bundle('acme', '1');
    await bundle('acme', '2');
    await bundle('beta', '1');
    const reg = registry();
    await reg.load({ modelsDir: models });
    const groups = reg.models();
    expect(groups.map((g) => [g.name, g.versions.map((v) => v.version)])).toEqual([
      ['acme', ['2', '1']],
      ['beta', ['1']],
    ]);
    for (const g of groups) {
      for (const v of g.versions) expect(v.history).toBe(g.history);
      await g.history.sync();
      expect(g.history.length).toBe(g.versions[0].bundle.history.date.length);
    }
  });

  it('a refusal never quotes the bundle files (a history.csv holding someone else\u2019s text)', async () => {
    const dir = await bundle('acme', '1');
    writeFileSync(join(dir, 'history.csv'), `date,open,high,low,close,volume\n2020-01-02,1,1,1,${SECRET},1\n`);
    const { resign } = await import('../bundle/helpers.js');
    resign(dir);
    const report = await registry().load({ modelsDir: models });
    expect(codes(report.refused)).toEqual(['acme@1:bundle_invalid']);
    expect(report.refused[0].reason).toMatch(/history\.csv: line 2, column "close": the value is not a number/);
    expect(JSON.stringify(report)).not.toContain(SECRET);
    expect(JSON.stringify(logs)).not.toContain(SECRET);
  });
});
