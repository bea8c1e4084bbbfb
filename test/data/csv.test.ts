import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSyntheticBars, parseLegacyFloat, readBarsCsv, readBarsCsvFile, writeBarsCsv } from '../../src/data/index.js';
import { DataError } from '../../src/errors.js';

const YAHOO_HEADER = 'Date,Open,High,Low,Close,Adj Close,Volume';
const yahoo = (...rows: string[]) => [YAHOO_HEADER, ...rows].join('\n') + '\n';
const GOOD_1 = '2018-07-26,110.739998,111.000000,109.500000,109.620003,108.5,31372100';
const GOOD_2 = '2018-07-27,110.180000,110.180000,106.139999,107.680000,107.1,37005300';

/** The DataError a reader throws on `text`. */
function errorOf(text: string): DataError {
  try {
    readBarsCsv(text, { numberParsing: 'legacy', sourceName: 'bars.csv' });
  } catch (err) {
    expect(err).toBeInstanceOf(DataError);
    return err as DataError;
  }
  throw new Error('expected a DataError');
}

describe('readBarsCsv', () => {
  it("reads Yahoo CSV: Close is dropped and Adj Close becomes close (FEATURES.md §1)", () => {
    const s = readBarsCsv(yahoo(GOOD_1, GOOD_2), { numberParsing: 'exact' });
    expect(s.date).toEqual(['2018-07-26', '2018-07-27']);
    expect(Array.from(s.open)).toEqual([110.739998, 110.18]);
    expect(Array.from(s.high)).toEqual([111, 110.18]);
    expect(Array.from(s.low)).toEqual([109.5, 106.139999]);
    expect(Array.from(s.close)).toEqual([108.5, 107.1]);
    expect(Array.from(s.volume)).toEqual([31372100, 37005300]);
  });

  it('reads plain CSV with any header case and column order, CRLF, a BOM, blank lines and extra columns', () => {
    const text = '\ufeffVOLUME,close,Date,low,High,open,note\r\n10,2.5,2020-01-02,2,3,2.2,x\r\n\r\n20,2.6,2020-01-03,2.1,2.9,2.5,y\r\n';
    const s = readBarsCsv(text, { numberParsing: 'exact' });
    expect(s.date).toEqual(['2020-01-02', '2020-01-03']);
    expect(Array.from(s.close)).toEqual([2.5, 2.6]);
    expect(Array.from(s.open)).toEqual([2.2, 2.5]);
    expect(Array.from(s.volume)).toEqual([10, 20]);
  });

  it('parses numbers the legacy way (pandas, FEATURES.md §3b.1) or exactly, as asked', () => {
    // 0.105035 is one of MSFT.csv's prices that the two parsers read differently.
    const text = 'date,open,high,low,close,volume\n1986-03-20,0.105035,0.2,0.1,0.105035,5\n';
    const legacy = readBarsCsv(text, { numberParsing: 'legacy' });
    const exact = readBarsCsv(text, { numberParsing: 'exact' });
    expect(legacy.open[0]).toBe(parseLegacyFloat('0.105035'));
    expect(exact.open[0]).toBe(0.105035);
    expect(legacy.open[0]).not.toBe(exact.open[0]);
  });

  it('writeBarsCsv prints shortest round-trip numbers that read back bit for bit with exact parsing', () => {
    const series = generateSyntheticBars({ seed: 7, bars: 300 });
    // Values with many digits too: a legacy-parsed MSFT-like price.
    series.close[3] = parseLegacyFloat('0.105035');
    const text = writeBarsCsv(series);
    expect(text.split('\n')[0]).toBe('date,open,high,low,close,volume');
    expect(text.split('\n')[4]).toContain(`,${String(series.close[3])},`);
    const back = readBarsCsv(text, { numberParsing: 'exact' });
    expect(back).toEqual(series);
  });

  it('readBarsCsvFile reads a file and names it in errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bars-'));
    const good = join(dir, 'good.csv');
    const bad = join(dir, 'bad.csv');
    writeFileSync(good, yahoo(GOOD_1, GOOD_2));
    writeFileSync(bad, yahoo(GOOD_1, '2018-07-27,110.18,110.18,106.13,107.68,107.1,-5'));
    expect((await readBarsCsvFile(good, { numberParsing: 'legacy' })).date.length).toBe(2);
    await expect(readBarsCsvFile(bad, { numberParsing: 'legacy' })).rejects.toThrow(/^bad\.csv: line 3, column "Volume"/);
  });
});

