/**
 * The demo start's folder: trained once into a marked folder; retrained only when that folder is
 * its own and its bundle is damaged (tampered, or no longer reproducing its evaluation); any other
 * failure is thrown with the folder left exactly as it was.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_MARKER, ensureDemoBundle } from '../../src/training/demo.js';
import { editManifest, tempDir } from './helpers.js';

function listing(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir, { withFileTypes: true }).map((e) => [e.name, e.isDirectory() ? '<dir>' : readFileSync(join(dir, e.name), 'utf8')]));
}

describe('ensureDemoBundle', () => {
  const tmp = tempDir('forecast-demo-test-');
  /** Trained once; each case works on a copy. */
  const original = join(tmp.dir, 'data', 'original');
  let n = 0;
  const copy = (opts: { marker?: boolean } = {}) => {
    const dir = join(tmp.dir, `demo${n++}`);
    cpSync(original, dir, { recursive: true });
    if (opts.marker === false) rmSync(join(dir, DEMO_MARKER));
    return dir;
  };

  beforeAll(async () => {
    await ensureDemoBundle(join(original));
  }, 120_000);
  afterAll(() => tmp.cleanup());

  it('trains into a new folder (parents created), marks it, and loads it again on the next start without retraining', async () => {
    expect(existsSync(join(original, DEMO_MARKER))).toBe(true);
    expect(readdirSync(join(tmp.dir, 'data'))).toEqual(['original']);
    const before = listing(original);
    const again = await ensureDemoBundle(original);
    expect(again.id).toBe('demo@1');
    expect(listing(original)).toEqual(before);
  });

  it('retrains its own folder when the bundle was tampered with', async () => {
    const dir = copy();
    writeFileSync(join(dir, 'history.csv'), readFileSync(join(dir, 'history.csv'), 'utf8').replace(/\n[^\n]*\n$/, '\n'));
    const stray = join(dir, 'stray.txt');
    writeFileSync(stray, 'x');
    const bundle = await ensureDemoBundle(dir);
    expect(bundle.id).toBe('demo@1');
    expect(existsSync(stray)).toBe(false);
    expect(existsSync(join(dir, DEMO_MARKER))).toBe(true);
    expect(readFileSync(join(dir, 'history.csv'), 'utf8')).toBe(readFileSync(join(original, 'history.csv'), 'utf8'));
  }, 60_000);

  it('retrains its own folder when the bundle no longer reproduces its evaluation (checksums re-signed)', async () => {
    const dir = copy();
    editManifest(dir, (m) => (m.evaluation.yPred[0] += 1e-9));
    expect((await ensureDemoBundle(dir)).manifest.evaluation.yPred[0]).toBe(JSON.parse(readFileSync(join(original, 'manifest.json'), 'utf8')).evaluation.yPred[0]);
  }, 60_000);

  it('leaves its own folder alone and says why on a failure that is not damage (a folder where history.csv should be)', async () => {
    // Tests run as root, which reads a chmod 000 file anyway: a folder in a file's place fails for everyone.
    const dir = copy();
    rmSync(join(dir, 'history.csv'));
    mkdirSync(join(dir, 'history.csv'));
    writeFileSync(join(dir, 'history.csv', 'keep.txt'), 'mine');
    const before = listing(dir);
    await expect(ensureDemoBundle(dir)).rejects.toThrow(/demo bundle in .* cannot be loaded \(bundle file history\.csv in .* is not a regular file\); it was left as it is/);
    expect(listing(dir)).toEqual(before);
    expect(readFileSync(join(dir, 'history.csv', 'keep.txt'), 'utf8')).toBe('mine');
  });

  it('never removes a folder it did not make, even a damaged bundle', async () => {
    const dir = copy({ marker: false });
    writeFileSync(join(dir, 'history.csv'), 'date,open,high,low,close,volume\n');
    const before = listing(dir);
    await expect(ensureDemoBundle(dir)).rejects.toThrow(/was modified or truncated.*the demo start did not make this folder, so it was left as it is/);
    expect(listing(dir)).toEqual(before);
  });

  it('a folder it did not make that holds a valid bundle is served as before', async () => {
    const dir = copy({ marker: false });
    expect((await ensureDemoBundle(dir)).id).toBe('demo@1');
    expect(existsSync(join(dir, DEMO_MARKER))).toBe(false);
  });

  it('refuses a non-empty folder that holds no bundle, and writes nothing into it', async () => {
    const dir = join(tmp.dir, 'home');
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    await expect(ensureDemoBundle(dir)).rejects.toThrow(/is not empty and holds no bundle/);
    expect(readdirSync(dir)).toEqual(['notes.txt']);
  });

  it('trains into an empty folder', async () => {
    const dir = join(tmp.dir, 'empty');
    mkdirSync(dir);
    expect((await ensureDemoBundle(dir)).id).toBe('demo@1');
    expect(existsSync(join(dir, DEMO_MARKER))).toBe(true);
  }, 60_000);
});
