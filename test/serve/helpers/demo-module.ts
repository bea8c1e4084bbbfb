/** Stands in for src/bundle's ensureDemoBundle in tests: writes a stub bundle if missing. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeStubBundle } from './stub-bundle.js';

export async function ensureDemoBundle(dir: string): Promise<void> {
  if (!existsSync(join(dir, 'manifest.json'))) writeStubBundle(dir, { name: 'demo', version: '1', bars: 50 });
}
