/**
 * The required-or-skip decision (test/helpers/requirement.ts) with fake environments, and the two
 * probes' messages. That vitest then really fails or skips is test/structure/requirement.acceptance.test.ts.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decide, type Probe } from '../helpers/requirement.js';
import { probeReference, tempDir } from '../helpers/reference.js';
import { probePostgres } from '../store/pg-helper.js';

const PG: Probe = { what: 'PostgreSQL at postgres://postgres@127.0.0.1:1/test', variable: 'REQUIRE_POSTGRES', missing: 'unreachable (connect ECONNREFUSED 127.0.0.1:1)' };
const PRESENT: Probe = { ...PG, missing: undefined };

describe('decide: run, skip or fail', () => {
  it('runs what is present, required or not', () => {
    for (const env of [{}, { REQUIRE_POSTGRES: '1' }, { REQUIRE_POSTGRES: '0' }]) expect(decide(PRESENT, env)).toEqual({ action: 'run' });
  });

  it('skips what is missing unless its variable requires it, saying what and how to require it', () => {
    for (const env of [{}, { REQUIRE_POSTGRES: '' }, { REQUIRE_POSTGRES: '0' }, { REQUIRE_POSTGRES: 'false' }, { REQUIRE_REFERENCE: '1' }]) {
      const d = decide(PG, env);
      expect(d.action, JSON.stringify(env)).toBe('skip');
      if (d.action !== 'skip') continue;
      expect(d.message).toContain('postgres://postgres@127.0.0.1:1/test');
      expect(d.message).toContain('ECONNREFUSED');
      expect(d.message).toContain('REQUIRE_POSTGRES=1');
    }
  });

  it('fails what is missing and required, naming the variable, what is missing and why', () => {
    for (const value of ['1', 'true', 'YES', ' 1 ']) {
      const d = decide(PG, { REQUIRE_POSTGRES: value });
      expect(d.action, value).toBe('fail');
      if (d.action !== 'fail') continue;
      expect(d.message).toContain('REQUIRE_POSTGRES');
      expect(d.message).toContain('PostgreSQL at postgres://postgres@127.0.0.1:1/test');
      expect(d.message).toContain('unreachable (connect ECONNREFUSED 127.0.0.1:1)');
    }
  });

  it('fails on a value it does not understand, present or not: a typo must not mean optional', () => {
    for (const probe of [PG, PRESENT]) {
      const d = decide(probe, { REQUIRE_POSTGRES: 'ture' });
      expect(d).toMatchObject({ action: 'fail' });
      if (d.action === 'fail') expect(d.message).toMatch(/REQUIRE_POSTGRES="ture" is not understood/);
    }
  });
});

describe('probes', () => {
  it('probeReference names the folder and exactly the missing files', () => {
    const dir = tempDir('forecast-probe-');
    try {
      writeFileSync(join(dir, 'MSFT.csv'), 'Date\n');
      expect(probeReference(['MSFT.csv'], dir).missing).toBeUndefined();
      const p = probeReference(['MSFT.csv', 'dtree_model.pkl', 'scaler_ml.pkl'], dir);
      expect(p.variable).toBe('REQUIRE_REFERENCE');
      expect(p.what).toContain(dir);
      expect(p.missing).toBe(`dtree_model.pkl, scaler_ml.pkl not in ${dir}`);
      const absent = join(dir, 'nowhere');
      expect(probeReference(['MSFT.csv'], absent).missing).toBe(`${absent} does not exist`);
      mkdirSync(absent);
      expect(probeReference(['MSFT.csv'], absent).missing).toBe(`MSFT.csv not in ${absent}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('probePostgres names the URL (password hidden) and the connection error', async () => {
    // A port that was just free: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    const p = await probePostgres(`postgres://postgres:secret@127.0.0.1:${port}/test`);
    expect(p.variable).toBe('REQUIRE_POSTGRES');
    expect(p.what).toBe(`PostgreSQL at postgres://postgres:***@127.0.0.1:${port}/test`);
    expect(p.missing).toMatch(new RegExp(`^unreachable \\(.*ECONNREFUSED 127\\.0\\.0\\.1:${port}.*\\)$`));
    expect(`${p.what} ${p.missing}`).not.toContain('secret');
  });
});
