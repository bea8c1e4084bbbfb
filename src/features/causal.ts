import type { BarSeries } from '../data/bars.js';
import { computeFeatureTable, createFeatureEngine, type FeatureSetDefinition, type IndicatorState } from './engine.js';
import { Ewm, RollingMax, RollingMean, RollingStd } from './kernels.js';
import type { FeatureSet } from './types.js';

/**
 * The causal feature set: the same seventeen ideas as the reference set in their textbook form,
 * with none of its defects (FEATURES.md §6) and no look-ahead: row t reads bars 0 .. t only. Every
 * feature is a ratio or an oscillator, so a model trained on one price or volume level applies at
 * another (the reference's price-level features such as ma_50_200, sar and atr are not). Windows
 * run from the first bar of the history. Every number that defines the set is here, once.
 */
export const CAUSAL_PARAMETERS = {
  /** Spans 12, 26, 9: EWM centre of mass (span - 1) / 2, pandas' adjusted recurrence. */
  macd: { fastSpan: 12, slowSpan: 26, signalSpan: 9 },
  movingAverages: { short: 50, long: 200 },
  /** Wilder's parabolic SAR on high/low. */
  sar: { afStart: 0.02, afIncrement: 0.02, afMax: 0.2 },
  stochasticWindow: 14,
  /** Lambert's constant. */
  cci: { window: 20, constant: 0.015 },
  rsiWindow: 14,
  volatilityWindows: [5, 21, 60],
  bollinger: { window: 20, width: 2 },
  atrWindow: 14,
  onBalanceVolumeWindow: 20,
  chaikin: { fastSpan: 3, slowSpan: 10 },
} as const;

const P = CAUSAL_PARAMETERS;

/**
 * Column order. `macd_hist`, `atr_ratio` and `sar_distance` are divided by the close, `ma_50_200`
 * is the ratio of the averages minus 1, `on_balance_volume` is the signed share of the last 20 bars'
 * volume, `chaikin_oscillator` is divided by the 10-bar volume EWM; the volatilities are of
 * `return - 1` (exact near 1, and better conditioned for the running variance).
 */
export const CAUSAL_FEATURE_NAMES = [
  'return',
  'close_to_open',
  'close_to_high',
  'close_to_low',
  'macd_hist',
  'ma_50_200',
  'sar_distance',
  'stochastic_k',
  'cci',
  'rsi',
  '5d_volatility',
  '21d_volatility',
  '60d_volatility',
  'bollinger_pct_b',
  'atr_ratio',
  'on_balance_volume',
  'chaikin_oscillator',
] as const;

/** First bar with every feature defined: each indicator's first defined bar (bar 0 has no previous close). */
const WARMUP_BARS = Math.max(
  P.movingAverages.long - 1,
  2 * (P.cci.window - 1),
  Math.max(...P.volatilityWindows), // returns start at bar 1
  P.bollinger.window - 1,
  P.atrWindow, // true ranges start at bar 1
  P.stochasticWindow - 1,
  P.rsiWindow, // price changes start at bar 1
  P.onBalanceVolumeWindow,
);

const comOfSpan = (span: number) => (span - 1) / 2;

class CausalIndicators implements IndicatorState {
  private bars = 0;
  private previousClose = Number.NaN;
  private previousHigh = Number.NaN;
  private previousLow = Number.NaN;
  private secondPreviousHigh = Number.NaN;
  private secondPreviousLow = Number.NaN;

  private readonly macdFast = new Ewm(comOfSpan(P.macd.fastSpan));
  private readonly macdSlow = new Ewm(comOfSpan(P.macd.slowSpan));
  private readonly macdSignal = new Ewm(comOfSpan(P.macd.signalSpan));
  private readonly maShort = new RollingMean(P.movingAverages.short);
  private readonly maLong = new RollingMean(P.movingAverages.long);

  private sarUptrend = true;
  private sar = Number.NaN;
  private sarEp = Number.NaN;
  private sarAf: number = P.sar.afStart;

  private readonly highMax = new RollingMax(P.stochasticWindow);
  private readonly lowMinNegated = new RollingMax(P.stochasticWindow);
  private readonly typicalMean = new RollingMean(P.cci.window);
  private readonly deviationMean = new RollingMean(P.cci.window);

