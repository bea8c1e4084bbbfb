import { afterAll, beforeAll, describe } from 'vitest';
import { PostgresHistoryStore } from '../../src/store/postgres.js';
import { storeContract } from './store-contract.js';
import { PG_URL, postgresAvailable, uniqueSchema } from './pg-helper.js';

const available = await postgresAvailable();

describe.skipIf(!available)('PostgresHistoryStore', () => {
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
