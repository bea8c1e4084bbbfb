import { afterAll, describe } from 'vitest';
import { join } from 'node:path';
import { SqliteHistoryStore } from '../../src/store/sqlite.js';
import { tempDir } from '../serve/helpers/http.js';
import { storeContract } from './store-contract.js';

describe('SqliteHistoryStore', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());
  storeContract(async () => new SqliteHistoryStore({ path: join(tmp.dir, 'nested', 'history.sqlite') }), 'sqlite');
});
