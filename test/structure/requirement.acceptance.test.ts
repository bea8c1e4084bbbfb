/**
 * The required-or-skip helper inside a real vitest run: a tiny test file whose PostgreSQL (a closed
 * port) and reference folder (an absent one) are missing, run once as a developer runs it (skips,
 * exit 0, the skip says why) and once as .ci/run runs it (REQUIRE_POSTGRES=1 REQUIRE_REFERENCE=1:
 * failures naming the URL and its error, the folder and its missing files, exit 1).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/reference.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VITEST = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
/** Port 1 (tcpmux): never a PostgreSQL, refused at once. */
const DEAD_URL = 'postgres://postgres@127.0.0.1:1/test';

const dir = tempDir('forecast-requirement-');
const absentReference = join(dir, 'no-such-reference');
const presentReference = join(dir, 'reference');

function fixture(): string {
  const helpers = (p: string) => JSON.stringify(join(ROOT, 'test', p));
  return `
import { expect } from 'vitest';
import { gate } from ${helpers('helpers/requirement.ts')};
import { probeReference } from ${helpers('helpers/reference.ts')};
import { needsPostgres } from ${helpers('store/pg-helper.ts')};

const withPostgres = await needsPostgres(${JSON.stringify(DEAD_URL)});
withPostgres.describe('the PostgreSQL suite', () => {
  withPostgres.it('would query', () => expect(1).toBe(1));
});
gate(probeReference(['MSFT.csv', 'dtree_model.pkl'], ${JSON.stringify(absentReference)})).it('the reference test', () => expect(1).toBe(1));
gate(probeReference(['MSFT.csv'], ${JSON.stringify(presentReference)})).it('the test whose data is there', () => expect(1).toBe(1));
`;
}

interface Run {
  code: number | null;
  output: string;
}

function runVitest(env: Record<string, string>): Promise<Run> {
  const { REQUIRE_POSTGRES: _p, REQUIRE_REFERENCE: _r, ...inherited } = process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VITEST, 'run', '--root', dir, '--config', join(dir, 'vitest.config.mjs'), '--reporter', 'verbose'], {
      cwd: dir,
      env: { ...inherited, NO_COLOR: '1', FORCE_COLOR: '0', CI: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('required or skip, in a real vitest run', () => {
  beforeAll(() => {
    writeFileSync(join(dir, 'vitest.config.mjs'), "export default { test: { include: ['*.test.ts'], pool: 'forks', maxWorkers: 1 } };\n");
    writeFileSync(join(dir, 'gate.test.ts'), fixture());
    mkdirSync(presentReference);
    writeFileSync(join(presentReference, 'MSFT.csv'), 'Date\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('without REQUIRE_*: the tests skip, exit 0, and the skips say what is missing', async () => {
    const run = await runVitest({});
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/SKIPPED "the PostgreSQL suite": PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:1\/test is missing \(unreachable \(.*ECONNREFUSED/);
    expect(run.output).toContain(`SKIPPED "the reference test": the reference data in ${absentReference}`);
    expect(run.output).toMatch(/Tests\s+1 passed \| 2 skipped \(3\)/);
  });

  it('with REQUIRE_POSTGRES=1 REQUIRE_REFERENCE=1: they fail, exit 1, naming the URL and error, the folder and files', async () => {
    const run = await runVitest({ REQUIRE_POSTGRES: '1', REQUIRE_REFERENCE: '1' });
    expect(run.code, run.output).toBe(1);
    expect(run.output).toMatch(/REQUIRE_POSTGRES=1 and PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:1\/test is missing: unreachable \(.*ECONNREFUSED 127\.0\.0\.1:1/);
    expect(run.output).toContain(`REQUIRE_REFERENCE=1 and the reference data in ${absentReference} (MSFT.csv, dtree_model.pkl) is missing: ${absentReference} does not exist`);
    expect(run.output).toMatch(/Tests\s+2 failed \| 1 passed \(3\)/);
    expect(run.output).not.toContain('skipped');
  });
});