describe('readBarsCsv refuses malformed data with the 1-based line and the column', () => {
  const cases: { name: string; text: string; line: number; column: string; message: RegExp }[] = [
    { name: 'missing column', text: 'Date,High,Low,Close,Adj Close,Volume\n2018-07-26,2,1,1,1,5\n', line: 1, column: 'open', message: /no "open" column/ },
    { name: 'missing plain column', text: 'date,open,high,low,close\n2018-07-26,1,2,1,1\n', line: 1, column: 'volume', message: /no "volume" column/ },
    { name: 'missing value at the end of a line', text: yahoo(GOOD_1, '2018-07-27,110.18,110.18,106.13,107.68,107.1'), line: 3, column: 'Volume', message: /value is missing/ },
    { name: 'non-numeric value', text: yahoo(GOOD_1, '2018-07-27,110.18,abc,106.13,107.68,107.1,100'), line: 3, column: 'High', message: /"abc" is not a number/ },
    { name: 'empty value', text: yahoo(GOOD_1, '2018-07-27,,110.18,106.13,107.68,107.1,100'), line: 3, column: 'Open', message: /empty/ },
    { name: 'null value', text: yahoo(GOOD_1, '2018-07-27,null,null,null,null,null,null'), line: 3, column: 'Open', message: /null/ },
    { name: 'zero price', text: yahoo(GOOD_1, '2018-07-27,110.18,110.18,0,107.68,107.1,100'), line: 3, column: 'Low', message: /positive, got 0/ },
    { name: 'negative price', text: yahoo('2018-07-26,110.7,111,109.5,109.6,-108.5,31372100'), line: 2, column: 'Adj Close', message: /close must be positive/ },
    { name: 'high below low', text: yahoo(GOOD_1, '2018-07-27,110.18,106,107,107.68,107.1,100'), line: 3, column: 'High', message: /high 106 is below low 107/ },
    { name: 'negative volume', text: yahoo(GOOD_1, '2018-07-27,110.18,110.18,106.13,107.68,107.1,-100'), line: 3, column: 'Volume', message: /must not be negative/ },
    { name: 'unparseable date', text: yahoo(GOOD_1, '2018-02-30,110.18,110.18,106.13,107.68,107.1,100'), line: 3, column: 'Date', message: /"2018-02-30" is not a valid YYYY-MM-DD date/ },
    { name: 'date in another format', text: yahoo('07/26/2018,110.7,111,109.5,109.6,108.5,31372100'), line: 2, column: 'Date', message: /not a valid YYYY-MM-DD/ },
    { name: 'dates out of order', text: yahoo(GOOD_2, GOOD_1), line: 3, column: 'Date', message: /out of order/ },
    { name: 'repeated date', text: yahoo(GOOD_1, GOOD_1), line: 3, column: 'Date', message: /repeats the previous bar's date/ },
    { name: 'too many values', text: yahoo(GOOD_1 + ',7'), line: 2, column: '8', message: /8 values, the header 7 columns/ },
    { name: 'blank lines do not shift line numbers', text: yahoo(GOOD_1, '', '2018-07-27,110.18,110.18,106.13,107.68,107.1,x'), line: 4, column: 'Volume', message: /"x" is not a number/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const err = errorOf(c.text);
      expect(err.message).toMatch(new RegExp(`^bars\\.csv: line ${c.line}, column "${c.column.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}": `));
      expect(err.message).toMatch(c.message);
      expect(err.location).toEqual({ line: c.line, column: c.column });
      expect(err.status).toBe(422);
    });
  }

  it('an empty file', () => {
    expect(errorOf('\n\n').message).toMatch(/empty/);
  });
});
