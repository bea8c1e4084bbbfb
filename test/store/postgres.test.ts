import { afterAll, beforeAll } from 'vitest';
import { PostgresHistoryStore } from '../../src/store/postgres.js';
import { storeContract } from './store-contract.js';
import { needsPostgres, PG_URL, uniqueSchema } from './pg-helper.js';

const withPostgres = await needsPostgres();

withPostgres.describe('PostgresHistoryStore', () => {
  const schema = uniqueSchema('store');
  beforeAll(async () => undefined);
  afterAll(async () => {
    const s = new PostgresHistoryStore({ connectionString: PG_URL, schema });
    await s.dropSchema();
    await s.close();
  });
  storeContract(async () => {
    const s = new PostgresHistoryStore({ connectionString: PG_URL, schema, maxConnections: 4 });
    await s.init();
    return s;
  }, 'postgres');
});
