/**
 * An independent, column-at-a-time implementation of both feature sets, written from FEATURES.md
 * (reference) and the causal set's documentation, sharing no code with src/features: whole-array
 * ports of pandas' loops (`roll_mean`, `roll_var`, `ewma`, `cumsum`) with plain indices instead of
 * ring buffers, window extremes by scanning the window instead of a deque, the look-ahead read
 * directly from the next bar. The production engine and batch must equal it bit for bit; it is slow
 * (O(window) per bar) and that is fine in a test.
 */
import type { BarSeries } from '../../src/data/bars.js';

type Column = Float64Array;

const NaN_ = Number.NaN;

function map(n: number, f: (i: number) => number): Column {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = f(i);
  return out;
}

/** pandas < 1.2 `roll_mean` over an array (min_periods = window). */
function rollingMean(x: Column, w: number): Column {
  const out = new Float64Array(x.length);
  let sum = 0;
  let nobs = 0;
  let neg = 0;
  const sign = (v: number) => v < 0 || Object.is(v, -0);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!Number.isNaN(v)) {
      nobs++;
      sum = sum + v;
      if (sign(v)) neg++;
    }
    if (i > w - 1) {
      const prev = x[i - w];
      if (!Number.isNaN(prev)) {
        nobs--;
        sum = sum - prev;
        if (sign(prev)) neg--;
      }
    }
    if (nobs >= w) {
      let r = sum / nobs;
      if (neg === 0 && r < 0) r = 0;
      else if (neg === nobs && r > 0) r = 0;
      out[i] = r;
    } else out[i] = NaN_;
  }
  return out;
}

/** pandas < 1.2 `roll_var` (fixed window, ddof 1) then `_zsqrt`. */
function rollingStd(x: Column, win: number): Column {
  const n = x.length;
  const out = new Float64Array(n);
  let nobs = 0;
  let mean = 0;
  let ssq = 0;
  const calc = () => {
    if (nobs >= win && nobs > 1) {
      const r = ssq / (nobs - 1);
      return Math.sqrt(r < 0 ? 0 : r);
    }
    return NaN_;
  };
  const add = (v: number) => {
    if (Number.isNaN(v)) return;
    nobs += 1;
    const delta = v - mean;
    mean = mean + delta / nobs;
    ssq = ssq + ((nobs - 1) * delta ** 2) / nobs;
  };
  const remove = (v: number) => {
    nobs -= 1;
    if (nobs) {
      const delta = v - mean;
      mean = mean - delta / nobs;
      ssq = ssq - ((nobs + 1) * delta ** 2) / nobs;
    } else {
      mean = 0;
      ssq = 0;
    }
  };
  const first = Math.min(win, n);
  for (let i = 0; i < first; i++) {
    add(x[i]);
    out[i] = calc();
  }
  for (let i = first; i < n; i++) {
    const val = x[i];
    const prev = x[i - win];
    if (!Number.isNaN(val)) {
      if (!Number.isNaN(prev)) {
        const delta = val - prev;
        const old = mean;
        mean += delta / nobs;
        ssq += (((nobs - 1) * val + (nobs + 1) * prev - 2 * nobs * old) * delta) / nobs;
      } else add(val);
    } else if (!Number.isNaN(prev)) remove(prev);
    out[i] = calc();
  }
  return out;
}

/** pandas `ewma(com, adjust=True, ignore_na=False, minp=0)`. */
function ewm(x: Column, com: number): Column {
  const n = x.length;
  const out = new Float64Array(n);
  if (n === 0) return out;
  const alpha = 1 / (1 + com);
  const factor = 1 - alpha;
  let avg = x[0];
  let nobs = Number.isNaN(avg) ? 0 : 1;
  out[0] = nobs >= 1 ? avg : NaN_;
  let oldWt = 1;
  for (let i = 1; i < n; i++) {
    const cur = x[i];
    const isObs = !Number.isNaN(cur);
    if (isObs) nobs++;
    if (!Number.isNaN(avg)) {
      oldWt *= factor;
      if (isObs) {
        if (avg !== cur) avg = (oldWt * avg + 1 * cur) / (oldWt + 1);
        oldWt += 1;
      }
    } else if (isObs) avg = cur;
    out[i] = nobs >= 1 ? avg : NaN_;
  }
  return out;
}

