import type { BarSeries } from '../data/bars.js';
import { computeFeatureTable, createFeatureEngine, type FeatureSetDefinition, type IndicatorState } from './engine.js';
import { Ewm, RollingMax, RollingMean, RollingStd } from './kernels.js';
import type { FeatureSet } from './types.js';

/**
 * The reference feature set: the seed's pipeline exactly, quirks included (FEATURES.md §2-§4, §3b),
 * because the reference model was trained on exactly these numbers. Every number that defines it
 * is here, once.
 */
export const REFERENCE_PARAMETERS = {
  /** EWM centres of mass (FEATURES.md §3 macd_diff). */
  macd: { fastCom: 5.5, slowCom: 12.5, signalCom: 4 },
  movingAverages: { short: 50, long: 200 },
  /** `step` is the look-back of the initial and reversal extremes, `af` the acceleration (§3 Parabolic SAR). */
  sar: { step: 5, afStart: 0.02, afIncrement: 0.02, afMax: 0.2 },
  stochasticWindow: 14,
  /** 0.15, not Lambert's 0.015 (§3 cci). */
  cci: { window: 20, constant: 0.15 },
  rsiWindow: 14,
  volatilityWindows: [5, 21, 60],
  bollingerWindow: 21,
  atrWindow: 14,
  chaikin: { fastCom: 1, slowCom: 4.5 },
} as const;

const P = REFERENCE_PARAMETERS;

export const REFERENCE_FEATURE_NAMES = [
  'return',
  'close_to_open',
  'close_to_high',
  'close_to_low',
  'macd_diff',
  'ma_50_200',
  'sar',
  'stochastic_oscillator',
  'cci',
  'rsi',
  '5d_volatility',
  '21d_volatility',
  '60d_volatility',
  'bollinger',
  'atr',
  'on_balance_volume',
  'chaikin_oscillator',
] as const;

const ATR = REFERENCE_FEATURE_NAMES.indexOf('atr');
const WIDTH = REFERENCE_FEATURE_NAMES.length;

/**
 * Rows are computed on F, the history without its first bar (no return; FEATURES.md §2): every
 * window, EWM and cumulative sum starts at bar 1. A row's position in F is `p = t - 1`. The first
 * bar with every feature defined is therefore bar 1 + (the longest warm-up in F positions).
 */
const WARMUP_BARS =
  1 +
  Math.max(
    P.movingAverages.long - 1,
    2 * (P.cci.window - 1), // the mean deviation averages deviations that need their own window
    Math.max(...P.volatilityWindows) - 1,
    P.bollingerWindow - 1,
    P.atrWindow - 1,
    P.stochasticWindow - 1,
    P.rsiWindow,
    P.sar.step,
  );

/**
 * The seed's indicators, one bar at a time (FEATURES.md §3, with the numerics of §3b). Writes the
 * columns in REFERENCE_FEATURE_NAMES order.
 */
class ReferenceIndicators implements IndicatorState {
  private bars = 0;
  private previousClose = Number.NaN;
  private previousHigh = Number.NaN;
  private previousLow = Number.NaN;

  private readonly macdFast = new Ewm(P.macd.fastCom);
  private readonly macdSlow = new Ewm(P.macd.slowCom);
  private readonly macdSignal = new Ewm(P.macd.signalCom);
  private readonly maShort = new RollingMean(P.movingAverages.short);
  private readonly maLong = new RollingMean(P.movingAverages.long);

  // Parabolic SAR: the last `step + 1` closes of F for the extremes (FEATURES.md §3).
  private readonly sarCloses = new Float64Array(P.sar.step + 1);
  private sarUptrend = false;
  private sarAf: number = P.sar.afStart;
  private sarPrior = Number.NaN;
  private sarEp = Number.NaN;

  private readonly closeMax = new RollingMax(P.stochasticWindow);
  private readonly closeMinNegated = new RollingMax(P.stochasticWindow);

  private readonly typicalMean = new RollingMean(P.cci.window);
  private readonly deviationMean = new RollingMean(P.cci.window);

  private rsiGainSum = 0;
  private rsiLossSum = 0;
  private rsiGains = Number.NaN;
  private rsiLosses = Number.NaN;

