import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSyntheticBars, writeBarsCsv } from '../data/index.js';
import { train } from '../training/train.js';
import { CHECKSUMS_FILE, loadBundle, sha256, writeBundle } from './io.js';
import type { LoadedBundle } from './types.js';

/** The demo data set: the project's own synthetic bars, since the reference data may not be shipped. */
export const DEMO_DATA = { seed: 20240601, bars: 3000, startDate: '2012-01-02', startPrice: 50 } as const;

/**
 * The bundled demo model: a causal-feature tree trained on the synthetic demo history. Trained into
 * `dir` on first use (about a second); later starts load it. A damaged demo bundle is retrained.
 */
export async function ensureDemoBundle(dir: string): Promise<LoadedBundle> {
  if (existsSync(join(dir, CHECKSUMS_FILE))) {
    try {
      return await loadBundle(dir);
    } catch {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const series = generateSyntheticBars(DEMO_DATA);
  const { manifest } = train({
    series,
    source: { file: `synthetic(seed=${DEMO_DATA.seed}, bars=${DEMO_DATA.bars})`, sha256: sha256(writeBarsCsv(series)) },
    featureSet: 'causal',
    model: 'tree',
    name: 'demo',
    version: '1',
  });
  await writeBundle(dir, manifest, series);
  return loadBundle(dir);
}
