import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { nextWeekday, tinySeries, writeTinyBundle, type TinySpec } from './helpers/bundles.js';
import { call, KEY, tempDir } from './helpers/http.js';
import { spawnServer } from './helpers/process.js';

const SPEC: TinySpec = { name: 'acme', version: '1', seed: 4 };

describe('restart keeps acknowledged bars', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('bars acknowledged before a SIGKILL are there after a restart, and the forecast is the same', async () => {
    const bundleDir = await writeTinyBundle(join(tmp.dir, 'bundle'), SPEC);
    // port 0: each process listens on a port the OS picks (and reports), never a guessed free one.
    const options = { host: '127.0.0.1', port: 0, workers: 1, apiKeys: [KEY], bundleDir, sqlitePath: join(tmp.dir, 'h.sqlite'), logger: false as const };
    const history = tinySeries(SPEC);
    const n = history.date.length;
    const first = await spawnServer(options);
    let date = history.date[n - 1];
    const rows: unknown[][] = [];
    for (let k = 0; k < 5; k++) {
      date = nextWeekday(date);
      rows.push([date, 100 + k, 102 + k, 99 + k, 101.123456789 + k, 1000 + k]);
      const r = await call(first.url, '/forecast', { body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [rows[k]] } });
      expect(r.status).toBe(200);
    }
    const before = await call(first.url, '/forecast', { body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: rows } });
    await first.stop('SIGKILL');

    const second = await spawnServer(options);
    const after = await call(second.url, '/forecast', { body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: rows } });
    expect(after.status).toBe(200);
    expect(after.body.history).toMatchObject({ bars: n + 5, added: 0, unchanged: 5, version: before.body.history.version });
    expect(after.body.y_pred).toEqual(before.body.y_pred);
    expect(after.body.y_pred.every((y: number | null) => typeof y === 'number')).toBe(true);
    // The seed is not applied twice.
    const seeded = await call(second.url, '/forecast', { body: seriesToSplitJson(history, { start: 0, end: n }) });
    expect(seeded.body.history.unchanged).toBe(n);
    expect(await second.stop('SIGTERM')).toBe(0);
  });
});
