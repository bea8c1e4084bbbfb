/**
 * The stages import one way only (README, "The flow, one folder per stage"): a cycle between stage
 * folders, or between two files anywhere under src/, is a design error even when every import in it
 * is `import type` (the issue that added this test: bundle/types.ts and models/pipeline.ts imported
 * each other). Imports are read with TypeScript's own scanner (`preProcessFile`), so comments and
 * strings that merely look like imports are ignored and dynamic `import()` counts.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return /\.(c|m)?ts$/.test(e.name) && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** `./x.js` (NodeNext spelling) → the `.ts` file it compiles from; null for packages and non-source files. */
function resolveImport(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const target = resolve(dirname(from), specifier);
  for (const candidate of [target.replace(/\.(c|m)?js$/, '.$1ts'), target, `${target}.ts`, join(target, 'index.ts')]) {
    if (candidate.startsWith(SRC) && /\.(c|m)?ts$/.test(candidate) && existsSync(candidate)) return candidate;
  }
  return null;
}

/** `src/<stage>/...` → stage; a file directly under src/ is a stage of its own. */
function stageOf(file: string): string {
  const rel = relative(SRC, file).split(sep);
  return rel.length > 1 ? rel[0] : rel[0].replace(/\.(c|m)?ts$/, '');
}

/** The strongly connected components of more than one node (or with a self-loop): every node on some cycle, grouped. */
function findComponents(graph: Map<string, Set<string>>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v)?.has(v)) components.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return components;
}

/** One closed path per component: `[a, b, c, a]`. */
function findCycles(graph: Map<string, Set<string>>): string[][] {
  return findComponents(graph).map((c) => closedPath(graph, new Set(c)));
}

/** One concrete cycle through a component, smallest node first: `a → b → c → a`. */
function closedPath(graph: Map<string, Set<string>>, component: Set<string>): string[] {
  const start = [...component].sort()[0];
  // Breadth-first from start back to start within the component: the shortest cycle through it.
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of [...(graph.get(v) ?? [])].sort()) {
      if (!component.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (path[0] !== start) path.unshift(prev.get(path[0])!);
        return [...path, start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

function importGraph(): { files: Map<string, Set<string>>; stages: Map<string, Set<string>>; via: Map<string, string> } {
  const files = new Map<string, Set<string>>();
  const stages = new Map<string, Set<string>>();
  /** `from → to` stage edge → one file import that makes it, for the message. */
  const via = new Map<string, string>();
  for (const file of sourceFiles(SRC)) {
    const name = relative(SRC, file);
    const out = new Set<string>();
    files.set(name, out);
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const { fileName } of importedFiles) {
      const target = resolveImport(file, fileName);
      if (!target) continue;
      out.add(relative(SRC, target));
      const [a, b] = [stageOf(file), stageOf(target)];
      if (a === b) continue;
      if (!stages.has(a)) stages.set(a, new Set());
      stages.get(a)!.add(b);
      if (!via.has(`${a}→${b}`)) via.set(`${a}→${b}`, `${name} imports ${relative(SRC, target)}`);
    }
  }
  return { files, stages, via };
}

describe('import structure of src/', () => {
  const { files, stages, via } = importGraph();

  it('finds the imports (the scanner and resolver work)', () => {
    expect(files.size).toBeGreaterThan(50);
    expect(files.get(join('bundle', 'io.ts'))).toContain(join('models', 'index.ts'));
    expect(findCycles(new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a'])], ['d', new Set(['d'])]]))).toEqual([
      ['a', 'b', 'c', 'a'],
      ['d', 'd'],
    ]);
  });

  it('has no cycle between stage folders', () => {
    // Every edge inside a tangled group of stages, each with one import that makes it: all of them
    // must go for the group to untangle, not only those of the first cycle found.
    const cycles = findComponents(stages).map((c) => {
      const edges = c.flatMap((a) => c.filter((b) => stages.get(a)?.has(b)).map((b) => `  ${a} → ${b}: ${via.get(`${a}→${b}`)}`));
      return `${closedPath(stages, new Set(c)).join(' → ')} (stages ${c.join(', ')})\n${edges.join('\n')}`;
    });
    expect(cycles, `stage cycles:\n${cycles.join('\n')}`).toEqual([]);
  });

  it('has no cycle between files', () => {
    const cycles = findComponents(files).map((c) => `${closedPath(files, new Set(c)).join(' → ')}${c.length > 2 ? ` (files on cycles with it: ${c.join(', ')})` : ''}`);
    expect(cycles, `file cycles:\n${cycles.join('\n')}`).toEqual([]);
  });
});
