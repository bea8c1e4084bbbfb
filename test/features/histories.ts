import type { BarSeries } from '../../src/data/bars.js';
import { generateSyntheticBars, sliceSeries } from '../../src/data/index.js';

export interface NamedHistory {
  name: string;
  series: BarSeries;
}

/** A synthetic history with some bars rewritten (the rewrite must keep them valid). */
function edit(seed: number, bars: number, change: (s: BarSeries, i: number) => void, from: number, to: number): BarSeries {
  const s = generateSyntheticBars({ seed, bars });
  for (let i = from; i < to; i++) change(s, i);
  return s;
}

/** Every price of bar i set to p. */
function flatBar(s: BarSeries, i: number, p: number): void {
  s.open[i] = s.high[i] = s.low[i] = s.close[i] = p;
}

/**
 * Random histories of many lengths (shorter than, equal to and longer than the windows) and
 * histories built to reach the non-finite edge cases: flat prices (a flat 14-bar range, zero
 * standard deviations, 0/0 money flow), high == low with a close outside it (an adjusted close:
 * ±Infinity money flow), zero volumes (0 * Infinity = NaN), unchanged closes (RSI's else branch),
 * tiny prices.
 */
export function testHistories(): NamedHistory[] {
  const out: NamedHistory[] = [];
  const lengths = [0, 1, 2, 3, 5, 6, 7, 14, 15, 16, 21, 22, 39, 40, 61, 199, 200, 201, 202, 260, 700];
  lengths.forEach((bars, j) => out.push({ name: `synthetic seed ${100 + j}, ${bars} bars`, series: generateSyntheticBars({ seed: 100 + j, bars }) }));
  for (let seed = 1; seed <= 6; seed++) out.push({ name: `synthetic seed ${seed}, 1500 bars`, series: generateSyntheticBars({ seed, bars: 1500, startPrice: 5 + 40 * seed }) });

  const flat = generateSyntheticBars({ seed: 11, bars: 400 });
  for (let i = 0; i < 400; i++) {
    flatBar(flat, i, 10);
    flat.volume[i] = 100;
  }
  out.push({ name: 'every bar flat at 10', series: flat });
  out.push({ name: 'a 60-bar flat stretch', series: edit(12, 700, (s, i) => flatBar(s, i, s.close[249]), 250, 310) });
  out.push({ name: 'a flat start', series: edit(13, 500, (s, i) => flatBar(s, i, 20), 0, 45) });
  out.push({
    name: 'high == low with the close outside (adjusted close)',
    series: edit(14, 600, (s, i) => {
      if (i % 37 === 0) {
        s.high[i] = s.low[i] = s.open[i];
        s.close[i] = s.open[i] * 1.01;
      }
    }, 0, 600),
  });
  out.push({
    name: 'high == low and zero volume',
    series: edit(15, 600, (s, i) => {
      if (i % 41 === 3) {
        s.high[i] = s.low[i] = s.open[i];
        s.close[i] = s.open[i] * 0.99;
        s.volume[i] = 0;
      } else if (i % 13 === 0) s.volume[i] = 0;
    }, 0, 600),
  });
  out.push({ name: 'unchanged closes every third bar', series: edit(16, 600, (s, i) => { if (i % 3 === 0 && i > 0) { const c = s.close[i - 1]; s.close[i] = c; s.high[i] = Math.max(s.high[i], c); s.low[i] = Math.min(s.low[i], c); } }, 0, 600) });
  out.push({ name: 'tiny prices', series: generateSyntheticBars({ seed: 17, bars: 800, startPrice: 0.01 }) });
  out.push({ name: 'prefix of a long history', series: sliceSeries(generateSyntheticBars({ seed: 18, bars: 900 }), 0, 450) });
  return out;
}
