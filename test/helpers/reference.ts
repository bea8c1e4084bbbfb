import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256, writeBundle, type BundleManifest } from '../../src/bundle/index.js';
import type { BarSeries } from '../../src/data/bars.js';
import { readBarsCsv } from '../../src/data/index.js';
import { importSklearn } from '../../src/training/import.js';
import { gate, type Gate, type Probe } from './requirement.js';

/** `../shared/reference` beside the repository: real data that may not be copied into it. */
export const REFERENCE_DIR = fileURLToPath(new URL('../../../shared/reference/', import.meta.url));
/** For the benchmarks, which print what they leave out; tests use needsReference (test/structure/skips.test.ts). */
export const HAVE_REFERENCE = existsSync(join(REFERENCE_DIR, 'MSFT.csv'));

export function referenceFile(name: string): string {
  return join(REFERENCE_DIR, name);
}

/** Which of `files` are absent from `dir`, named with the folder. */
export function probeReference(files: readonly string[], dir = REFERENCE_DIR): Probe {
  const absent = files.filter((f) => !existsSync(join(dir, f)));
  const missing = absent.length === 0 ? undefined : existsSync(dir) ? `${absent.join(', ')} not in ${dir}` : `${dir} does not exist`;
  return { what: `the reference data in ${dir} (${files.join(', ')})`, variable: 'REQUIRE_REFERENCE', missing };
}

/** The reference tests' gate: run, skip (REQUIRE_REFERENCE unset) or fail (REQUIRE_REFERENCE=1). */
export function needsReference(...files: string[]): Gate {
  return gate(probeReference(files.length > 0 ? files : ['MSFT.csv']));
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
