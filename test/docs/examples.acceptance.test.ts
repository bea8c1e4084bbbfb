/**
 * Docs that are tests (issue 10, items 1 and 2): every shell example of README.md and docs/*.md is
 * run, in page order, in a fresh folder laid out like a clone beside ../shared, against the service
 * started the way the page starts it. Each command must exit 0, a curl answer must not be the
 * service's error shape, and an answer the page shows (a ```json block marked `<!-- answer -->`)
 * must be what the last command before it printed. A block that cannot run here says why in the
 * page (`<!-- not run: REASON -->`); any other block is run, so a new example cannot go stale.
 */
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { afterEach, expect, it } from 'vitest';
import { needsReference, tempDir } from '../helpers/reference.js';
import { extractBlocks, type DocBlock } from './extract.js';
import { DocSession, freePort, parseJson } from './session.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const REFERENCE = fileURLToPath(new URL('../../../shared/reference/', import.meta.url));
/** Copied, not linked: the examples write into deploy/, and scripts/ finds its output folder from its own path (node follows links to the real one). */
const COPIED = new Set(['deploy', 'scripts']);
/** Never part of a clone: what earlier local runs left behind. */
const NOT_IN_A_CLONE = new Set(['.data', 'models', 'dist', '.git']);

const PAGES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

function pageBlocks(page: string): DocBlock[] {
  return extractBlocks(page, readFileSync(join(ROOT, page), 'utf8'));
}

/**
 * A folder like a fresh clone after `npm ci`: the tracked top-level entries (read-only ones linked,
 * written ones copied), the installed node_modules, and `../shared/reference` beside it (linked,
 * never copied), so the pages' relative paths mean what they mean in a clone.
 */
function freshClone(): string {
  const outer = tempDir('forecast-docs-');
  const clone = join(outer, 'main');
  mkdirSync(clone);
  mkdirSync(join(outer, 'shared'));
  symlinkSync(REFERENCE, join(outer, 'shared', 'reference'));
  const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
  const topLevel = new Set(tracked.map((path) => path.split('/')[0]!));
  for (const entry of [...topLevel, 'node_modules']) {
    if (NOT_IN_A_CLONE.has(entry)) continue;
    if (COPIED.has(entry)) cpSync(join(ROOT, entry), join(clone, entry), { recursive: true });
    else symlinkSync(join(ROOT, entry), join(clone, entry));
  }
  return clone;
}

const withReference = needsReference('MSFT.csv', 'dtree_model.pkl', 'scaler_ml.pkl');

let session: DocSession | null = null;
let folder: string | null = null;
afterEach(async () => {
  await session?.close();
  session = null;
  if (folder) rmSync(join(folder, '..'), { recursive: true, force: true });
  folder = null;
});

withReference.describe('every shell example of the docs runs as written', () => {
  for (const page of PAGES) {
    it(
      page,
      async () => {
        folder = freshClone();
        session = new DocSession(folder, await freePort());
        let lastRunBlock: { line: number; stdout: string } | null = null;
        for (const block of pageBlocks(page)) {
          if (block.kind === 'answer') {
            expect(lastRunBlock, `${page}:${block.line}: an answer shown after no run example`).not.toBeNull();
            const documented = JSON.parse(block.json) as unknown;
            const printed = parseJson(lastRunBlock!.stdout);
            expect(printed, `${page}:${block.line}: the answer shown is not what the command of line ${lastRunBlock!.line} printed:\n${lastRunBlock!.stdout}`).toMatchObject(
              documented as object,
            );
            continue;
          }
          if (block.notRun !== null) continue;
          for (const command of block.commands) {
            const result = await session.run(command);
            expect(result.code, `${page}:${block.line}: \`${command}\` failed:\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}`).toBe(0);
            lastRunBlock = { line: block.line, stdout: result.stdout };
          }
        }
      },
      600_000,
    );
  }
});
