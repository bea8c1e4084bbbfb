/**
 * loadBundle's refusals: every one a BundleError (422) that names the file and the problem and never
 * quotes a file's text, whatever the file turns out to be (a link to /etc/passwd, another CSV, a
 * folder), and never a TypeError or RangeError from a manifest the loader did not check.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipelineFromManifest, type BundleManifest } from '../../src/bundle/index.js';
import { readBarsCsv } from '../../src/data/index.js';
import { BundleError, DataError } from '../../src/errors.js';
import { writeTinyBundle } from '../serve/helpers/bundles.js';
import { editManifest, refusal, resign, tempDir } from './helpers.js';

const SECRET = 's3cr3t-Zq9';

describe('loadBundle refuses, naming the problem and never quoting a file', () => {
  const tmp = tempDir();
  let n = 0;
  /** A fresh copy of a tiny valid bundle. */
  const fresh = () => writeTinyBundle(join(tmp.dir, `b${n++}`), { name: 'acme', version: '1', featureSet: 'causal' });
  let goodHistory: string;

  beforeAll(async () => {
    goodHistory = readFileSync(join(await fresh(), 'history.csv'), 'utf8');
  }, 60_000);
  afterAll(() => tmp.cleanup());

  it('a history.csv linked to a file outside the bundle (re-signed): refused without reading it into the message', async () => {
    const dir = await fresh();
    const outside = join(tmp.dir, 'passwd');
    writeFileSync(outside, `root:x:0:0:${SECRET}:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n`);
    rmSync(join(dir, 'history.csv'));
    symlinkSync(outside, join(dir, 'history.csv'));
    resign(dir);
    const err = await refusal(dir);
    expect(err.message).toContain('history.csv');
    expect(err.message).toMatch(/outside the bundle folder/);
    expect(err.message).not.toContain(SECRET);
    expect(err.message).not.toContain('root:');
    expect(err.status).toBe(422);
  });

  it.skipIf(!existsSync('/etc/passwd'))('the same for /etc/passwd itself', async () => {
    const dir = await fresh();
    rmSync(join(dir, 'history.csv'));
    symlinkSync('/etc/passwd', join(dir, 'history.csv'));
    resign(dir);
    const err = await refusal(dir);
    expect(err.message).toMatch(/history\.csv .*outside the bundle folder/);
    expect(err.message).not.toMatch(/root|nologin|\/bin\//);
  });

  it('a history.csv linked to another CSV in the folder: its bad cell is reported by line and column, not quoted', async () => {
    const dir = await fresh();
    const lines = goodHistory.split('\n');
    lines[4] = lines[4].replace(/,[^,]+,([^,]+)$/, `,${SECRET},$1`);
    writeFileSync(join(dir, 'old-history.csv'), lines.join('\n'));
    rmSync(join(dir, 'history.csv'));
    symlinkSync('old-history.csv', join(dir, 'history.csv'));
    resign(dir, ['old-history.csv']);
    const err = await refusal(dir);
    expect(err.message).toMatch(/history\.csv: line 5, column "close": the value is not a number/);
    expect(err.message).not.toContain(SECRET);
    expect(err.code).toBe('bundle_invalid');
  });

  it('a header without the expected columns is not listed back; a bad date is not quoted', async () => {
    const header = await fresh();
    writeFileSync(join(header, 'history.csv'), `date,open,high,low,${SECRET},volume\n2020-01-02,1,1,1,1,1\n`);
    resign(header);
    const e1 = await refusal(header);
    expect(e1.message).toMatch(/line 1, column "close": the header has no "close" column/);
    expect(e1.message).not.toContain(SECRET);

    const date = await fresh();
    writeFileSync(join(date, 'history.csv'), `date,open,high,low,close,volume\n${SECRET},1,1,1,1,1\n`);
    resign(date);
    const e2 = await refusal(date);
    expect(e2.message).toMatch(/line 2, column "date": the value is not a valid YYYY-MM-DD date/);
    expect(e2.message).not.toContain(SECRET);
  });

  it('a manifest or checksums file that is not JSON: no parser excerpt of its text', async () => {
    const manifest = await fresh();
    writeFileSync(join(manifest, 'manifest.json'), `${SECRET} is not json`);
    resign(manifest);
    const e1 = await refusal(manifest);
    expect(e1.message).toMatch(/manifest\.json in .* is not valid JSON$/);
    expect(e1.message).not.toContain(SECRET);

    const checksums = await fresh();
    writeFileSync(join(checksums, 'checksums.json'), `{"${SECRET}`);
    const e2 = await refusal(checksums);
    expect(e2.message).toMatch(/checksums\.json in .* is not valid JSON/);
    expect(e2.message).not.toContain(SECRET);
  });

  it('an unknown feature set is a 422 naming it and the known ones (was a RangeError: a 500 at reload)', async () => {
    const dir = await fresh();
    editManifest(dir, (m) => (m.featureSet.name = 'fancy'));
    const err = await refusal(dir);
    expect(err.status).toBe(422);
    expect(err.code).toBe('bundle_unknown_feature_set');
    expect(err.message).toContain('"fancy"');
    expect(err.message).toContain('known: reference, causal');
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as BundleManifest;
    expect(() => pipelineFromManifest(manifest)).toThrow(BundleError);
  });

  it('malformed manifest fields are BundleErrors naming the field, never TypeErrors', async () => {
    const cases: [string, (m: Record<string, any>) => void, RegExp][] = [
      ['no yPred', (m) => delete m.evaluation.yPred, /evaluation dates and forecasts differ/],
      ['unknown model kind', (m) => (m.model.kind = 'svm'), /model kind must be one of decision_tree_regressor, linear_regression/],
      ['no scaler', (m) => delete m.scaler, /scaler does not match/],
      ['model width', (m) => (m.model.nFeatures = 3), /the model takes "3" inputs/],
      ['tree arrays', (m) => (m.model.leftChild = 'x'), /tree node arrays do not match nodeCount/],
    ];
    for (const [what, edit, message] of cases) {
      const dir = await fresh();
      editManifest(dir, edit);
      const err = await refusal(dir);
      expect(err.message, what).toMatch(message);
      expect(err.status, what).toBe(422);
    }
    for (const json of ['[]', 'null', '42']) {
      const dir = await fresh();
      writeFileSync(join(dir, 'manifest.json'), json);
      resign(dir);
      expect((await refusal(dir)).message).toMatch(/manifest\.json in .* is not a JSON object/);
    }
  });

  it('a folder where a bundle file should be is unreadable (not damage), named without its contents', async () => {
    const dir = await fresh();
    rmSync(join(dir, 'history.csv'));
    mkdirSync(join(dir, 'history.csv'));
    const err = await refusal(dir);
    expect(err.code).toBe('bundle_unreadable');
    expect(err.message).toMatch(/bundle file history\.csv in .* is not a regular file/);
  });

  it('a missing folder, or a folder without checksums.json, is not a bundle', async () => {
    expect((await refusal(join(tmp.dir, 'nope'))).code).toBe('bundle_not_found');
    mkdirSync(join(tmp.dir, 'empty'));
    expect((await refusal(join(tmp.dir, 'empty'))).message).toMatch(/is not a bundle: checksums\.json is missing/);
  });

  it("a user's own CSV is still reported with the offending value", () => {
    try {
      readBarsCsv(`date,open,high,low,close,volume\n2020-01-02,1,1,1,${SECRET},1\n`, { numberParsing: 'exact', sourceName: 'mine.csv' });
      throw new Error('read');
    } catch (err) {
      expect(err).toBeInstanceOf(DataError);
      expect((err as Error).message).toBe(`mine.csv: line 2, column "close": "${SECRET}" is not a number`);
    }
  });
});
