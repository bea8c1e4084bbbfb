/**
 * Issue 10, item 4: the habits a command-line user brings. `--version`; output piped into `head`
 * ends quietly; `synth` makes data to try the tool with; `--skip-null-rows` for Yahoo's days without
 * data; `train --help` shows every default and how the test set is chosen; a warning when the test
 * set is too small for its metrics to mean anything.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadBundle } from '../../src/bundle/index.js';
import { generateSyntheticBars, readBarsCsv, writeBarsCsv } from '../../src/data/index.js';
import { DEFAULT_LEARN_FRACTION, MODERN_RECIPE, REFERENCE_RECIPE } from '../../src/training/recipe.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/reference.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** What a command writes with process.stdout.write (commander's help and version, synth's CSV). */
async function stdoutOf(...args: string[]): Promise<{ code: number; written: string; stderr: string }> {
  const chunks: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  }) as typeof process.stdout.write);
  try {
    const { code, stderr } = await runCli(...args);
    return { code, written: chunks.join(''), stderr };
  } finally {
    write.mockRestore();
  }
}

/**
 * Runs the real executable with its standard output read by a reader that leaves after `lines`
 * lines, as `| head -N` does: the child's later writes fail with EPIPE.
 */
function runPipedIntoHead(args: string[], lines: number): Promise<{ code: number | null; head: string[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'index.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.split('\n').length > lines) child.stdout.destroy();
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, head: text.split('\n').slice(0, lines), stderr }));
  });
}

/**
 * Inserts a row of `cells` dated the Saturday after the first Friday at or after 0-based line `from`
 * (synthetic bars are business days, so the date keeps the file in order); returns its 1-based line.
 */
function insertNullRow(lines: string[], from: number, cells: string): number {
  for (let i = from; i + 1 < lines.length; i++) {
    const day = new Date(`${lines[i].slice(0, 10)}T00:00:00Z`);
    if (day.getUTCDay() !== 5) continue;
    day.setUTCDate(day.getUTCDate() + 1);
    lines.splice(i + 1, 0, `${day.toISOString().slice(0, 10)},${cells}`);
    return i + 2;
  }
  throw new Error(`no Friday after line ${from + 1}`);
}

