/**
 * The in-place decimal reader must give `Number(text)` to the bit whenever it answers, and answer
 * for the short decimals real prices are; the CSV reader must read a canonical file (its fast path)
 * exactly as it reads the same bars in another column order (the general path), errors included.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fastDecimal } from '../../src/data/fast-decimal.js';
import { readBarsCsv } from '../../src/data/csv.js';

const read = (s: string) => fastDecimal(`#${s}#`, 1, s.length + 1);

const digitsArb = (min: number, max: number) => fc.stringMatching(new RegExp(`^[0-9]{${min},${max}}$`));
/** Text of the plain decimal grammar, short and long, with and without exponents. */
const decimalArb = fc
  .tuple(fc.constantFrom('', '+', '-'), digitsArb(0, 20), fc.boolean(), digitsArb(0, 20), fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), digitsArb(1, 4))))
  .map(([sign, int, point, frac, exp]) => `${sign}${int}${point ? '.' : ''}${point ? frac : ''}${exp ? exp.join('') : ''}`)
  .filter((s) => /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(s));

describe('fastDecimal', () => {
  it('equals Number(text) to the bit on the text of any double', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        const s = String(x);
        const y = read(s);
        return Number.isNaN(y) || Object.is(y, Number(s));
      }),
      { numRuns: 20_000 },
    );
  });

  it('equals Number(text) to the bit on any plain decimal it answers for', () => {
    fc.assert(
      fc.property(decimalArb, (s) => {
        const y = read(s);
        return Number.isNaN(y) || Object.is(y, Number(s));
      }),
      { numRuns: 20_000 },
    );
  });

  it('answers for prices and volumes as markets quote them', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 ** 9 }), fc.integer({ min: 0, max: 6 }), (units, places) => {
        const s = (units / 10 ** places).toFixed(places);
        return Object.is(read(s), Number(s));
      }),
    );
    for (const s of ['101.886823', '3669971', '0.5', '-0', '.5', '5.', '1e5', '2.5E-3', '+7']) expect(Object.is(read(s), Number(s)), s).toBe(true);
  });

  it('refuses (NaN) whatever is not a plain decimal, leaving it to the general parser', () => {
    for (const s of ['', '.', '+', '-', 'e5', '1e', '1e+', '0x10', 'Infinity', 'NaN', ' 1', '1 ', '1,5', '1..2', '--1', '1e5.5', 'null', '١٢'])
      expect(read(s), JSON.stringify(s)).toBeNaN();
    fc.assert(
      fc.property(fc.string(), (s) => {
        const y = read(s);
        return Number.isNaN(y) || (/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(s) && Object.is(y, Number(s)));
      }),
      { numRuns: 20_000 },
    );
  });
});

describe('readBarsCsv fast path', () => {
  const value = fc.oneof(fc.double({ min: 1e-6, max: 1e50, noNaN: true }).map(String), fc.integer({ min: 1, max: 10 ** 7 }).map((k) => (k / 100).toFixed(2)), fc.constantFrom('0', '-1', 'x', '', 'null', '1e999', ' 5'));
  const rowArb = fc.tuple(fc.integer({ min: 0, max: 3 }), value, value, value, value, value);

  /** The same rows as canonical CSV and with the columns reordered (which the fast path does not take). */
  function bothLayouts(rows: [number, ...string[]][]): [string, string] {
    let day = Date.UTC(2000, 0, 1);
    const lines = rows.map(([step, ...v]) => {
      day += step * 86_400_000;
      return [new Date(day).toISOString().slice(0, 10), ...v];
    });
    const canonical = ['date,open,high,low,close,volume', ...lines.map((l) => l.join(','))].join('\n');
    const reordered = ['volume,close,low,high,open,date', ...lines.map((l) => [l[5], l[4], l[3], l[2], l[1], l[0]].join(','))].join('\n');
    return [canonical, reordered];
  }
  const outcome = (text: string) => {
    try {
      const s = readBarsCsv(text, { numberParsing: 'exact' });
      return { dates: s.date, values: [...s.open, ...s.high, ...s.low, ...s.close, ...s.volume].map((x) => Object.is(x, -0) ? '-0' : x) };
    } catch (err) {
      // The message names the column as the header spells it; the line and the problem must agree.
      return { error: (err as Error).message.replace(/column "[a-z]+"/, 'column') };
    }
  };

  it('reads a canonical file exactly as the general path reads the same bars, errors included', () => {
    fc.assert(
      fc.property(fc.array(rowArb, { minLength: 1, maxLength: 12 }), (rows) => {
        const [canonical, reordered] = bothLayouts(rows as [number, ...string[]][]);
        expect(outcome(canonical)).toEqual(outcome(reordered));
      }),
      { numRuns: 2_000 },
    );
  });
});
