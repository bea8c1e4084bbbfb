import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