describe('forecast CLI habits', () => {
  const work = tempDir('forecast-habits-');
  const csv = join(work, 'bars.csv');
  const bundleDir = join(work, 'models', 'habits', '1');

  beforeAll(async () => {
    writeFileSync(csv, writeBarsCsv(generateSyntheticBars({ seed: 5, bars: 1000 })));
    const res = await runCli('train', '--csv', csv, '--out', bundleDir, '--max-leaf-nodes', '8');
    expect(res.code, res.stderr).toBe(0);
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('--version prints the version in package.json', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const res = await stdoutOf('--version');
    expect(res.code).toBe(0);
    expect(res.written).toBe(`${version}\n`);
  });

  it('predict piped into head -3 exits 0 with nothing on stderr', async () => {
    // Far more output than a pipe buffers (64 KiB), so the child is still writing when the reader leaves.
    const long = join(work, 'long.csv');
    writeFileSync(long, writeBarsCsv(generateSyntheticBars({ seed: 5, bars: 20_000 })));
    const res = await runPipedIntoHead(['predict', bundleDir, '--csv', long], 3);
    expect(res.head[0]).toBe('date,y_pred');
    expect(res.head[1]).toMatch(/^\d{4}-\d\d-\d\d,[\d.e-]+$/);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
  });

  it('synth writes seeded synthetic bars as a Yahoo CSV that train reads', async () => {
    const out = join(work, 'synth.csv');
    const res = await runCli('synth', '--bars', '1200', '--seed', '9', '--out', out);
    expect(res.code, res.stderr).toBe(0);
    const text = readFileSync(out, 'utf8');
    expect(text.split('\n')[0]).toBe('Date,Open,High,Low,Close,Adj Close,Volume');
    // The Yahoo layout reads Adj Close as the close: the generator's bars come back exactly.
    expect(readBarsCsv(text, { numberParsing: 'exact' })).toEqual(generateSyntheticBars({ seed: 9, bars: 1200 }));
    const trained = await runCli('train', '--csv', out, '--out', join(work, 'models', 'synth', '1'), '--max-leaf-nodes', '8');
    expect(trained.code, trained.stderr).toBe(0);
    expect((await loadBundle(join(work, 'models', 'synth', '1'))).manifest.source.bars).toBe(1200);

    const piped = await stdoutOf('synth', '--bars', '1200', '--seed', '9');
    expect(piped.code).toBe(0);
    expect(piped.written).toBe(text);

    const bad = await runCli('synth', '--bars', '0');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--bars must be between 1 and');
  });

  it('--skip-null-rows skips Yahoo rows of nulls and counts them; without it the error suggests the option', async () => {
    const clean = join(work, 'clean.csv');
    const withNulls = join(work, 'nulls.csv');
    expect((await runCli('synth', '--bars', '1000', '--seed', '5', '--out', clean)).code).toBe(0);
    const lines = readFileSync(clean, 'utf8').split('\n');
    // Yahoo's days without data: a date and null in every other cell, in any case.
    const first = insertNullRow(lines, 300, 'null,null,null,null,null,null');
    const second = insertNullRow(lines, 600, 'NULL,Null,null,null,null,null');
    writeFileSync(withNulls, lines.join('\n'));

    const refused = await runCli('predict', bundleDir, '--csv', withNulls);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`nulls.csv: line ${first}, column "Open": value is null`);
    expect(refused.stderr).toContain('pass --skip-null-rows');

    const skipped = await runCli('predict', bundleDir, '--csv', withNulls, '--skip-null-rows', '--json');
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(skipped.stderr).toContain(`skipped 2 rows of nulls.csv with null in every value (days without data): lines ${first}, ${second}`);
    const reference = await runCli('predict', bundleDir, '--csv', clean, '--json');
    expect(skipped.stdout).toBe(reference.stdout);

    const trained = await runCli('train', '--csv', withNulls, '--skip-null-rows', '--out', join(work, 'models', 'nulls', '1'), '--max-leaf-nodes', '8');
    expect(trained.code, trained.stderr).toBe(0);
    expect(trained.stderr).toContain('skipped 2 rows');
  });

  it('train --help shows every default, from the recipes, and how the test set is chosen', async () => {
    const res = await stdoutOf('train', '--help');
    expect(res.code).toBe(0);
    // Commander wraps long lines: compare with the whitespace collapsed.
    const help = res.written.replace(/\s+/g, ' ');
    const m = MODERN_RECIPE;
    const r = REFERENCE_RECIPE;
    for (const expected of [
      '--features <set> feature set: reference (the seed, quirks included) or causal (default: "causal")',
      '--model <kind> tree or linear (default: "tree")',
      `(default ${Math.round(DEFAULT_LEARN_FRACTION * 100)}% of the model rows; ${r.learnRows} under the reference recipe)`,
      `--cv <k> TimeSeriesSplit folds over the learn rows (default ${m.cvSplits})`,
      `--max-depth <d> tree: maximum depth (default ${m.tree.maxDepth}; ${r.tree.maxDepth} under the reference recipe)`,
      `--min-samples-split <s> tree: minimum rows to split a node (default ${m.tree.minSamplesSplit})`,
      `--min-samples-leaf <m> tree: minimum rows in a leaf (default ${m.tree.minSamplesLeaf})`,
      `(default ${m.tree.maxLeafNodes})`,
      `--random-state <seed> tree: random_state (default ${m.tree.randomState})`,
      'default: NAME of an --out ending in NAME/VERSION',
      'the oldest --learn-rows rows are learned from, the rest, the most recent, are the test set',
    ])
      expect(help).toContain(expected);
  });

  it('warns on stderr when the test set is too small for its metrics to mean much', async () => {
    // A year of daily bars: the causal features' warm-up leaves 52 model rows, 6 of them for testing.
    const year = join(work, 'year.csv');
    writeFileSync(year, writeBarsCsv(generateSyntheticBars({ seed: 5, bars: 252 })));
    const res = await runCli('train', '--csv', year, '--out', join(work, 'models', 'year', '1'));
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain('warning: the test set is only 6 rows (11.5% of 52 model rows)');
    expect(res.stderr).toContain('use a longer history');

    const enough = await runCli('train', '--csv', csv, '--out', join(work, 'models', 'enough', '1'), '--max-leaf-nodes', '8');
    expect(enough.code, enough.stderr).toBe(0);
    expect(enough.stderr).not.toContain('warning');
  });
});
