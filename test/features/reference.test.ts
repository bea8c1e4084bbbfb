import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readBarsCsv } from '../../src/data/index.js';
import { getFeatureSet, referenceFeatureSet } from '../../src/features/index.js';
import { StandardScaler } from '../../src/models/scaler.js';
import { needsReference, referenceFile } from '../helpers/reference.js';

const withReference = needsReference('MSFT.csv', 'MSFT_X_learn.csv', 'MSFT_y_learn.csv');

const LEARN_ROWS = 7000;

withReference.describe('reference features on MSFT.csv equal the seed pipeline bit for bit (FEATURES.md §2-§4, §3b)', () => {
  const series = withReference.present ? readBarsCsv(readFileSync(referenceFile('MSFT.csv'), 'utf8'), { numberParsing: 'legacy', sourceName: 'MSFT.csv' }) : null!;
  const table = withReference.present ? referenceFeatureSet.computeBatch(series) : null!;
  const k = referenceFeatureSet.featureNames.length;

  it('model rows are bars 200 .. 8160 (7,961 rows), the first 7,000 learn rows end at 2014-10-01', () => {
    expect(series.date.length).toBe(8163);
    expect(table.modelRowStart).toBe(200);
    expect(table.modelRowEnd).toBe(8161);
    expect(table.modelRowEnd - table.modelRowStart).toBe(7961);
    expect(table.dates[table.modelRowStart + LEARN_ROWS]).toBe('2014-10-02');
    expect(table.dates[table.modelRowEnd - 1]).toBe('2018-07-26');
    // Every model row is finite on this data.
    const rows = table.values.data.subarray(table.modelRowStart * k, table.modelRowEnd * k);
    expect(rows.every(Number.isFinite)).toBe(true);
  });

  it('scaled with a StandardScaler fitted on the first 7,000 model rows, all 7,000 x 17 cells equal MSFT_X_learn.csv', () => {
    const start = table.modelRowStart;
    const X = { rows: LEARN_ROWS, cols: k, data: table.values.data.slice(start * k, (start + LEARN_ROWS) * k) };
    const scaler = new StandardScaler().fit(X);
    const scaled = scaler.transform(X);

    const lines = readFileSync(referenceFile('MSFT_X_learn.csv'), 'utf8').trim().split('\n');
    expect(lines[0]).toBe(Array.from({ length: k }, (_, j) => j).join(','));
    expect(lines.length - 1).toBe(LEARN_ROWS);
    let differing = 0;
    let largest = 0;
    const perColumn = new Array<number>(k).fill(0);
    for (let i = 0; i < LEARN_ROWS; i++) {
      const cells = lines[i + 1].split(',');
      for (let j = 0; j < k; j++) {
        // The file holds Python's shortest round-trip repr: Number() reads it back exactly.
        const expected = Number(cells[j]);
        const actual = scaled.data[i * k + j];
        if (!Object.is(actual, expected)) {
          differing++;
          perColumn[j]++;
          largest = Math.max(largest, Math.abs(actual - expected));
        }
      }
    }
    console.log(`MSFT_X_learn.csv: ${differing} of ${LEARN_ROWS * k} cells differ, largest difference ${largest}${differing ? ` (per column: ${perColumn.join(' ')})` : ''}`);
    const { mean, variance } = scaler.state!;
    console.log(`scaler mean_: ${JSON.stringify(mean)}`);
    console.log(`scaler var_:  ${JSON.stringify(variance)}`);
    expect(differing).toBe(0);
  });

  it('targets equal MSFT_y_learn.csv bit for bit', () => {
    const lines = readFileSync(referenceFile('MSFT_y_learn.csv'), 'utf8').trim().split('\n');
    expect(lines.length - 1).toBe(LEARN_ROWS);
    let differing = 0;
    for (let i = 0; i < LEARN_ROWS; i++) if (!Object.is(table.target[table.modelRowStart + i], Number(lines[i + 1]))) differing++;
    console.log(`MSFT_y_learn.csv: ${differing} of ${LEARN_ROWS} targets differ`);
    expect(differing).toBe(0);
  });

  it('read with exact parsing instead, the features are not the reference ones (the parser is part of the definition, §3b.1)', () => {
    const exact = readBarsCsv(readFileSync(referenceFile('MSFT.csv'), 'utf8'), { numberParsing: 'exact' });
    const other = referenceFeatureSet.computeBatch(exact);
    let differing = 0;
    for (let t = table.modelRowStart; t < table.modelRowStart + LEARN_ROWS; t++) if (!Object.is(other.target[t], table.target[t])) differing++;
    expect(differing).toBeGreaterThan(1000);
  });
});

describe('the feature set registry', () => {
  it('names both sets and refuses others', () => {
    expect(getFeatureSet('reference')).toBe(referenceFeatureSet);
    expect(getFeatureSet('causal').name).toBe('causal');
    expect(() => getFeatureSet('toString')).toThrow(/unknown feature set "toString": expected one of reference, causal/);
  });

  it('the reference set declares its definition: legacy parsing, one bar of look-ahead, 200 warm-up bars, the §6 caveats', () => {
    expect(referenceFeatureSet.featureNames).toEqual([
      'return', 'close_to_open', 'close_to_high', 'close_to_low', 'macd_diff', 'ma_50_200', 'sar', 'stochastic_oscillator', 'cci', 'rsi',
      '5d_volatility', '21d_volatility', '60d_volatility', 'bollinger', 'atr', 'on_balance_volume', 'chaikin_oscillator',
    ]);
    expect(referenceFeatureSet.numberParsing).toBe('legacy');
    expect(referenceFeatureSet.lookahead).toBe(1);
    expect(referenceFeatureSet.warmupBars).toBe(200);
    expect(referenceFeatureSet.caveats.length).toBe(8);
  });
});