  private readonly volatility = P.volatilityWindows.map((w) => new RollingStd(w));
  private readonly bollingerMean = new RollingMean(P.bollingerWindow);
  private readonly bollingerStd = new RollingStd(P.bollingerWindow);
  private readonly trueRangeMean = new RollingMean(P.atrWindow);
  private obv = 0;
  private adl = 0;
  private readonly chaikinFast = new Ewm(P.chaikin.fastCom);
  private readonly chaikinSlow = new Ewm(P.chaikin.slowCom);

  step(open: number, high: number, low: number, close: number, volume: number, rows: Float64Array, o: number): void {
    const t = this.bars++;
    const previousClose = this.previousClose;
    const previousHigh = this.previousHigh;
    const previousLow = this.previousLow;
    this.previousClose = close;
    this.previousHigh = high;
    this.previousLow = low;
    if (t === 0) {
      // Bar 0 has no return and is not in F (FEATURES.md §2).
      rows.fill(Number.NaN, o, o + WIDTH);
      return;
    }
    const p = t - 1;

    // The previous row's true range can now read this close: FEATURES.md §3 atr's look-ahead.
    if (p >= 1) {
      const trueRange = Math.max(previousHigh - previousLow, previousHigh - close, previousLow - close);
      rows[o - WIDTH + ATR] = this.trueRangeMean.push(trueRange);
    }

    rows[o] = close / previousClose;
    rows[o + 1] = close / open;
    rows[o + 2] = close / high;
    rows[o + 3] = close / low;

    const macd = this.macdFast.push(close) - this.macdSlow.push(close);
    rows[o + 4] = macd - this.macdSignal.push(macd);
    rows[o + 5] = this.maShort.push(close) - this.maLong.push(close);
    rows[o + 6] = this.parabolicSar(p, high, low, close);

    // Stochastic over close only, not high/low (FEATURES.md §3).
    const max = this.closeMax.push(close);
    const min = -this.closeMinNegated.push(-close);
    rows[o + 7] = ((close - min) / (max - min)) * 100;

    const typical = (high + low + close) / 3;
    const deviation = typical - this.typicalMean.push(typical);
    rows[o + 8] = deviation / (P.cci.constant * this.deviationMean.push(Math.abs(deviation)));

    // pnl is the previous close minus this one: positive when the price fell (FEATURES.md §3 RSI,
    // on_balance_volume). NaN on F's first row, where the previous bar is outside F.
    const pnl = p === 0 ? Number.NaN : previousClose - close;
    rows[o + 9] = this.rsi(p, pnl);

    const ret = rows[o];
    rows[o + 10] = this.volatility[0].push(ret);
    rows[o + 11] = this.volatility[1].push(ret);
    rows[o + 12] = this.volatility[2].push(ret);

    // Divided by 2, then multiplied by the std: the seed's operator precedence (FEATURES.md §3).
    rows[o + 13] = ((close - this.bollingerMean.push(close)) / 2) * this.bollingerStd.push(close);

    // Provisional: without the next close only high - low counts, as pandas' NaN-skipping row max
    // does on F's last row. The next bar replaces it (above).
    rows[o + ATR] = this.trueRangeMean.peek(high - low);

    // A NaN pnl (F's first row) counts as a rise: +volume (FEATURES.md §3).
    this.obv += pnl < 0 ? -volume : volume;
    rows[o + 15] = this.obv;

    // Divided by the range twice, as the seed wrote it (FEATURES.md §3). pandas' cumsum skips NaN
    // (a flat bar, high == low, gives 0/0) and shows NaN there; the EWMs then hold their value.
    const range = high - low;
    const moneyFlow = volume * ((close - low) / range / range);
    let adl = Number.NaN;
    if (moneyFlow === moneyFlow) {
      this.adl += moneyFlow;
      adl = this.adl;
    }
    rows[o + 16] = this.chaikinFast.push(adl) - this.chaikinSlow.push(adl);
  }

