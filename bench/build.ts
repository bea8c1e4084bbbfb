/**
 * How the benchmarks start `forecast serve` in a new process, and a compiled copy of the service
 * for the measurements where tsx's own start-up would hide the service's.
 *
 * - `servedCli()`: `node dist/cli/index.js` when `npm run build` has made dist/, else
 *   `node --import tsx src/cli/index.ts` (what `npm start` runs). Each figure says which.
 * - `scratchBuild()`: src/ transpiled file by file by esbuild (no bundling, same module layout as
 *   `tsc -p tsconfig.build.json`, external source maps) into a temporary folder that links the
 *   project's node_modules. Used for the compiled cold start when dist/ is absent, and by
 *   bench/profile.ts, whose profiles are mapped back to src/ lines through the source maps.
 *   Nothing is written inside the repository.
 */
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const DIST_CLI = join(ROOT, 'dist', 'cli', 'index.js');

export interface CliRunner {
  /** `dist`, `tsx` or `esbuild scratch build`. */
  kind: 'dist' | 'tsx' | 'scratch';
  /** The command as a person would type it (for the figures' notes). */
  shown: string;
  /** node's arguments before `serve ...`. */
  args: string[];
}

/** `node dist/cli/index.js` if dist/ exists, else `node --import tsx src/cli/index.ts`. */
export function servedCli(): CliRunner {
  if (existsSync(DIST_CLI)) return { kind: 'dist', shown: 'node dist/cli/index.js serve', args: [DIST_CLI] };
  return { kind: 'tsx', shown: 'node --import tsx src/cli/index.ts serve (no dist/: `npm run build` absent)', args: ['--import', 'tsx', join(ROOT, 'src', 'cli', 'index.ts')] };
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

let scratch: { dir: string; cli: string } | null = null;

/**
 * A compiled copy of src/ (built once per process; removed at exit). Layout: DIR/package.json
 * (the project's: `type: module`, read by app.ts for the version), DIR/node_modules -> the
 * project's, DIR/dist/** (*.js and *.js.map).
 */
export async function scratchBuild(): Promise<{ dir: string; cli: string; runner: CliRunner }> {
  if (!scratch) {
    const dir = mkdtempSync(join(tmpdir(), 'forecast-bench-build-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    const src = join(ROOT, 'src');
    await build({
      entryPoints: tsFiles(src),
      outdir: join(dir, 'dist'),
      outbase: src,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      bundle: false,
      sourcemap: 'external',
      sourcesContent: false,
      logLevel: 'error',
    });
    scratch = { dir, cli: join(dir, 'dist', 'cli', 'index.js') };
  }
  const cli = scratch.cli;
  return { ...scratch, runner: { kind: 'scratch', shown: `node ${relative(ROOT, cli).startsWith('..') ? '<esbuild build of src/ in a temporary folder>/dist/cli/index.js' : cli} serve`, args: [cli] } };
}
