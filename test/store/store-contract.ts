import { expect, it } from 'vitest';
import type { Bar } from '../../src/data/bars.js';
import type { HistoryStore } from '../../src/store/types.js';
import { generateSyntheticBars } from '../../src/data/index.js';

const makeSeries = (bars: number, seed: number) => generateSyntheticBars({ seed, bars });

const NONE = { defaultVersion: null, shadowVersion: null };

/** Behaviour every HistoryStore must have; `open` gives a fresh store on the same backing data. */
export function storeContract(open: () => Promise<HistoryStore>, name: string): void {
  const awkward = [0.1 + 0.2, 1 / 3, Math.PI * 1e6, 5e-324, Number.MAX_VALUE, 123456.789012345, 2 ** 53 + 2, Number.MIN_VALUE * 3, 1.0000000000000002];

  it(`${name}: a long seed (several insert statements and a remainder) is stored whole, bit for bit`, async () => {
    const a = await open();
    try {
      const seed = makeSeries(64 * 3 + 17, 21);
      expect(await a.ensureModel('long-seed', seed)).toEqual({ version: 1, seeded: true });
      const snap = await a.load('long-seed');
      expect(snap.bars.date).toEqual(seed.date);
      for (const f of ['open', 'high', 'low', 'close', 'volume'] as const) expect(Array.from(snap.bars[f]), f).toEqual(Array.from(seed[f]));
    } finally {
      await a.close();
    }
  });

  it(`${name}: seeds once, and prices round-trip bit for bit`, async () => {
    const a = await open();
    const b = await open();
    try {
      const seed = makeSeries(awkward.length, 3);
      seed.close.set(awkward);
      const [va, vb] = await Promise.all([a.ensureModel('m1', seed), b.ensureModel('m1', seed)]);
      expect(va.version).toBe(1);
      expect(vb.version).toBe(1);
      // Exactly one of the racing starts wrote the seed.
      expect([va.seeded, vb.seeded].sort()).toEqual([false, true]);
      const snap = await b.load('m1');
      expect(snap.version).toBe(1);
      expect(snap.bars.date).toEqual(seed.date);
      for (let i = 0; i < awkward.length; i++) expect(Object.is(snap.bars.close[i], awkward[i])).toBe(true);
      expect(Array.from(snap.bars.open)).toEqual(Array.from(seed.open));
      expect(Array.from(snap.bars.volume)).toEqual(Array.from(seed.volume));
      expect(await a.ensureModel('m1', makeSeries(3, 9))).toEqual({ version: 1, seeded: false });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it(`${name}: merge inserts, keeps same bars, refuses conflicts atomically, replaces on request`, async () => {
    const s = await open();
    try {
      const seed = makeSeries(10, 5);
      await s.ensureModel('m2', seed);
      const stored: Bar = { date: seed.date[9], open: seed.open[9], high: seed.high[9], low: seed.low[9], close: seed.close[9], volume: seed.volume[9] };
      const newBar: Bar = { date: '2030-01-02', open: 1, high: 2, low: 0.5, close: 1.5, volume: 3 };
      const ulp = { ...stored, close: stored.close * (1 + Number.EPSILON) };
      const r1 = await s.merge('m2', [ulp, newBar]);
      expect(r1).toEqual({ version: 2, added: 1, replaced: 0, unchanged: 1 });
      expect((await s.load('m2')).bars.close[9]).toBe(stored.close);
      const changes = await s.changesSince('m2', 1);
      expect(changes).toEqual({ version: 2, routing: NONE, bars: [newBar], deleted: [] });
      // Nothing changed: the routing may be left out (the caller holds it already).
      expect(await s.changesSince('m2', 2)).toMatchObject({ version: 2, bars: [], deleted: [] });
      const other: Bar = { date: '2030-01-03', open: 1, high: 2, low: 0.5, close: 1.5, volume: 3 };
      const conflicting = { ...newBar, close: 1.6 };
      await expect(s.merge('m2', [other, conflicting])).rejects.toMatchObject({ status: 409, code: 'conflict', details: { row: 1, date: newBar.date, field: 'close', stored: 1.5, submitted: 1.6 } });
      expect(await s.version('m2')).toBe(2);
      expect((await s.load('m2')).bars.date).not.toContain(other.date);
      const r2 = await s.merge('m2', [conflicting], { replace: true });
      expect(r2).toEqual({ version: 3, added: 0, replaced: 1, unchanged: 0 });
      expect(await s.changesSince('m2', 2)).toEqual({ version: 3, routing: NONE, bars: [conflicting], deleted: [] });
      const early: Bar = { date: '1999-01-01', open: 1, high: 1, low: 1, close: 1, volume: 0 };
      await s.merge('m2', [early]);
      const snap = await s.load('m2');
      expect(snap.bars.date[0]).toBe('1999-01-01');
      expect(snap.bars.date.length).toBe(12);
      await expect(s.merge('nobody', [early])).rejects.toMatchObject({ status: 404 });
    } finally {
      await s.close();
    }
  });

  it(`${name}: deletes a bar for every reader: a tombstone in the changes, stored again later as a new bar`, async () => {
    const a = await open();
    const b = await open();
    try {
      const seed = makeSeries(8, 12);
      await a.ensureModel('m4', seed);
      const bar3: Bar = { date: seed.date[3], open: seed.open[3], high: seed.high[3], low: seed.low[3], close: seed.close[3], volume: seed.volume[3] };
      // Another connection, another process: it learns of the deletion from its catch-up read alone.
      expect(await b.changesSince('m4', 0)).toMatchObject({ version: 1 });
      expect(await a.deleteBar('m4', bar3.date)).toEqual({ version: 2, deleted: bar3 });
      expect(await b.changesSince('m4', 1)).toEqual({ version: 2, routing: NONE, bars: [], deleted: [bar3.date] });
      expect((await b.load('m4')).bars.date).toEqual(seed.date.filter((_, i) => i !== 3));
      // Nothing to delete: nothing written, the version stays.
      expect(await b.deleteBar('m4', bar3.date)).toEqual({ version: 2, deleted: null });
      expect(await b.deleteBar('m4', '1990-01-01')).toEqual({ version: 2, deleted: null });
      await expect(a.deleteBar('nobody', bar3.date)).rejects.toMatchObject({ status: 404, code: 'unknown_model' });
      // Stored again (with other values: the old bar is gone, so no conflict), then deleted again.
      const again = { ...bar3, close: bar3.close * 2, high: bar3.high * 2 };
      expect(await b.merge('m4', [again])).toMatchObject({ version: 3, added: 1 });
      // A reader behind both writes gets the tombstone and the bar: applied in that order, the bar stays.
      expect(await a.changesSince('m4', 1)).toEqual({ version: 3, routing: NONE, bars: [again], deleted: [bar3.date] });
      expect(await a.changesSince('m4', 2)).toEqual({ version: 3, routing: NONE, bars: [again], deleted: [] });
      expect(await a.deleteBar('m4', bar3.date)).toEqual({ version: 4, deleted: again });
      expect(await b.changesSince('m4', 3)).toEqual({ version: 4, routing: NONE, bars: [], deleted: [bar3.date] });
      expect((await a.load('m4')).bars.date).toHaveLength(7);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it(`${name}: stores the routing beside the history: one write, seen by every reader's catch-up`, async () => {
    const a = await open();
    const b = await open();
    try {
      await a.ensureModel('m5', makeSeries(5, 13));
      expect((await b.load('m5')).routing).toEqual(NONE);
      expect(await a.setRouting('m5', { defaultVersion: '2' })).toEqual({ version: 2, routing: { defaultVersion: '2', shadowVersion: null } });
      expect(await b.changesSince('m5', 1)).toEqual({ version: 2, routing: { defaultVersion: '2', shadowVersion: null }, bars: [], deleted: [] });
      // A field left out keeps its value; null clears.
      expect((await b.setRouting('m5', { shadowVersion: '3' })).routing).toEqual({ defaultVersion: '2', shadowVersion: '3' });
      expect((await a.setRouting('m5', { defaultVersion: null })).routing).toEqual({ defaultVersion: null, shadowVersion: '3' });
      expect(await a.load('m5')).toMatchObject({ version: 4, routing: { defaultVersion: null, shadowVersion: '3' } });
      await expect(a.setRouting('nobody', { defaultVersion: '1' })).rejects.toMatchObject({ status: 404, code: 'unknown_model' });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it(`${name}: logs forecasts once, scores them once, and compacts old rows once however many processes race`, async () => {
    const a = await open();
    const b = await open();
    try {
      await a.ensureModel('m6', makeSeries(5, 14));
      const row = (date: string, yPred: number) => ({ model: 'm6', version: '1', date, yPred, provisional: false, featureSet: 'causal', requestId: `r-${date}`, madeAt: '2030-01-01T00:00:00.000Z' });
      const dates = ['2030-01-01', '2030-01-02', '2030-01-03', '2030-01-04'];
      const [na, nb] = await Promise.all([a.writeForecastLog(dates.map((d) => row(d, 1.01)), []), b.writeForecastLog(dates.map((d) => row(d, 9)), [])]);
      expect(na.logged + nb.logged).toBe(4);
      await b.countServed([{ model: 'm6', version: '1', date: dates[0], count: 3 }, { model: 'm6', version: '1', date: '2099-01-01', count: 5 }]);
      expect(await a.unscored('m6', 10)).toEqual(dates.map((date) => ({ version: '1', date })));
      const outcome = (date: string) => ({ model: 'm6', version: '1', date, yTrue: 1.02, yFinal: 1.01, scoredAt: '2030-01-02T00:00:00.000Z' });
      const [sa, sb] = await Promise.all([a.writeForecastLog([], dates.slice(0, 3).map(outcome)), b.writeForecastLog([], dates.slice(0, 3).map(outcome))]);
      expect(sa.scored + sb.scored).toBe(3);
      // Logged and scored in one call: the row a later bar settles and the new newest one.
      expect(await a.writeForecastLog([row('2030-01-05', 1)], [outcome(dates[3])])).toEqual({ logged: 1, scored: 1 });
      expect(await b.writeForecastLog([row('2030-01-05', 2)], [outcome(dates[3])])).toEqual({ logged: 0, scored: 0 });
      const log = await a.forecastLog('m6', '1', 10);
      expect(log.map((r) => r.date)).toEqual([...dates, '2030-01-05']);
      expect(await b.unscored('m6', 10)).toEqual([{ version: '1', date: '2030-01-05' }]);
      expect(log[0]).toMatchObject({ served: 4, yTrue: 1.02, yFinal: 1.01, requestId: 'r-2030-01-01', provisional: false, scoredAt: '2030-01-02T00:00:00.000Z' });
      expect(new Set(log.slice(0, 4).map((r) => r.yPred)).size).toBe(1);
      expect((await a.forecastLog('m6', '1', 2)).map((r) => r.date)).toEqual([dates[3], '2030-01-05']);
      expect((await a.forecastLog('m6', '1', 10, dates[2])).map((r) => r.date)).toEqual(dates.slice(0, 2));
      // Two processes compact the same two rows: one does, the other is refused and adds nothing.
      const merge = (stored: { rows: number } | null) => ({ rows: (stored?.rows ?? 0) + 2 });
      const done = await Promise.all([a.compactForecastLog('m6', '1', dates[1], 2, merge), b.compactForecastLog('m6', '1', dates[1], 2, merge)]);
      expect(done.sort()).toEqual([false, true]);
      expect(await b.compactedForecasts('m6', '1')).toEqual({ rows: 2 });
      expect(await a.compactedForecasts('m6', '2')).toBeNull();
      expect((await b.forecastLog('m6', '1', 10)).map((r) => r.date)).toEqual([...dates.slice(2), '2030-01-05']);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it(`${name}: concurrent merges from several connections lose nothing and apply nothing twice`, async () => {
    const stores = await Promise.all([open(), open(), open()]);
    try {
      await stores[0].ensureModel('m3', makeSeries(5, 6));
      const bars: Bar[] = Array.from({ length: 30 }, (_, k) => ({ date: `2031-01-${String(k + 1).padStart(2, '0')}`, open: 1, high: 2, low: 1, close: 1 + k, volume: k }));
      const results = await Promise.all(bars.flatMap((b, k) => stores.map((s) => s.merge('m3', [b]).then((r) => r.added))));
      expect(results.reduce((a, b) => a + b, 0)).toBe(30);
      const snap = await stores[1].load('m3');
      expect(snap.bars.date.length).toBe(35);
      expect(snap.version).toBe(31);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
}