  private gainSum = 0;
  private lossSum = 0;
  private averageGain = Number.NaN;
  private averageLoss = Number.NaN;

  private readonly volatility = P.volatilityWindows.map((w) => new RollingStd(w));
  private readonly bollingerMean = new RollingMean(P.bollinger.window);
  private readonly bollingerStd = new RollingStd(P.bollinger.window);

  private trueRangeSum = 0;
  private atr = Number.NaN;

  private readonly signedVolumeMean = new RollingMean(P.onBalanceVolumeWindow);
  private readonly volumeMean = new RollingMean(P.onBalanceVolumeWindow);

  private adl = 0;
  private readonly adlFast = new Ewm(comOfSpan(P.chaikin.fastSpan));
  private readonly adlSlow = new Ewm(comOfSpan(P.chaikin.slowSpan));
  private readonly volumeEwm = new Ewm(comOfSpan(P.chaikin.slowSpan));

  step(open: number, high: number, low: number, close: number, volume: number, rows: Float64Array, o: number): void {
    const t = this.bars++;
    const previousClose = this.previousClose;
    const change = close - previousClose; // NaN on bar 0

    rows[o] = close / previousClose;
    rows[o + 1] = close / open;
    rows[o + 2] = close / high;
    rows[o + 3] = close / low;

    const macd = this.macdFast.push(close) - this.macdSlow.push(close);
    rows[o + 4] = (macd - this.macdSignal.push(macd)) / close;
    rows[o + 5] = this.maShort.push(close) / this.maLong.push(close) - 1;
    rows[o + 6] = (close - this.parabolicSar(t, high, low, close)) / close;

    const max = this.highMax.push(high);
    const min = -this.lowMinNegated.push(-low);
    rows[o + 7] = ((close - min) / (max - min)) * 100;

    // The mean deviation averages each bar's deviation from its own moving average: constant work
    // per bar, where Lambert's deviation from the current average would need the whole window.
    const typical = (high + low + close) / 3;
    const deviation = typical - this.typicalMean.push(typical);
    rows[o + 8] = deviation / (P.cci.constant * this.deviationMean.push(Math.abs(deviation)));

    rows[o + 9] = t === 0 ? Number.NaN : this.rsi(t, change);

    const excess = rows[o] - 1;
    if (t > 0) {
      rows[o + 10] = this.volatility[0].push(excess);
      rows[o + 11] = this.volatility[1].push(excess);
      rows[o + 12] = this.volatility[2].push(excess);
    } else {
      rows[o + 10] = rows[o + 11] = rows[o + 12] = Number.NaN;
    }

    const mean = this.bollingerMean.push(close);
    const width = P.bollinger.width * this.bollingerStd.push(close);
    const lower = mean - width;
    rows[o + 13] = (close - lower) / (mean + width - lower);

    rows[o + 14] = t === 0 ? Number.NaN : this.averageTrueRange(t, high, low, previousClose) / close;

    if (t > 0) {
      const signed = change > 0 ? volume : change < 0 ? -volume : 0;
      rows[o + 15] = this.signedVolumeMean.push(signed) / this.volumeMean.push(volume);
    } else {
      rows[o + 15] = Number.NaN;
    }

    // A flat bar (high == low) moves no money rather than dividing by zero.
    const range = high - low;
    const multiplier = range > 0 ? (close - low - (high - close)) / range : 0;
    this.adl += multiplier * volume;
    rows[o + 16] = (this.adlFast.push(this.adl) - this.adlSlow.push(this.adl)) / this.volumeEwm.push(volume);

    this.secondPreviousHigh = this.previousHigh;
    this.secondPreviousLow = this.previousLow;
    this.previousClose = close;
    this.previousHigh = high;
    this.previousLow = low;
  }

