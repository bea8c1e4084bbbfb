import { describe, expect, it } from 'vitest';
import { generateSyntheticBars, readBarsCsv, seriesToBars, validateBars, writeBarsCsv } from '../../src/data/index.js';
import { parseIsoDay, weekday } from '../../src/data/dates.js';

describe('generateSyntheticBars', () => {
  it('is deterministic: equal seeds give equal bits, different seeds different histories', () => {
    const a = generateSyntheticBars({ seed: 42, bars: 2000 });
    const b = generateSyntheticBars({ seed: 42, bars: 2000 });
    const c = generateSyntheticBars({ seed: 43, bars: 2000 });
    expect(b).toEqual(a);
    expect(Array.from(c.close)).not.toEqual(Array.from(a.close));
    // A longer history starts with the shorter one.
    const longer = generateSyntheticBars({ seed: 42, bars: 2500 });
    expect(Array.from(longer.close.subarray(0, 2000))).toEqual(Array.from(a.close));
  });

  it('gives the same numbers on every machine (only IEEE arithmetic): a fixed fingerprint', () => {
    const s = generateSyntheticBars({ seed: 1, bars: 1000, startDate: '2010-01-01', startPrice: 50 });
    expect(s.date[0]).toBe('2010-01-01');
    expect(s.date[999]).toBe('2013-10-31');
    expect([s.open[0], s.high[0], s.low[0], s.close[0], s.volume[0]]).toEqual(FIRST_BAR);
    expect(s.close[999]).toBe(LAST_CLOSE);
  });

  it('produces valid, realistic OHLC bars on business days', () => {
    for (const seed of [1, 2, 3, -5, 2 ** 40]) {
      const s = generateSyntheticBars({ seed, bars: 5000, startDate: '2001-03-03', startPrice: 20 });
      expect(() => validateBars(seriesToBars(s))).not.toThrow();
      let previousDay = -Infinity;
      const returns: number[] = [];
      const broken: string[] = [];
      for (let i = 0; i < 5000; i++) {
        const [o, h, l, c, v] = [s.open[i], s.high[i], s.low[i], s.close[i], s.volume[i]];
        const day = parseIsoDay(s.date[i]);
        const checks: [string, boolean][] = [
          ['high >= max(open, close)', h >= Math.max(o, c)],
          ['low <= min(open, close)', l <= Math.min(o, c)],
          ['high > low > 0', h > l && l > 0],
          ['6 decimals', [o, h, l, c].every((x) => Math.round(x * 1e6) / 1e6 === x)],
          ['integer volume > 0', Number.isInteger(v) && v > 0],
          ['weekday', weekday(day) !== 0 && weekday(day) !== 6],
          ['increasing dates', day > previousDay],
        ];
        for (const [what, ok] of checks) if (!ok) broken.push(`seed ${seed} bar ${i}: ${what}`);
        previousDay = day;
        if (i > 0) returns.push(c / s.close[i - 1] - 1);
      }
      expect(broken).toEqual([]);
      expect(s.date[0]).toBe('2001-03-05'); // a Saturday start moves to Monday
      // Daily volatility near 1.5 %, and clustered: |r| is autocorrelated.
      const abs = returns.map(Math.abs);
      const sd = Math.sqrt(returns.reduce((a, r) => a + r * r, 0) / returns.length);
      expect(sd).toBeGreaterThan(0.008);
      expect(sd).toBeLessThan(0.03);
      const m = abs.reduce((a, x) => a + x, 0) / abs.length;
      let num = 0;
      let den = 0;
      for (let i = 1; i < abs.length; i++) num += (abs[i] - m) * (abs[i - 1] - m);
      for (const x of abs) den += (x - m) * (x - m);
      expect(num / den).toBeGreaterThan(0.02);
    }
  });

  it('round-trips through CSV', () => {
    const s = generateSyntheticBars({ seed: 9, bars: 500 });
    expect(readBarsCsv(writeBarsCsv(s), { numberParsing: 'exact' })).toEqual(s);
  });

  it('refuses bad options', () => {
    expect(() => generateSyntheticBars({ seed: 1.5, bars: 3 })).toThrow(/seed/);
    expect(() => generateSyntheticBars({ seed: 1, bars: -1 })).toThrow(/bars/);
    expect(() => generateSyntheticBars({ seed: 1, bars: 3, startDate: '2020-02-30' })).toThrow(/startDate/);
    expect(() => generateSyntheticBars({ seed: 1, bars: 3, startPrice: 0 })).toThrow(/startPrice/);
    expect(generateSyntheticBars({ seed: 1, bars: 0 }).date).toEqual([]);
  });
});

const FIRST_BAR = [50.221624, 51.570627, 50.091956, 51.106075, 10536952];
const LAST_CLOSE = 42.119359;
