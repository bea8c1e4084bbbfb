import { afterAll, describe } from 'vitest';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect, it } from 'vitest';
import { CHANGED_BARS_SQL, SqliteHistoryStore } from '../../src/store/sqlite.js';
import { tempDir } from '../serve/helpers/http.js';
import { storeContract } from './store-contract.js';

describe('SqliteHistoryStore', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());
  storeContract(async () => new SqliteHistoryStore({ path: join(tmp.dir, 'nested', 'history.sqlite') }), 'sqlite');
});

describe('SqliteHistoryStore reads', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('finds the bars changed since a revision through the revision index, not a scan of every bar', async () => {
    const path = join(tmp.dir, 'plan.sqlite');
    // The schema (and its indexes) exists once a store has opened the file.
    await new SqliteHistoryStore({ path }).close();
    const db = new Database(path, { readonly: true });
    try {
      const plan = db.prepare(`EXPLAIN QUERY PLAN ${CHANGED_BARS_SQL}`).all('m', 1) as { detail: string }[];
      expect(plan.map((p) => p.detail).join('; ')).toMatch(/USING INDEX bars_by_rev \(model=\? AND rev>\?\)/);
    } finally {
      db.close();
    }
  });
});