  /**
   * Wilder's parabolic SAR. Starts on bar 1 in the direction of the first close-to-close move; the
   * stop never enters the previous two bars' range; on a reversal it jumps to the extreme point and
   * the acceleration restarts.
   */
  private parabolicSar(t: number, high: number, low: number, close: number): number {
    const { afStart, afIncrement, afMax } = P.sar;
    if (t === 0) return Number.NaN;
    if (t === 1) {
      this.sarUptrend = close >= this.previousClose;
      this.sar = this.sarUptrend ? Math.min(low, this.previousLow) : Math.max(high, this.previousHigh);
      this.sarEp = this.sarUptrend ? Math.max(high, this.previousHigh) : Math.min(low, this.previousLow);
      this.sarAf = afStart;
      return this.sar;
    }
    let sar = this.sar + this.sarAf * (this.sarEp - this.sar);
    if (this.sarUptrend) {
      sar = Math.min(sar, this.previousLow, this.secondPreviousLow);
      if (low < sar) {
        this.sarUptrend = false;
        sar = this.sarEp;
        this.sarEp = low;
        this.sarAf = afStart;
      } else if (high > this.sarEp) {
        this.sarEp = high;
        this.sarAf = Math.min(afMax, this.sarAf + afIncrement);
      }
    } else {
      sar = Math.max(sar, this.previousHigh, this.secondPreviousHigh);
      if (high > sar) {
        this.sarUptrend = true;
        sar = this.sarEp;
        this.sarEp = high;
        this.sarAf = afStart;
      } else if (low < this.sarEp) {
        this.sarEp = low;
        this.sarAf = Math.min(afMax, this.sarAf + afIncrement);
      }
    }
    this.sar = sar;
    return sar;
  }

  /** Wilder's RSI: simple averages of the first `w` gains and losses, then Wilder smoothing of both. */
  private rsi(t: number, change: number): number {
    const w = P.rsiWindow;
    const gain = change > 0 ? change : 0;
    const loss = change < 0 ? -change : 0;
    if (t < w) {
      this.gainSum += gain;
      this.lossSum += loss;
      return Number.NaN;
    }
    if (t === w) {
      this.averageGain = (this.gainSum + gain) / w;
      this.averageLoss = (this.lossSum + loss) / w;
    } else {
      this.averageGain = (this.averageGain * (w - 1) + gain) / w;
      this.averageLoss = (this.averageLoss * (w - 1) + loss) / w;
    }
    // No loss in the window: 100, or 50 if the price did not move at all.
    if (this.averageLoss === 0) return this.averageGain === 0 ? 50 : 100;
    return 100 - 100 / (1 + this.averageGain / this.averageLoss);
  }

  /** Wilder's ATR: true range with the previous close, simple mean of the first `w`, then Wilder smoothing. */
  private averageTrueRange(t: number, high: number, low: number, previousClose: number): number {
    const w = P.atrWindow;
    const trueRange = Math.max(high - low, Math.abs(high - previousClose), Math.abs(low - previousClose));
    if (t < w) {
      this.trueRangeSum += trueRange;
      return Number.NaN;
    }
    this.atr = t === w ? (this.trueRangeSum + trueRange) / w : (this.atr * (w - 1) + trueRange) / w;
    return this.atr;
  }
}

const definition: FeatureSetDefinition = {
  featureNames: CAUSAL_FEATURE_NAMES,
  lookahead: 0,
  warmupBars: WARMUP_BARS,
  createIndicators: () => new CausalIndicators(),
};

export const causalFeatureSet: FeatureSet = {
  name: 'causal',
  featureNames: CAUSAL_FEATURE_NAMES,
  numberParsing: 'exact',
  lookahead: 0,
  warmupBars: WARMUP_BARS,
  caveats: [
    "with Yahoo CSVs close is the adjusted close while open, high and low are not adjusted (FEATURES.md §1): the close-to-open/high/low ratios, stochastic_k, cci, sar_distance and atr_ratio mix the two across dividends and splits",
    "cci's mean deviation averages each bar's deviation from its own moving average (constant work), not the deviation from the current average",
    'a flat range (high == low over the stochastic window, or constant closes over a volatility or Bollinger window) gives a non-finite feature',
  ],
  computeBatch: (series: BarSeries) => computeFeatureTable(definition, series),
  createEngine: (history?: BarSeries) => createFeatureEngine(definition, history),
};
