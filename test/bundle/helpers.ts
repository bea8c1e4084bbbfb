import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { CHECKSUMS_FILE, loadBundle, sha256 } from '../../src/bundle/index.js';
import { BundleError } from '../../src/errors.js';

export function tempDir(prefix = 'forecast-bundle-test-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Rewrites a bundle's checksums.json to match its files as they now are (links followed), as
 * someone who edits a bundle and "fixes" its checksums would: what the loader sees past the sha256
 * check is then the edited content itself.
 */
export function resign(dir: string, extraFiles: string[] = []): void {
  const path = join(dir, CHECKSUMS_FILE);
  const checksums = JSON.parse(readFileSync(path, 'utf8')) as { algorithm: string; files: Record<string, string> };
  for (const name of [...Object.keys(checksums.files), ...extraFiles]) checksums.files[name] = sha256(readFileSync(join(dir, name)));
  writeFileSync(path, JSON.stringify(checksums, null, 2) + '\n');
}

/** Edits manifest.json as JSON, then re-signs the bundle. */
export function editManifest(dir: string, edit: (m: Record<string, any>) => void): void {
  const path = join(dir, 'manifest.json');
  const m = JSON.parse(readFileSync(path, 'utf8')) as Record<string, any>;
  edit(m);
  writeFileSync(path, JSON.stringify(m, null, 2) + '\n');
  resign(dir);
}

/** The BundleError loading `dir` fails with (the test fails if it loads, or fails otherwise). */
export async function refusal(dir: string): Promise<BundleError> {
  try {
    await loadBundle(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(BundleError);
    return err as BundleError;
  }
  throw new Error(`${dir} loaded`);
}
