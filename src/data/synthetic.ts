import { createSeries, type BarSeries } from './bars.js';
import { formatIsoDay, parseIsoDay, weekday } from './dates.js';

export interface SyntheticBarsOptions {
  /** Any integer; equal seeds give equal histories on every machine. */
  seed: number;
  /** Number of bars. */
  bars: number;
  /** First date (moved forward to a weekday if it is a weekend); default 2000-01-03. */
  startDate?: string;
  /** Close before the first bar; default 100. */
  startPrice?: number;
}

/**
 * Daily-return model: GARCH(1,1) volatility clustering around a 1.5 % daily volatility (about 24 %
 * a year), a small upward drift, overnight gaps and intraday ranges that scale with the volatility,
 * and volume that rises on large moves.
 */
const DRIFT = 0.0003;
const LONG_RUN_VARIANCE = 0.015 * 0.015;
const GARCH_ALPHA = 0.08;
const GARCH_BETA = 0.9;
const GARCH_OMEGA = LONG_RUN_VARIANCE * (1 - GARCH_ALPHA - GARCH_BETA);
const MAX_ABS_RETURN = 0.3;
const BASE_VOLUME = 5_000_000;
/** Yahoo prints prices with 6 decimals; prices never fall below one tick. */
const TICK = 1e-6;
const MIN_CLOSE = 0.01;

/**
 * A deterministic, seeded history of realistic daily bars for demos and tests: business days
 * (Monday to Friday, no holidays), a geometric random walk with volatility clustering, consistent
 * OHLC (`high >= max(open, close)`, `low <= min(open, close)`, `high > low`, all positive), prices
 * rounded to 6 decimals like Yahoo's, integer volumes.
 *
 * Only IEEE arithmetic and `Math.sqrt`/`Math.round` are used (no `Math.log`, `Math.exp` or
 * trigonometry, whose last bits may differ between JavaScript engines), so a seed gives the same
 * bits everywhere.
 */
export function generateSyntheticBars(options: SyntheticBarsOptions): BarSeries {
  const { seed, bars: n } = options;
  const startPrice = options.startPrice ?? 100;
  const startDate = options.startDate ?? '2000-01-03';
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`bars must be a non-negative integer, got ${n}`);
  if (!(Number.isFinite(startPrice) && startPrice >= MIN_CLOSE)) throw new RangeError(`startPrice must be a finite number >= ${MIN_CLOSE}, got ${startPrice}`);
  let day = parseIsoDay(startDate);
  if (Number.isNaN(day)) throw new RangeError(`startDate must be a YYYY-MM-DD date, got ${JSON.stringify(startDate)}`);

  const random = new Xoshiro128(seed);
  const series = createSeries(n);
  let previousClose = roundPrice(startPrice);
  let variance = LONG_RUN_VARIANCE;
  let shock = 0;
  for (let i = 0; i < n; i++) {
    while (weekday(day) === 0 || weekday(day) === 6) day++;
    series.date[i] = formatIsoDay(day);
    day++;

    variance = GARCH_OMEGA + GARCH_ALPHA * shock * shock + GARCH_BETA * variance;
    const sigma = Math.sqrt(variance);
    shock = sigma * random.normal();
    const r = Math.min(MAX_ABS_RETURN, Math.max(-MAX_ABS_RETURN, DRIFT + shock));
    const close = roundPrice(Math.max(MIN_CLOSE, previousClose * (1 + r)));
    const open = roundPrice(Math.max(MIN_CLOSE, previousClose * (1 + 0.3 * sigma * random.normal())));
    // Rounding is monotonic, so the ordering of high, low and the body survives it; only `high > low`
    // can collapse (a flat bar at a tiny price) and is restored by one tick.
    let high = roundPrice(Math.max(open, close) * (1 + sigma * (0.1 + 0.5 * Math.abs(random.normal()))));
    const low = Math.max(TICK, roundPrice(Math.min(open, close) * (1 - sigma * (0.1 + 0.5 * Math.abs(random.normal())))));
    if (!(high > low)) high = roundPrice(low + TICK);

    series.open[i] = open;
    series.high[i] = high;
    series.low[i] = low;
    series.close[i] = close;
    series.volume[i] = Math.round(BASE_VOLUME * (0.5 + random.uniform()) * (0.5 + (Math.abs(shock) / Math.sqrt(LONG_RUN_VARIANCE))));
    previousClose = close;
  }
  return series;
}

function roundPrice(x: number): number {
  // An integer count of ticks divided once: the double nearest to the 6-decimal price.
  return Math.round(x * 1e6) / 1e6;
}

/** xoshiro128** (Blackman and Vigna) seeded through splitmix32: small, fast, 32-bit integer arithmetic only. */
class Xoshiro128 {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    // splitmix32 over the seed's low and high 32 bits spreads any integer over the 128-bit state.
    let s = (seed >>> 0) ^ Math.imul(Math.floor(seed / 0x1_0000_0000) >>> 0, 0x9e3779b9);
    const next = () => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /**
   * Approximately standard normal: the Irwin-Hall sum of 12 uniforms minus 6 (mean 0, variance 1,
   * tails cut at ±6; the GARCH variance supplies the fat tails). Chosen over Box-Muller to avoid
   * `Math.log`/`Math.cos`, see `generateSyntheticBars`.
   */
  normal(): number {
    let sum = 0;
    for (let k = 0; k < 12; k++) sum += this.nextUint32() / 4294967296;
    return sum - 6;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
