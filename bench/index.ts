/**
 * `npm run bench`: runs every bench/*.bench.ts in turn (or those named on the command line) and
 * prints their figures. Benchmarks print; they never assert (DEVELOPERS.md).
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

const dir = fileURLToPath(new URL('.', import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();

for (const file of files) {
  console.log(`\n=== ${file}`);
  const started = performance.now();
  const mod = (await import(pathToFileURL(join(dir, file)).href)) as { default: () => Promise<void> };
  try {
    await mod.default();
  } catch (err) {
    console.log(`  failed: ${(err as Error).stack ?? err}`);
    process.exitCode = 1;
  }
  console.log(`  (${file} took ${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
