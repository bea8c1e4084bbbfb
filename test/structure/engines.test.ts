/**
 * Every locked package runs on every Node the project claims (package.json `engines.node`), so
 * `npm ci` prints no EBADENGINE (issue 9, item 7). "Every Node it claims" is taken as the oldest
 * version the range admits (a dependency cannot promise majors not yet released) and the Node
 * running the tests.
 *
 * Why the floor is 20.19.0, not 20: vite 8 and rolldown (under vitest 4) and yargs 18 (under
 * vega-lite 6, a production dependency that pins ~18.0.0) declare ^20.19.0; no version their
 * parents accept supports older 20.x. cookie 2 (light-my-request >= 6.8) and content-disposition 3
 * (@fastify/static >= 10.1.4) need Node 22: package.json `overrides` pins light-my-request 6.6.0
 * (cookie ^1) and @fastify/static 10.1.3 (content-disposition ^2), the newest within what fastify
 * and @fastify/swagger-ui ask for that stay on Node 20.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

/** semver comes with fastify and npm's own tooling; it has no types here, hence the narrow interface. */
const semver = createRequire(import.meta.url)('semver') as {
  validRange(range: string): string | null;
  minVersion(range: string): { version: string } | null;
  satisfies(version: string, range: string): boolean;
};

interface LockEntry {
  version?: string;
  engines?: Record<string, string> | string[];
}

const read = (name: string): unknown => JSON.parse(readFileSync(new URL(`../../${name}`, import.meta.url), 'utf8'));
const pkg = read('package.json') as { engines: { node: string } };
const lock = read('package-lock.json') as { packages: Record<string, LockEntry> };

/** The packages (path@version, range) whose engines.node does not admit `node`. */
function excluding(packages: Record<string, LockEntry>, node: string): string[] {
  return Object.entries(packages).flatMap(([path, entry]) => {
    if (path === '' || !entry.engines || Array.isArray(entry.engines)) return [];
    const range = entry.engines.node;
    if (range === undefined || semver.satisfies(node, range)) return [];
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    return [`${name}@${entry.version} (${path}) needs node ${JSON.stringify(range)}`];
  });
}

describe('the lock runs on the Node versions package.json claims', () => {
  const claimed = pkg.engines.node;
  const floor = semver.minVersion(claimed)?.version;

  it('package.json claims a valid range', () => {
    expect(semver.validRange(claimed), claimed).not.toBeNull();
    expect(floor).toBeDefined();
  });

  it(`every package in package-lock.json admits the oldest claimed Node (${floor})`, () => {
    expect(excluding(lock.packages, floor!), `package.json engines.node is ${JSON.stringify(claimed)}`).toEqual([]);
  });

  it(`every package admits the Node running this test (${process.version}) when package.json claims it`, () => {
    if (!semver.satisfies(process.version, claimed)) throw new Error(`${process.version} is outside package.json engines.node ${JSON.stringify(claimed)}`);
    expect(excluding(lock.packages, process.version)).toEqual([]);
  });

  it('names the package, its path and its range', () => {
    const packages = {
      '': { engines: { node: '>=0' } },
      'node_modules/cookie': { version: '2.0.2', engines: { node: '>=22' } },
      'node_modules/fastify/node_modules/cookie': { version: '1.1.1', engines: { node: '>=18' } },
      'node_modules/old': { version: '1.0.0', engines: ['node >= 0.8'] },
      'node_modules/any': { version: '1.0.0', engines: { npm: '>=7' } },
    };
    expect(excluding(packages, '20.19.0')).toEqual(['cookie@2.0.2 (node_modules/cookie) needs node ">=22"']);
  });
});
