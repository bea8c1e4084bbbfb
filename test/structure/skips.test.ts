/**
 * Every skip goes through test/helpers/requirement.ts, the one place that turns a skip into a
 * failure when CI requires what is missing (REQUIRE_POSTGRES, REQUIRE_REFERENCE). A raw
 * `describe.skipIf(!available)` would let CI pass by skipping, which is what issue 9 (item 6) closed.
 * Files are read with TypeScript's parser, so comments and strings that merely mention these names pass.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TEST = join(ROOT, 'test');

/** The helper itself, the only file that may call the skip APIs. */
const HELPER = 'test/helpers/requirement.ts';
/** Where the raw probes are defined (and kept for the benchmarks, which print what they leave out). */
const PROBE_DEFINITIONS = new Set(['test/helpers/reference.ts', 'test/store/pg-helper.ts']);

/** vitest's ways to not run a test: `it.skip`, `describe.skipIf(...)`, `test.runIf(...)`, `ctx.skip()`, `it.todo`. */
const SKIP_MEMBERS = new Set(['skip', 'skipIf', 'runIf', 'todo']);
/** Probes that bypass the gate: their callers decide to skip by themselves. */
const RAW_PROBES = new Set(['postgresAvailable', 'HAVE_REFERENCE', 'haveReference', 'announceSkip']);

/**
 * Skips on something other than PostgreSQL or the reference data, which have no REQUIRE_ variable yet
 * (kubectl on the machine; /etc/passwd for a symlink test). Exact calls, so a new raw skip still fails.
 */
const ALLOWED: ReadonlyArray<{ file: string; call: string }> = [
  { file: 'test/deploy/kubernetes.test.ts', call: 'it.skipIf(!kubectl)' },
  { file: 'test/bundle/load.test.ts', call: "it.skipIf(!existsSync('/etc/passwd'))" },
];

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'fixtures' || e.name === 'node_modules' ? [] : testFiles(path);
    return /\.(c|m)?ts$/.test(e.name) && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

interface Violation {
  file: string;
  line: number;
  code: string;
}

/** The skip API calls and raw probe uses in one file's source. */
function findRawSkips(file: string, source: string): Violation[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: Violation[] = [];
  const add = (node: ts.Node): void => {
    const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
    found.push({ file, line, code: node.getText(sf).split('\n')[0] });
  };
  const visit = (node: ts.Node): void => {
    if (file !== HELPER && ts.isPropertyAccessExpression(node) && SKIP_MEMBERS.has(node.name.text)) {
      // skipIf/runIf are reported with their condition (`it.skipIf(!x)`), which is what ALLOWED names.
      const conditional = node.name.text === 'skipIf' || node.name.text === 'runIf';
      add(conditional && ts.isCallExpression(node.parent) && node.parent.expression === node ? node.parent : node);
    }
    if (!PROBE_DEFINITIONS.has(file) && ts.isIdentifier(node) && RAW_PROBES.has(node.text)) add(node);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

const allowed = (v: Violation): boolean => ALLOWED.some((a) => a.file === v.file && a.call === v.code);

describe('skips go through the one required-or-skip helper', () => {
  it('no test file skips, or probes PostgreSQL or ../shared/reference, by itself', () => {
    const files = testFiles(TEST);
    expect(files.length).toBeGreaterThan(40);
    const found = files.flatMap((path) => {
      const file = relative(ROOT, path).split('\\').join('/');
      return findRawSkips(file, readFileSync(path, 'utf8'));
    });
    const report = found.filter((v) => !allowed(v)).map((v) => `${v.file}:${v.line}: ${v.code}`).join('\n');
    expect(report, `use needsPostgres() / needsReference(...) (or gate() from ${HELPER}) instead:\n${report}`).toBe('');
    // An entry whose skip has gone (moved to the helper, say) would silently allow the next one.
    const stale = ALLOWED.filter((a) => !found.some((v) => v.file === a.file && v.code === a.call));
    expect(stale, 'ALLOWED entries that no longer occur: remove them').toEqual([]);
  });

  it('the scan finds what it is meant to, and only that', () => {
    const found = (source: string, file = 'test/x/y.test.ts') => findRawSkips(file, source).filter((v) => !allowed(v)).map((v) => v.code);
    expect(found("describe.skipIf(!available)('db', () => {});")).toEqual(['describe.skipIf(!available)']);
    expect(found("it.skip('later', () => {});\nit.todo('x');")).toEqual(['it.skip', 'it.todo']);
    expect(found("it('x', (ctx) => { if (!up) ctx.skip(); });")).toEqual(['ctx.skip']);
    expect(found('it.concurrent.runIf(up)("x", () => {});')).toEqual(['it.concurrent.runIf(up)']);
    expect(found("const up = await postgresAvailable();\nif (HAVE_REFERENCE) run();")).toEqual(['postgresAvailable', 'HAVE_REFERENCE']);
    // Mentions in comments and strings are not uses.
    expect(found("// describe.skipIf(x)\nit('no describe.skip here, nor HAVE_REFERENCE', () => {});")).toEqual([]);
    // The helper may skip; the probe modules may define their probes; the allowlist is per file and exact.
    expect(found('describe.skip(name, body);', HELPER)).toEqual([]);
    expect(found('export async function postgresAvailable() {}', 'test/store/pg-helper.ts')).toEqual([]);
    expect(found("it.skipIf(!kubectl)('renders', () => {});", 'test/deploy/kubernetes.test.ts')).toEqual([]);
    expect(found("it.skipIf(!kubectl)('renders', () => {});")).toEqual(['it.skipIf(!kubectl)']);
    expect(found("it.skipIf(!kubectl || !docker)('renders', () => {});", 'test/deploy/kubernetes.test.ts')).toEqual(['it.skipIf(!kubectl || !docker)']);
  });
});