/** pandas `cumsum(skipna=True)`: NaN shown where the input is NaN, skipped in the sum. */
function cumsum(x: Column): Column {
  let s = 0;
  return map(x.length, (i) => {
    if (Number.isNaN(x[i])) return NaN_;
    s = s + x[i];
    return s;
  });
}

/** Window extreme by scanning: NaN until `w` values. */
function rollingExtreme(x: Column, w: number, pick: (a: number, b: number) => number): Column {
  return map(x.length, (i) => {
    if (i < w - 1) return NaN_;
    let e = x[i - w + 1];
    for (let j = i - w + 2; j <= i; j++) e = pick(e, x[j]);
    return e;
  });
}

function fromF(series: BarSeries, width: number, columns: Column[]): Float64Array {
  const n = series.date.length;
  const out = new Float64Array(n * width).fill(NaN_);
  for (let t = 1; t < n; t++) for (let j = 0; j < width; j++) out[t * width + j] = columns[j][t - 1];
  return out;
}

/**
 * FEATURES.md §2-§3 computed on F = bars 1 .. N-1 (every bar with a return; FEATURES' own F also
 * drops the last bar, whose row is then the provisional newest row here). Row-major, N rows.
 */
export function referenceOracle(series: BarSeries): Float64Array {
  const N = series.date.length;
  const m = Math.max(0, N - 1);
  const at = (col: Float64Array) => map(m, (p) => col[p + 1]);
  const open = at(series.open);
  const high = at(series.high);
  const low = at(series.low);
  const close = at(series.close);
  const volume = at(series.volume);
  const ret = map(m, (p) => series.close[p + 1] / series.close[p]);

  const fast = ewm(close, 5.5);
  const slow = ewm(close, 12.5);
  const macd = map(m, (p) => fast[p] - slow[p]);
  const signal = ewm(macd, 4);
  const macdDiff = map(m, (p) => macd[p] - signal[p]);
  const ma50 = rollingMean(close, 50);
  const ma200 = rollingMean(close, 200);

  const sar = new Float64Array(m).fill(NaN_);
  if (m >= 5) {
    let uptrend = false;
    let af = 0.02;
    let prior = Math.max(...close.subarray(0, 5));
    let ep = Math.min(...close.subarray(0, 5));
    for (let p = 5; p < m; p++) {
      if (uptrend) {
        sar[p] = prior + af * (ep - prior);
        if (low[p] < sar[p]) {
          uptrend = false;
          ep = Math.min(...close.subarray(p - 5, p + 1));
        } else if (close[p] > ep) {
          ep = close[p];
          af = Math.min(0.2, af + 0.02);
        }
      } else {
        sar[p] = prior - af * (prior - ep);
        if (high[p] > sar[p]) {
          uptrend = true;
          ep = Math.max(...close.subarray(p - 5, p + 1));
        } else if (close[p] < ep) {
          ep = close[p];
          af = Math.min(0.2, af + 0.02);
        }
      }
      prior = sar[p];
    }
  }

  const min14 = rollingExtreme(close, 14, Math.min);
  const max14 = rollingExtreme(close, 14, Math.max);
  const stochastic = map(m, (p) => ((close[p] - min14[p]) / (max14[p] - min14[p])) * 100);

  const tp = map(m, (p) => (high[p] + low[p] + close[p]) / 3);
  const tpMean = rollingMean(tp, 20);
  const d = map(m, (p) => tp[p] - tpMean[p]);
  const mad = rollingMean(map(m, (p) => Math.abs(d[p])), 20);
  const cci = map(m, (p) => d[p] / (0.15 * mad[p]));

  const pnl = map(m, (p) => (p === 0 ? NaN_ : close[p - 1] - close[p]));
  const rsi = new Float64Array(m).fill(NaN_);
  if (m > 14) {
    let g = 0;
    let l = 0;
    for (let p = 0; p < 14; p++) {
      if (pnl[p] > 0) g += pnl[p];
      if (pnl[p] < 0) l += pnl[p];
    }
    let gains = g / 14;
    let losses = Math.abs(l) / 14;
    for (let p = 14; p < m; p++) {
      if (pnl[p] > 0) gains = (gains * 13 + pnl[p]) / 14;
      else losses = (losses * 13 + Math.abs(pnl[p])) / 14;
      const rs = losses === 0 ? 100 : gains / losses;
      rsi[p] = 100 - 100 / (1 + rs);
    }
  }

  const bbMean = rollingMean(close, 21);
  const bbStd = rollingStd(close, 21);
  const bollinger = map(m, (p) => ((close[p] - bbMean[p]) / 2) * bbStd[p]);

  // Row-wise max skipping NaN: the next close is NaN past the end.
  const tr = map(m, (p) => {
    const next = p + 1 < m ? close[p + 1] : NaN_;
    const cands = [high[p] - low[p], high[p] - next, low[p] - next].filter((v) => !Number.isNaN(v));
    return cands.length ? Math.max(...cands) : NaN_;
  });
  const atr = rollingMean(tr, 14);
  const obv = cumsum(map(m, (p) => (pnl[p] < 0 ? -volume[p] : volume[p])));
  const mfm = map(m, (p) => (close[p] - low[p]) / (high[p] - low[p]) / (high[p] - low[p]));
  const adl = cumsum(map(m, (p) => volume[p] * mfm[p]));
  const adlFast = ewm(adl, 1);
  const adlSlow = ewm(adl, 4.5);
  const chaikin = map(m, (p) => adlFast[p] - adlSlow[p]);

  return fromF(series, 17, [
    ret,
    map(m, (p) => close[p] / open[p]),
    map(m, (p) => close[p] / high[p]),
    map(m, (p) => close[p] / low[p]),
    macdDiff,
    map(m, (p) => ma50[p] - ma200[p]),
    sar,
    stochastic,
    cci,
    rsi,
    rollingStd(ret, 5),
    rollingStd(ret, 21),
    rollingStd(ret, 60),
    bollinger,
    atr,
    obv,
    chaikin,
  ]);
}

