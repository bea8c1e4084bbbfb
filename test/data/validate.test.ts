import { describe, expect, it } from 'vitest';
import { validateBar, validateBars } from '../../src/data/index.js';
import { DataError } from '../../src/errors.js';

const bar = (date: string, extra: Record<string, unknown> = {}) => ({ date, open: 10, high: 11, low: 9, close: 10.5, volume: 1000, ...extra });

function errorOf(run: () => unknown): DataError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(DataError);
    return err as DataError;
  }
  throw new Error('expected a DataError');
}

describe('validateBars (bars that arrive as JSON)', () => {
  it('returns valid bars typed, and accepts a close outside [low, high] (Yahoo adjusted close, FEATURES.md §1)', () => {
    const rows = [bar('2020-01-02'), bar('2020-01-03', { close: 8 })];
    expect(validateBars(rows, { previousDate: '2019-12-31' })).toEqual(rows);
    expect(validateBars([])).toEqual([]);
  });

  const cases: { name: string; rows: unknown[]; options?: Parameters<typeof validateBars>[1]; row: number; field: string; message: RegExp }[] = [
    { name: 'not an object', rows: [bar('2020-01-02'), 5], row: 1, field: 'date', message: /must be an object/ },
    { name: 'missing field', rows: [{ date: '2020-01-02', open: 1, high: 1, low: 1, close: 1 }], row: 0, field: 'volume', message: /volume is missing/ },
    { name: 'null value', rows: [bar('2020-01-02', { high: null })], row: 0, field: 'high', message: /high is null/ },
    { name: 'string number', rows: [bar('2020-01-02', { open: '10' })], row: 0, field: 'open', message: /open must be a number, got "10"/ },
    { name: 'date not a string', rows: [bar('2020-01-02', { date: 20200102 })], row: 0, field: 'date', message: /YYYY-MM-DD string/ },
    { name: 'bad date', rows: [bar('2020-1-2')], row: 0, field: 'date', message: /not a valid YYYY-MM-DD date/ },
    { name: 'non-positive price', rows: [bar('2020-01-02', { close: -1 })], row: 0, field: 'close', message: /close must be positive/ },
    { name: 'non-finite price', rows: [bar('2020-01-02', { open: Infinity })], row: 0, field: 'open', message: /finite/ },
    { name: 'high below low', rows: [bar('2020-01-02', { high: 8 })], row: 0, field: 'high', message: /high 8 is below low 9/ },
    { name: 'negative volume', rows: [bar('2020-01-02', { volume: -1 })], row: 0, field: 'volume', message: /not be negative/ },
    { name: 'repeated date', rows: [bar('2020-01-02'), bar('2020-01-02')], row: 1, field: 'date', message: /repeats/ },
    { name: 'out of order', rows: [bar('2020-01-03'), bar('2020-01-02')], row: 1, field: 'date', message: /out of order/ },
    { name: 'not after the stored history', rows: [bar('2020-01-02')], options: { previousDate: '2020-01-05' }, row: 0, field: 'date', message: /out of order/ },
    { name: 'row numbers offset', rows: [bar('2020-01-02', { low: 0 })], options: { firstRow: 7 }, row: 7, field: 'low', message: /positive/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const err = errorOf(() => validateBars(c.rows, c.options));
      expect(err.location).toEqual({ row: c.row, field: c.field });
      expect(err.message).toMatch(new RegExp(`^row ${c.row}, field "${c.field}": `));
      expect(err.message).toMatch(c.message);
    });
  }

  it('validateBar names the field', () => {
    const err = errorOf(() => validateBar(bar('2020-01-02', { volume: Number.NaN })));
    expect(err.location).toEqual({ field: 'volume' });
  });
});