  /** FEATURES.md §3 Parabolic SAR on F position `p`: extremes over closes, `af` never reset. */
  private parabolicSar(p: number, high: number, low: number, close: number): number {
    const { step, afIncrement, afMax } = P.sar;
    const closes = this.sarCloses;
    closes[p % (step + 1)] = close;
    if (p < step) {
      if (p === step - 1) {
        // prior = max, ep = min over the first `step` closes; the slot of the (step+1)-th is unused yet.
        let max = -Infinity;
        let min = Infinity;
        for (let k = 0; k < step; k++) {
          max = Math.max(max, closes[k]);
          min = Math.min(min, closes[k]);
        }
        this.sarPrior = max;
        this.sarEp = min;
      }
      return Number.NaN;
    }
    const prior = this.sarPrior;
    let sar: number;
    if (this.sarUptrend) {
      sar = prior + this.sarAf * (this.sarEp - prior);
      if (low < sar) {
        this.sarUptrend = false;
        this.sarEp = minOf(closes);
      } else if (close > this.sarEp) {
        this.sarEp = close;
        this.sarAf = Math.min(afMax, this.sarAf + afIncrement);
      }
    } else {
      sar = prior - this.sarAf * (prior - this.sarEp);
      if (high > sar) {
        this.sarUptrend = true;
        this.sarEp = maxOf(closes);
      } else if (close < this.sarEp) {
        this.sarEp = close;
        this.sarAf = Math.min(afMax, this.sarAf + afIncrement);
      }
    }
    this.sarPrior = sar;
    return sar;
  }

  /** FEATURES.md §3 RSI: inverted sign (gains are falls), only one average moves per bar. */
  private rsi(p: number, pnl: number): number {
    const w = P.rsiWindow;
    if (p < w) {
      // Sums of the values over positions 0 .. w-1 (the NaN pnl of position 0 is neither).
      if (pnl > 0) this.rsiGainSum += pnl;
      else if (pnl < 0) this.rsiLossSum += pnl;
      if (p === w - 1) {
        this.rsiGains = this.rsiGainSum / w;
        this.rsiLosses = Math.abs(this.rsiLossSum) / w;
      }
      return Number.NaN;
    }
    // A day with pnl == 0 takes the else branch, as in the seed.
    if (pnl > 0) this.rsiGains = (this.rsiGains * (w - 1) + pnl) / w;
    else this.rsiLosses = (this.rsiLosses * (w - 1) + Math.abs(pnl)) / w;
    const rs = this.rsiLosses === 0 ? 100 : this.rsiGains / this.rsiLosses;
    return 100 - 100 / (1 + rs);
  }
}

function minOf(values: Float64Array): number {
  let min = values[0];
  for (let k = 1; k < values.length; k++) if (values[k] < min) min = values[k];
  return min;
}

function maxOf(values: Float64Array): number {
  let max = values[0];
  for (let k = 1; k < values.length; k++) if (values[k] > max) max = values[k];
  return max;
}

const definition: FeatureSetDefinition = {
  featureNames: REFERENCE_FEATURE_NAMES,
  lookahead: 1,
  warmupBars: WARMUP_BARS,
  createIndicators: () => new ReferenceIndicators(),
};

export const referenceFeatureSet: FeatureSet = {
  name: 'reference',
  featureNames: REFERENCE_FEATURE_NAMES,
  numberParsing: 'legacy',
  lookahead: definition.lookahead,
  warmupBars: WARMUP_BARS,
  caveats: [
    "atr looks ahead: a bar's true range uses the next bar's close, so the newest bar's atr (high - low only) differs from the value the model was trained on",
    'bollinger is (close - mean) / 2 * std (operator precedence), not (close - mean) / (2 * std)',
    'rsi has its sign inverted: gains are days the price fell, and only one of the two averages moves each day',
    'chaikin_oscillator divides the money-flow multiplier by (high - low) twice',
    'cci uses 0.15 instead of 0.015',
    'stochastic_oscillator uses the 14-day range of close, not of high and low',
    "prices are mixed: close is Yahoo's adjusted close while open, high and low are not adjusted",
    'the last bar with a known target is not a model row (the seed dropped it with the look-ahead)',
  ],
  computeBatch: (series: BarSeries) => computeFeatureTable(definition, series),
  createEngine: (history?: BarSeries) => createFeatureEngine(definition, history),
};
