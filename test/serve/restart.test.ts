import { afterAll, describe, expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { call, freePort, KEY, tempDir } from './helpers/http.js';
import { spawnServer } from './helpers/process.js';
import { makeSeries, nextWeekday, writeStubBundle } from './helpers/stub-bundle.js';

const LOADER = resolve(import.meta.dirname, 'helpers/stub-bundle.ts');

describe('restart keeps acknowledged bars', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('bars acknowledged before a SIGKILL are there after a restart, and the forecast is the same', async () => {
    const bundleDir = writeStubBundle(join(tmp.dir, 'bundle'), { name: 'acme', version: '1', bars: 30, seed: 4 });
    const options = { host: '127.0.0.1', workers: 1, apiKeys: [KEY], bundleDir, bundleLoaderModule: LOADER, sqlitePath: join(tmp.dir, 'h.sqlite'), logger: false as const };
    const history = makeSeries(30, 4);
    const first = await spawnServer({ ...options, port: await freePort() });
    let date = history.date[29];
    const rows: unknown[][] = [];
    for (let k = 0; k < 5; k++) {
      date = nextWeekday(date);
      rows.push([date, 100 + k, 102 + k, 99 + k, 101.123456789 + k, 1000 + k]);
      const r = await call(first.url, '/forecast', { body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [rows[k]] } });
      expect(r.status).toBe(200);
    }
    const before = await call(first.url, '/forecast', { body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: rows } });
    await first.stop('SIGKILL');

    const second = await spawnServer({ ...options, port: await freePort() });
    const after = await call(second.url, '/forecast', { body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: rows } });
    expect(after.status).toBe(200);
    expect(after.body.history).toMatchObject({ bars: 35, added: 0, unchanged: 5, version: before.body.history.version });
    expect(after.body.y_pred).toEqual(before.body.y_pred);
    // The seed is not applied twice.
    const seeded = await call(second.url, '/forecast', { body: seriesToSplitJson(history, { start: 0, end: 30 }) });
    expect(seeded.body.history.unchanged).toBe(30);
    expect(await second.stop('SIGTERM')).toBe(0);
  });
});
