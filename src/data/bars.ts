/** A daily OHLCV bar. `date` is the calendar date `YYYY-MM-DD` (UTC). */
export interface Bar {
  date: string;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

/** Column-oriented bar history, oldest first: what readers produce and the feature engine consumes. */
export interface BarSeries {
  date: string[];
  open: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
  volume: Float64Array;
}

export const BAR_FIELDS = ['date', 'open', 'high', 'low', 'close', 'volume'] as const;
export const PRICE_FIELDS = ['open', 'high', 'low', 'close'] as const;

export function seriesLength(series: BarSeries): number {
  return series.date.length;
}

export function barAt(series: BarSeries, i: number): Bar {
  return {
    date: series.date[i],
    open: series.open[i],
    high: series.high[i],
    low: series.low[i],
    close: series.close[i],
    volume: series.volume[i],
  };
}

export function seriesToBars(series: BarSeries): Bar[] {
  const out: Bar[] = new Array(series.date.length);
  for (let i = 0; i < out.length; i++) out[i] = barAt(series, i);
  return out;
}

/** A series of `n` bars, every value zero and every date unset, to be filled in. */
export function createSeries(n: number): BarSeries {
  return {
    date: new Array<string>(n),
    open: new Float64Array(n),
    high: new Float64Array(n),
    low: new Float64Array(n),
    close: new Float64Array(n),
    volume: new Float64Array(n),
  };
}

export function barsToSeries(bars: readonly Bar[]): BarSeries {
  const n = bars.length;
  const series = createSeries(n);
  for (let i = 0; i < n; i++) {
    const b = bars[i];
    series.date[i] = b.date;
    series.open[i] = b.open;
    series.high[i] = b.high;
    series.low[i] = b.low;
    series.close[i] = b.close;
    series.volume[i] = b.volume;
  }
  return series;
}

/** The bars `[start, end)` of a series, as a new series sharing no memory with it. */
export function sliceSeries(series: BarSeries, start: number, end = series.date.length): BarSeries {
  return {
    date: series.date.slice(start, end),
    open: series.open.slice(start, end),
    high: series.high.slice(start, end),
    low: series.low.slice(start, end),
    close: series.close.slice(start, end),
    volume: series.volume.slice(start, end),
  };
}
