/**
 * `npm run bench`: runs every bench/*.bench.ts in turn and writes BENCHMARKS.json and BENCHMARKS.md
 * (every section regenerated from this run). `npm run bench NAME...` runs the benches whose file
 * name contains NAME and replaces only their sections in an existing BENCHMARKS.json, so one bench
 * can be re-run after a change without a full run. The files are rewritten after each bench, so an
 * interrupted run keeps what it measured.
 *
 * Benchmarks print and record (bench/results.ts); they never assert (DEVELOPERS.md).
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { mergeSections, readBenchmarksFile, results, writeBenchmarkFiles, type BenchmarksFile } from './results.js';

const dir = fileURLToPath(new URL('.', import.meta.url));
const root = fileURLToPath(new URL('..', import.meta.url));
const JSON_FILE = join(root, 'BENCHMARKS.json');
const MD_FILE = join(root, 'BENCHMARKS.md');
/** Section order in BENCHMARKS.md and run order; benches not listed run after, by name; profile last (it profiles what missed). */
const ORDER = ['serve', 'scale', 'features', 'tree', 'linear', 'lambda', 'profile'];
const rank = (name: string) => (ORDER.indexOf(name) < 0 ? ORDER.length - 1.5 : ORDER.indexOf(name));

const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .map((f) => ({ file: f, name: f.replace(/\.bench\.ts$/, '') }))
  .sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name));

const full = only.length === 0;
let file: BenchmarksFile | null = full ? null : readBenchmarksFile(JSON_FILE);
if (files.length === 0) console.log(`no bench/*.bench.ts matches ${only.join(', ')}`);

for (const { file: f, name } of files) {
  console.log(`\n=== ${f}`);
  const started = performance.now();
  const mod = (await import(pathToFileURL(join(dir, f)).href)) as { default: () => Promise<unknown>; title?: string };
  results.begin(name, mod.title ? `${name}: ${mod.title}` : name);
  let failure: unknown;
  try {
    await mod.default();
  } catch (err) {
    failure = err;
    console.log(`  failed: ${(err as Error).stack ?? err}`);
    process.exitCode = 1;
  }
  const section = results.end(failure)!;
  file = mergeSections(file, [section], false);
  writeBenchmarkFiles(JSON_FILE, MD_FILE, file, ORDER);
  console.log(`  (${f} took ${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
if (files.length > 0) console.log(`\nwrote BENCHMARKS.md and BENCHMARKS.json (${full ? 'every section regenerated' : `sections ${files.map((f) => f.name).join(', ')} replaced`})`);
