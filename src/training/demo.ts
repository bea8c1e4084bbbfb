import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CHECKSUMS_FILE, DAMAGED_BUNDLE_CODES, loadBundle, sha256, writeBundle } from '../bundle/io.js';
import type { LoadedBundle } from '../bundle/types.js';
import { generateSyntheticBars, writeBarsCsv } from '../data/index.js';
import { BundleError, ForecastError } from '../errors.js';
import { train } from './train.js';

/** The demo data set: the project's own synthetic bars, since the reference data may not be shipped. */
export const DEMO_DATA = { seed: 20240601, bars: 3000, startDate: '2012-01-02', startPrice: 50 } as const;

/**
 * Left in a folder the demo start made. Only such a folder is ever removed (and retrained) by a
 * later start: DEMO_DIR may name a folder someone else owns. A dot file, so it is not a bundle file.
 */
export const DEMO_MARKER = '.forecast-demo';

const MARKER_TEXT = 'Made by the forecast-service demo start. A later demo start retrains this folder when its bundle is damaged.\n';

/**
 * The bundled demo model: a causal-feature tree trained on the synthetic demo history. Trained into
 * `dir` on first use (a few seconds); later starts load it.
 *
 * A folder this demo start made (it holds {@link DEMO_MARKER}) whose bundle is damaged (tampered
 * files, or a bundle that no longer reproduces its evaluation) is removed and retrained. Any other
 * failure (a file that cannot be read, a newer format, a folder the demo start did not make) is thrown
 * with the folder left as it is: removing it could destroy what is not ours, and would hide the cause.
 */
export async function ensureDemoBundle(dir: string): Promise<LoadedBundle> {
  const entries = await listFolder(dir);
  if (entries === null || entries.length === 0) return trainInto(dir);
  const ours = entries.includes(DEMO_MARKER);
  if (!ours && !entries.includes(CHECKSUMS_FILE))
    throw new ForecastError(`the demo folder ${dir} (DEMO_DIR) is not empty and holds no bundle: name a new or empty folder`, 422, 'demo_dir_not_empty');
  try {
    return await loadBundle(dir);
  } catch (err) {
    if (ours && err instanceof BundleError && DAMAGED_BUNDLE_CODES.includes(err.code)) {
      await rm(dir, { recursive: true, force: true });
      return trainInto(dir);
    }
    const why = err instanceof Error ? err.message : String(err);
    const advice = ours ? 'it was left as it is: fix the cause, or remove the folder to retrain' : 'the demo start did not make this folder, so it was left as it is';
    throw new ForecastError(`the demo bundle in ${dir} cannot be loaded (${why}); ${advice}`, err instanceof ForecastError ? err.status : 500, err instanceof ForecastError ? err.code : 'demo_unavailable');
  }
}

/** The folder's entries, or null when it does not exist. */
async function listFolder(dir: string): Promise<string[] | null> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ForecastError(`cannot open the demo folder ${dir} (DEMO_DIR): ${(err as NodeJS.ErrnoException).code ?? String(err)}`, 500, 'demo_unavailable');
  }
}

/**
 * Trains into a temporary sibling and renames it into place, so `dir` is either absent or a whole
 * marked bundle: an interrupted start leaves nothing a later one would mistake for a bundle.
 */
async function trainInto(dir: string): Promise<LoadedBundle> {
  const target = resolve(dir);
  await mkdir(dirname(target), { recursive: true });
  const tmp = await mkdtemp(join(dirname(target), `.${basename(target)}.tmp-`));
  try {
    await writeFile(join(tmp, DEMO_MARKER), MARKER_TEXT);
    const series = generateSyntheticBars(DEMO_DATA);
    const { manifest } = train({
      series,
      source: { file: `synthetic(seed=${DEMO_DATA.seed}, bars=${DEMO_DATA.bars})`, sha256: sha256(writeBarsCsv(series)) },
      featureSet: 'causal',
      model: 'tree',
      name: 'demo',
      version: '1',
    });
    await writeBundle(tmp, manifest, series);
    // rmdir, not rm: it removes only an empty folder, so nothing placed there meanwhile is lost.
    if (existsSync(target)) await rmdir(target);
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    // Another process finished first (two demo starts at once): serve what it wrote.
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(join(target, CHECKSUMS_FILE))) return loadBundle(dir);
    throw err;
  }
  return loadBundle(dir);
}
