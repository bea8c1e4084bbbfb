/**
 * The SQLite store when it cannot serve now: the file's write lock held by another process past the
 * busy timeout, or the store closed under a late request. Such calls are 503 store_unavailable, not
 * 500s, and bounded by the busy timeout; reads keep working beside a writer (WAL); a real conflict
 * stays a 409.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { Bar } from '../../src/data/bars.js';
import { generateSyntheticBars } from '../../src/data/index.js';
import { StoreUnavailableError } from '../../src/errors.js';
import { SqliteHistoryStore, sqliteUnavailable } from '../../src/store/sqlite.js';
import { tempDir } from '../serve/helpers/http.js';

const seed = generateSyntheticBars({ seed: 4, bars: 30 });
const bar: Bar = { date: '2031-01-02', open: 1, high: 2, low: 0.5, close: 1.5, volume: 3 };
const BUSY_MS = 200;

describe('SqliteHistoryStore when it cannot serve', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('a write lock held past the busy timeout is a 503 within that timeout; reads go on; the write succeeds once the lock is gone', async () => {
    const path = join(tmp.dir, 'locked.sqlite');
    const s = new SqliteHistoryStore({ path, busyTimeoutMs: BUSY_MS });
    await s.ensureModel('m', seed);
    const other = new Database(path);
    try {
      other.exec('BEGIN IMMEDIATE'); // another process mid-write, stuck
      for (const [name, call] of [
        ['merge', () => s.merge('m', [bar])],
        ['ensureModel', () => s.ensureModel('m-new', seed)],
      ] as const) {
        const t0 = performance.now();
        const err = await call().then(
          () => null,
          (e: unknown) => e,
        );
        const ms = performance.now() - t0;
        expect(err, name).toBeInstanceOf(StoreUnavailableError);
        expect(err).toMatchObject({ status: 503, code: 'store_unavailable', details: { reason: 'sqlite_busy' } });
        expect(ms, `${name} took ${Math.round(ms)} ms`).toBeGreaterThanOrEqual(BUSY_MS * 0.8);
        expect(ms, `${name} took ${Math.round(ms)} ms`).toBeLessThan(BUSY_MS + 2000);
      }
      expect(await s.version('m')).toBe(1);
      expect((await s.load('m')).bars.date.length).toBe(30);
      expect(await s.changesSince('m', 0)).toMatchObject({ version: 1 });
      await s.ping();
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    expect(await s.merge('m', [bar])).toMatchObject({ version: 2, added: 1 });
    await expect(s.merge('m', [{ ...bar, close: 1.6 }])).rejects.toMatchObject({ status: 409, code: 'conflict' });
    await s.close();
  });

  it('opening a file whose write lock is held fails as unavailable, not with a raw SQLite error', () => {
    const path = join(tmp.dir, 'locked-at-open.sqlite');
    new SqliteHistoryStore({ path }).close();
    const other = new Database(path);
    try {
      other.exec('BEGIN IMMEDIATE');
      expect(() => new SqliteHistoryStore({ path, busyTimeoutMs: BUSY_MS })).toThrow(StoreUnavailableError);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    new SqliteHistoryStore({ path, busyTimeoutMs: BUSY_MS }).close();
  });

  it('a call after close() is a 503, not a 500', async () => {
    const s = new SqliteHistoryStore({ path: ':memory:' });
    await s.ensureModel('m', seed);
    await s.close();
    await expect(s.version('m')).rejects.toMatchObject({ status: 503, code: 'store_unavailable', details: { reason: 'closed' } });
    await expect(s.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('only "not now" errors are mapped', () => {
    const sqlite = (code: string) => Object.assign(new Error(code), { code });
    for (const c of ['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_LOCKED', 'SQLITE_IOERR_FSYNC', 'SQLITE_CANTOPEN', 'SQLITE_FULL'])
      expect(sqliteUnavailable(sqlite(c)), c).toBeInstanceOf(StoreUnavailableError);
    for (const c of ['SQLITE_CONSTRAINT_PRIMARYKEY', 'SQLITE_ERROR', 'SQLITE_MISMATCH', 'SQLITE_CORRUPT']) expect(sqliteUnavailable(sqlite(c)), c).toBeNull();
    expect(sqliteUnavailable(new TypeError('x is not a function'))).toBeNull();
  });
});
