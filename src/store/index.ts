import type { DatabaseTimeouts } from '../config.js';
import { SqliteHistoryStore } from './sqlite.js';
import type { HistoryStore } from './types.js';

export type { BarConflict, HistoryChanges, HistorySnapshot, HistoryStore, MergeOptions, MergeResult, SeedResult } from './types.js';
export { SAME_VALUE_RELATIVE_TOLERANCE, barDifference, identicalBar, planMerge, sameBar, sameValue } from './same-bar.js';
export { SqliteHistoryStore } from './sqlite.js';
// PostgresHistoryStore lives in ./postgres.js, loaded only when DATABASE_URL names a database: `pg`
// costs an embedded-SQLite process ~65 ms of start-up and ~8 MiB.
export type { StoreFailureReason } from './postgres.js';

export interface StoreSelection {
  /** PostgreSQL when set (shared by replicas), else SQLite. */
  databaseUrl?: string | null;
  databaseSchema?: string;
  sqlitePath?: string;
  /** PostgreSQL connect, query and statement limits and pool size (defaults: `DEFAULT_CONFIG.database`). */
  database?: Partial<DatabaseTimeouts>;
}

/** The store the configuration names: PostgreSQL when DATABASE_URL is set, else the embedded SQLite file. */
export async function openHistoryStore(sel: StoreSelection): Promise<HistoryStore> {
  if (sel.databaseUrl) {
    const { PostgresHistoryStore } = await import('./postgres.js');
    const store = new PostgresHistoryStore({ connectionString: sel.databaseUrl, schema: sel.databaseSchema, timeouts: sel.database });
    try {
      await store.init();
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
    return store;
  }
  return new SqliteHistoryStore({ path: sel.sqlitePath ?? '.data/history.sqlite' });
}
