import { configDefaults, defineConfig } from 'vitest/config';

/**
 * What starts servers, databases, child processes or installs: `npm run test:acceptance`. Everything
 * else is `unit` (`npm run test:unit`, the fast part), so a new folder lands in a project without
 * anyone listing it; a file elsewhere that spawns is named *.acceptance.test.ts.
 */
export const ACCEPTANCE = ['test/serve/**', 'test/store/**', 'test/cli/**', 'test/deploy/**', 'test/load/**', 'test/fuzz/**', 'test/**/*.acceptance.test.ts'];

export default defineConfig({
  test: {
    // No `include` here: `extends: true` concatenates arrays, so a root include would put every file in both projects.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores: integration tests start servers and databases; keep parallelism modest.
    maxWorkers: 2,
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ...ACCEPTANCE] } },
      { extends: true, test: { name: 'acceptance', include: ACCEPTANCE.map((g) => (g.endsWith('/**') ? `${g}/*.test.ts` : g)) } },
    ],
  },
});
