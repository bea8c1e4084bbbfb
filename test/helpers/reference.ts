import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256, writeBundle, type BundleManifest } from '../../src/bundle/index.js';
import type { BarSeries } from '../../src/data/bars.js';
import { readBarsCsv } from '../../src/data/index.js';
import { importSklearn } from '../../src/training/import.js';

/** `../shared/reference` beside the repository: real data that may not be copied into it. */
export const REFERENCE_DIR = fileURLToPath(new URL('../../../shared/reference/', import.meta.url));
export const HAVE_REFERENCE = existsSync(join(REFERENCE_DIR, 'MSFT.csv'));
export const SKIP_REFERENCE_REASON = `../shared/reference is absent (${REFERENCE_DIR}): tests on the real MSFT data and the scikit-learn pickles are skipped`;

export function referenceFile(name: string): string {
  return join(REFERENCE_DIR, name);
}

export function announceSkip(): void {
  if (!HAVE_REFERENCE) console.warn(`SKIPPED: ${SKIP_REFERENCE_REASON}`);
}

export function tempDir(prefix = 'forecast-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * The seed's model as a bundle: its pickled tree and scaler imported with features computed here
 * from MSFT.csv (read with pandas' legacy number parser, as the reference set defines), written to `dir`.
 */
export async function writeReferenceBundle(dir: string, name = 'msft', version = '1'): Promise<{ manifest: BundleManifest; series: BarSeries }> {
  const csv = readFileSync(referenceFile('MSFT.csv'), 'utf8');
  const series = readBarsCsv(csv, { numberParsing: 'legacy', sourceName: 'MSFT.csv' });
  const { manifest } = importSklearn({
    modelPickle: readFileSync(referenceFile('dtree_model.pkl')),
    scalerPickle: readFileSync(referenceFile('scaler_ml.pkl')),
    series,
    source: { file: 'MSFT.csv', sha256: sha256(csv) },
    featureSet: 'reference',
    name,
    version,
  });
  await writeBundle(dir, manifest, series);
  return { manifest, series };
}
