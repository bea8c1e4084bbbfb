/**
 * `skipNullRows`: Yahoo writes `null` in every price and volume cell of a day without data. Such rows
 * are refused by default (with a code a caller can turn into advice) and skipped on request; every
 * other bad row is refused either way.
 */
import { describe, expect, it } from 'vitest';
import { NULL_ROW_CODE } from '../../src/data/csv.js';
import { readBarsCsv } from '../../src/data/index.js';
import { DataError } from '../../src/errors.js';

const YAHOO_HEADER = 'Date,Open,High,Low,Close,Adj Close,Volume';
const yahoo = (...rows: string[]) => [YAHOO_HEADER, ...rows].join('\n') + '\n';
const GOOD_1 = '2018-07-26,110.739998,111.000000,109.500000,109.620003,108.5,31372100';
const GOOD_2 = '2018-07-30,110.180000,110.180000,106.139999,107.680000,107.1,37005300';
const NULLS = '2018-07-27,null,null,null,null,null,null';

function errorOf(read: () => unknown): DataError {
  try {
    read();
  } catch (err) {
    expect(err).toBeInstanceOf(DataError);
    return err as DataError;
  }
  throw new Error('expected a DataError');
}

describe('readBarsCsv: rows of nulls', () => {
  it('refuses a row of nulls by default, naming the line and the first price column, with its own code', () => {
    const err = errorOf(() => readBarsCsv(yahoo(GOOD_1, NULLS, GOOD_2), { numberParsing: 'exact', sourceName: 'msft.csv' }));
    expect(err.message).toBe('msft.csv: line 3, column "Open": value is null (Yahoo writes null for a day without data)');
    expect(err.code).toBe(NULL_ROW_CODE);
    expect(err.location).toEqual({ line: 3, column: 'Open' });
  });

  it('skips rows of nulls in any case, telling each line, and reads the rest as if they were absent', () => {
    const skipped: number[] = [];
    const text = yahoo(GOOD_1, NULLS, '2018-07-28,NULL,Null,nUlL,null,"null",null', GOOD_2);
    const s = readBarsCsv(text, { numberParsing: 'exact', skipNullRows: true, onSkippedRow: (line) => skipped.push(line) });
    expect(skipped).toEqual([3, 4]);
    expect(s).toEqual(readBarsCsv(yahoo(GOOD_1, GOOD_2), { numberParsing: 'exact' }));
  });

  it('skips them in the plain layout too, where other lines take the fast path', () => {
    const plain = 'date,open,high,low,close,volume\n2020-01-02,1,2,0.5,1.5,100\n2020-01-03,null,null,null,null,null\n2020-01-06,1.5,2,1,1.8,200\n';
    const s = readBarsCsv(plain, { numberParsing: 'exact', skipNullRows: true });
    expect(s.date).toEqual(['2020-01-02', '2020-01-06']);
    expect(Array.from(s.close)).toEqual([1.5, 1.8]);
  });

  it('still refuses a row with only some nulls, and a row of nulls with a bad date', () => {
    const partial = errorOf(() => readBarsCsv(yahoo(GOOD_1, '2018-07-27,110,null,109,109,109,100', GOOD_2), { numberParsing: 'exact', skipNullRows: true }));
    expect(partial.message).toMatch(/line 3, column "High": value is null/);
    expect(partial.code).toBe('invalid_data');
    const outOfOrder = errorOf(() => readBarsCsv(yahoo(GOOD_2, NULLS), { numberParsing: 'exact', skipNullRows: true }));
    expect(outOfOrder.message).toMatch(/line 3, column "Date"/);
  });
});
