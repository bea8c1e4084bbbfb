/**
 * .ci/run is the README's test command with skips turned into failures (issue 9, item 6): it must
 * export REQUIRE_POSTGRES=1 and REQUIRE_REFERENCE=1 before running exactly what the README says,
 * or CI could pass by skipping the PostgreSQL and reference tests.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (name: string): string => readFileSync(new URL(`../../${name}`, import.meta.url), 'utf8');

/** Lines that run something: no comments, no blank lines. */
const commands = (script: string): string[] => script.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));

describe('.ci/run', () => {
  const run = commands(read('.ci/run'));

  it('runs exactly the README test command, last', () => {
    // The README's first code block: `npm ci && npm test       # run every test ...`.
    const readme = /```bash\n(?:.*\n)*?(npm ci && npm test)\s+#/.exec(read('README.md'));
    expect(readme?.[1]).toBe('npm ci && npm test');
    expect(run.at(-1)).toBe(readme![1]);
  });

  it('exports REQUIRE_POSTGRES=1 and REQUIRE_REFERENCE=1 before it', () => {
    const exported = new Map<string, { value: string; line: number }>();
    run.forEach((line, i) => {
      const m = /^export\s+(.+)$/.exec(line);
      if (m) for (const [, name, value] of m[1].matchAll(/(\w+)=(\S*)/g)) exported.set(name, { value, line: i });
    });
    for (const name of ['REQUIRE_POSTGRES', 'REQUIRE_REFERENCE']) {
      expect(exported.get(name)?.value, name).toBe('1');
      expect(exported.get(name)!.line).toBeLessThan(run.length - 1);
    }
  });
});