/** The causal set as documented in src/features/causal.ts, over all bars. Row-major, N rows. */
export function causalOracle(series: BarSeries): Float64Array {
  const { open, high, low, close, volume } = series;
  const n = close.length;
  const ret = map(n, (t) => (t === 0 ? NaN_ : close[t] / close[t - 1]));
  const fast = ewm(close, 5.5);
  const slow = ewm(close, 12.5);
  const macd = map(n, (t) => fast[t] - slow[t]);
  const signal = ewm(macd, 4);
  const ma50 = rollingMean(close, 50);
  const ma200 = rollingMean(close, 200);

  const sar = new Float64Array(n).fill(NaN_);
  if (n >= 2) {
    let up = close[1] >= close[0];
    let s = up ? Math.min(low[0], low[1]) : Math.max(high[0], high[1]);
    let ep = up ? Math.max(high[0], high[1]) : Math.min(low[0], low[1]);
    let af = 0.02;
    sar[1] = s;
    for (let t = 2; t < n; t++) {
      s = s + af * (ep - s);
      if (up) {
        s = Math.min(s, low[t - 1], low[t - 2]);
        if (low[t] < s) [up, s, ep, af] = [false, ep, low[t], 0.02];
        else if (high[t] > ep) [ep, af] = [high[t], Math.min(0.2, af + 0.02)];
      } else {
        s = Math.max(s, high[t - 1], high[t - 2]);
        if (high[t] > s) [up, s, ep, af] = [true, ep, high[t], 0.02];
        else if (low[t] < ep) [ep, af] = [low[t], Math.min(0.2, af + 0.02)];
      }
      sar[t] = s;
    }
  }

  const hh = rollingExtreme(high, 14, Math.max);
  const ll = rollingExtreme(low, 14, Math.min);
  const tp = map(n, (t) => (high[t] + low[t] + close[t]) / 3);
  const tpMean = rollingMean(tp, 20);
  const d = map(n, (t) => tp[t] - tpMean[t]);
  const mad = rollingMean(map(n, (t) => Math.abs(d[t])), 20);

  const rsi = new Float64Array(n).fill(NaN_);
  const atr = new Float64Array(n).fill(NaN_);
  if (n > 14) {
    const change = (t: number) => close[t] - close[t - 1];
    const trOf = (t: number) => Math.max(high[t] - low[t], Math.abs(high[t] - close[t - 1]), Math.abs(low[t] - close[t - 1]));
    let g = 0;
    let l = 0;
    let trSum = 0;
    for (let t = 1; t <= 14; t++) {
      g += Math.max(change(t), 0);
      l += Math.max(-change(t), 0);
      trSum += trOf(t);
    }
    let ag = g / 14;
    let al = l / 14;
    let a = trSum / 14;
    for (let t = 14; t < n; t++) {
      if (t > 14) {
        ag = (ag * 13 + Math.max(change(t), 0)) / 14;
        al = (al * 13 + Math.max(-change(t), 0)) / 14;
        a = (a * 13 + trOf(t)) / 14;
      }
      rsi[t] = al === 0 ? (ag === 0 ? 50 : 100) : 100 - 100 / (1 + ag / al);
      atr[t] = a;
    }
  }

  const excess = map(Math.max(0, n - 1), (t) => ret[t + 1] - 1);
  const vol = (w: number) => {
    const s = rollingStd(excess, w);
    return map(n, (t) => (t === 0 ? NaN_ : s[t - 1]));
  };
  const bbMean = rollingMean(close, 20);
  const bbStd = rollingStd(close, 20);

  const signed = map(Math.max(0, n - 1), (t) => {
    const c = close[t + 1] - close[t];
    return c > 0 ? volume[t + 1] : c < 0 ? -volume[t + 1] : 0;
  });
  const signedMean = rollingMean(signed, 20);
  const volumeMean = rollingMean(volume.subarray(1), 20);
  let adlSum = 0;
  const adl = map(n, (t) => {
    const r = high[t] - low[t];
    adlSum += (r > 0 ? (close[t] - low[t] - (high[t] - close[t])) / r : 0) * volume[t];
    return adlSum;
  });
  const adl3 = ewm(adl, 1);
  const adl10 = ewm(adl, 4.5);
  const vol10 = ewm(volume, 4.5);

  const columns = [
    ret,
    map(n, (t) => close[t] / open[t]),
    map(n, (t) => close[t] / high[t]),
    map(n, (t) => close[t] / low[t]),
    map(n, (t) => (macd[t] - signal[t]) / close[t]),
    map(n, (t) => ma50[t] / ma200[t] - 1),
    map(n, (t) => (close[t] - sar[t]) / close[t]),
    map(n, (t) => ((close[t] - ll[t]) / (hh[t] - ll[t])) * 100),
    map(n, (t) => d[t] / (0.015 * mad[t])),
    rsi,
    vol(5),
    vol(21),
    vol(60),
    map(n, (t) => {
      const lower = bbMean[t] - 2 * bbStd[t];
      return (close[t] - lower) / (bbMean[t] + 2 * bbStd[t] - lower);
    }),
    map(n, (t) => atr[t] / close[t]),
    map(n, (t) => (t === 0 ? NaN_ : signedMean[t - 1] / volumeMean[t - 1])),
    map(n, (t) => (adl3[t] - adl10[t]) / vol10[t]),
  ];
  const out = new Float64Array(n * 17);
  for (let t = 0; t < n; t++) for (let j = 0; j < 17; j++) out[t * 17 + j] = columns[j][t];
  return out;
}
