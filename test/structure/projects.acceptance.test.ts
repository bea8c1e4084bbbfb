/**
 * Every test file is in exactly one vitest project, as vitest itself resolves them (`vitest list
 * --filesOnly`): `npm test` runs each once, `test:unit` none of what spawns. Asked of vitest rather
 * than re-derived from the globs because the trap is in its merging: with `extends: true` a root
 * `include` is concatenated into each project's, which once put every unit file in both projects.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/reference.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'fixtures' ? [] : testFiles(path);
    return e.name.endsWith('.test.ts') ? [relative(ROOT, path).split('\\').join('/')] : [];
  });
}

describe('vitest projects', () => {
  it('put every test file in exactly one project: unit, or acceptance for what spawns', async () => {
    const dir = tempDir('forecast-projects-');
    try {
      const out = join(dir, 'files.json');
      await promisify(execFile)(process.execPath, [join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'list', '--filesOnly', `--json=${out}`], { cwd: ROOT });
      const listed = (JSON.parse(readFileSync(out, 'utf8')) as { file: string; projectName: string }[]).map((f) => ({
        file: relative(ROOT, f.file).split('\\').join('/'),
        project: f.projectName,
      }));
      const projectsOf = new Map<string, string[]>();
      for (const { file, project } of listed) projectsOf.set(file, [...(projectsOf.get(file) ?? []), project]);
      const notOnce = [...projectsOf].filter(([, p]) => p.length !== 1).map(([f, p]) => `${f}: ${p.join(', ')}`);
      expect(notOnce).toEqual([]);
      expect([...projectsOf.keys()].sort()).toEqual(testFiles(join(ROOT, 'test')).sort());

      const project = (file: string) => projectsOf.get(file)?.[0];
      for (const [file, p] of projectsOf) {
        if (/^test\/(serve|store|cli|deploy|load|fuzz)\/|\.acceptance\.test\.ts$/.test(file)) expect(p, file).toEqual(['acceptance']);
        else expect(p, file).toEqual(['unit']);
      }
      expect(project('test/models/tree-units.test.ts')).toBe('unit');
      expect(project('test/structure/projects.acceptance.test.ts')).toBe('acceptance');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
