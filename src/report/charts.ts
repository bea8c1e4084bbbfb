/**
 * Charts for reports: Vega-Lite specs, compiled by vega-lite, rendered headless to SVG by
 * vega (no browser, no canvas) and rasterised to PNG by resvg.
 *
 * The spec builders are pure (data in, spec out) so commands can also embed the specs in
 * HTML or JSON; `writeChart` is the only function that touches the disk.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Resvg, type RenderedImage, type ResvgRenderOptions } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export type { TopLevelSpec } from 'vega-lite';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/**
 * Font families named, in order, by every text mark. Vega's default is `sans-serif`, which
 * resvg maps to Arial, which Debian does not ship; DejaVu Sans is Debian's `fonts-dejavu-core`
 * (installed in the container image) and is also resvg's default family here.
 */
export const CHART_FONT_FAMILIES = ['DejaVu Sans', 'Liberation Sans', 'Noto Sans', 'Lato'] as const;
const CHART_FONT = [...CHART_FONT_FAMILIES, 'sans-serif'].join(', ');

/**
 * Advance widths of DejaVu Sans (regular, bold) in thousandths of an em, for ASCII 32..126, as
 * resvg lays them out. Vega sizes the canvas, places titles and hides overlapping axis labels by
 * each text's width; with no browser canvas to measure it, it guesses 0.8 em a character, which is
 * a third too wide for DejaVu Sans: labels that fit were dropped (1.000 among them) and long titles
 * left a blank band on the right. Measured once with resvg (getBBox of each character at 1000 px).
 */
const DEJAVU_SANS_WIDTHS = {
  normal: [
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636,
    636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632,
    575, 775, 752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685,
    611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579,
    278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838,
  ],
  bold: [
    348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696,
    696, 696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734, 830, 683,
    683, 821, 837, 372, 372, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812, 774, 1103, 771,
    724, 725, 457, 365, 457, 838, 500, 500, 675, 716, 593, 716, 678, 435, 716, 712, 343, 343, 665,
    343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652, 582, 712, 365, 712, 838,
  ],
} as const;
/** Characters outside ASCII that chart texts use (minus, superscript two, ellipsis, middle dot). */
const DEJAVU_SANS_EXTRA: Record<string, readonly [normal: number, bold: number]> = {
  '−': [838, 838],
  '²': [401, 438],
  '…': [1000, 1000],
  '·': [318, 380],
};

/** The width vega should reserve for `text` in `item`'s font size and weight, in pixels. */
function dejaVuSansWidth(item: { fontSize?: number; fontWeight?: string | number }, text: unknown): number {
  const size = item.fontSize != null ? Number(item.fontSize) || 0 : 11;
  const line = text == null ? '' : String(text).trim();
  const bold = item.fontWeight === 'bold' || item.fontWeight === 'bolder' || Number(item.fontWeight) >= 600;
  const table = bold ? DEJAVU_SANS_WIDTHS.bold : DEJAVU_SANS_WIDTHS.normal;
  let units = 0;
  for (const ch of line) {
    const code = ch.codePointAt(0)!;
    units += code >= 32 && code <= 126 ? table[code - 32] : (DEJAVU_SANS_EXTRA[ch]?.[bold ? 1 : 0] ?? 640);
  }
  return (units / 1000) * size;
}

// Vega's hook for measuring text where it has no canvas (vl-convert replaces it the same way). It
// is exported at run time (from vega-scenegraph) but missing from vega's type declarations.
(vega as unknown as { textMetrics: { width: typeof dejaVuSansWidth } }).textMetrics.width = dejaVuSansWidth;

const WIDTH = 720;
const HEIGHT = 300;

/** Shared look: one font (see CHART_FONT_FAMILIES), white background, readable sizes. */
const CONFIG = {
  font: CHART_FONT,
  background: 'white',
  view: { stroke: '#d0d0d0' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#ececec' },
  // No label limit: a baseline's label carries its forecast, which the default 160 px cut off.
  legend: { labelFontSize: 11, titleFontSize: 12, orient: 'top', labelLimit: 0 },
  title: { fontSize: 14, anchor: 'start' },
} as const;

/** A date as it appears in a bundle (`YYYY-MM-DD`), a timestamp string, or a Date. */
export type ChartDate = string | Date;

/**
 * A naive forecaster drawn beside the model: it forecasts one constant for every row
 * (src/training/baselines.ts). A model worth deploying has to beat these, so every chart that
 * scores the model shows them too.
 */
export interface BaselineForecast {
  /** Shown in legends and labels, e.g. `persistence`. */
  name: string;
  prediction: number;
}

/**
 * The baselines of a bundle's `metrics.baselines` as chart lines. Persistence (tomorrow's close
 * equals today's) forecasts a return of 1 by definition, so it is drawn even for a bundle made
 * before baselines were recorded; the training mean only where it is known.
 */
export function bundleBaselines(recorded?: {
  persistence: { prediction: number };
  trainingMean: { prediction: number };
}): BaselineForecast[] {
  const out: BaselineForecast[] = [{ name: 'persistence', prediction: recorded?.persistence.prediction ?? 1 }];
  if (recorded) out.push({ name: 'training mean', prediction: recorded.trainingMean.prediction });
  return out;
}

export interface ForecastScatterInput {
  /** The actual target of each test row: the next day's return, close[t+1] / close[t]. */
  yTrue: readonly number[];
  yPred: readonly number[];
  baselines?: readonly BaselineForecast[];
  title?: string;
}

export interface ForecastVsActualInput {
  dates: readonly ChartDate[];
  yTrue: readonly number[];
  yPred: readonly number[];
  title?: string;
  /** Y axis title; the reference target is the next day's close ratio (FEATURES.md §2). */
  yTitle?: string;
}

export interface RollingErrorInput {
  dates: readonly ChartDate[];
  yTrue: readonly number[];
  yPred: readonly number[];
  baselines?: readonly BaselineForecast[];
  /** Bars per window (default 20, about a trading month). */
  window?: number;
  title?: string;
}

export interface ErrorHistogramInput {
  /** Forecast minus actual, one per test row. */
  errors: readonly number[];
  title?: string;
  maxBins?: number;
}

export interface Scores {
  mae: number;
  mse: number;
  r2: number;
}

/** One cross-validation fold: where it trained and validated, and how the model and baselines scored there. */
export interface FoldSummary {
  fold: number;
  /** First and last date of the fold's training rows. */
  train: readonly [first: ChartDate, last: ChartDate];
  /** First and last date of the fold's validation rows (the rows the scores are on). */
  validation: readonly [first: ChartDate, last: ChartDate];
  metrics: Scores;
  /** Baselines scored on the same validation rows, by name; absent from older bundles. */
  baselines?: Readonly<Record<string, Scores>>;
}

export interface FoldMetricsInput {
  folds: readonly FoldSummary[];
  title?: string;
}

export interface DeploymentComparisonInput {
  dates: readonly ChartDate[];
  /** Forecasts of the offline evaluation (the bundle's `evaluation.yPred`). */
  offline: readonly number[];
  /** Forecasts the deployed service returned for the same dates. */
  deployed: readonly (number | null)[];
  /**
   * The verdict to put in the title, as `verify` decided it; by default derived from the data the
   * way verify compares (Object.is, a missing forecast counting as a difference).
   */
  verdict?: { passed: boolean; differing: number };
  title?: string;
}

const MODEL_COLOR = '#f58518';
const ACTUAL_COLOR = '#4c78a8';
const BASELINE_COLORS = ['#54a24b', '#b279a2', '#9d755d', '#72b7b2'];
const BASELINE_DASHES = [[6, 3], [2, 2], [8, 2, 2, 2]];
const REFERENCE_COLOR = '#555555';
const DIFFERENCE_COLOR = '#e45756';

const DATE_AXIS = {
  field: 'date',
  type: 'temporal',
  title: 'Date',
  scale: { type: 'utc' },
  axis: { format: '%Y-%m-%d' },
} as const;

/**
 * Forecast against actual, one dot per test day, on equal axes: a perfect model puts every dot on
 * the y = x line, and a model that has learnt nothing puts them on a horizontal line, which is what
 * the baselines are. Where the cloud lies between the two is the honest picture of the model.
 */
export function forecastScatterSpec(input: ForecastScatterInput): TopLevelSpec {
  const { yTrue, yPred } = input;
  assertSameLength('forecastScatterSpec', { yTrue, yPred });
  const points: { actual: number; forecast: number }[] = [];
  yTrue.forEach((t, i) => {
    const p = yPred[i];
    if (Number.isFinite(t) && Number.isFinite(p)) points.push({ actual: t, forecast: p });
  });
  const baselines = (input.baselines ?? []).filter((b) => Number.isFinite(b.prediction));
  const [lo, hi] = paddedExtent([...points.flatMap((p) => [p.actual, p.forecast]), ...baselines.map((b) => b.prediction)]);
  // One domain on both axes, not niced, on a square view: the diagonal is then exactly y = x at 45°.
  const scale = { domain: [lo, hi], nice: false, zero: false };
  // Ticks at multiples of one round step, so a return of 1 (no change) always gets a tick.
  const axis = { values: roundTicks(lo, hi, 8) };
  const side = 440;
  const maes = [
    `model ${formatValue(meanAbs(points.map((p) => p.forecast - p.actual)))}`,
    ...baselines.map((b) => `${b.name} ${formatValue(meanAbs(points.map((p) => b.prediction - p.actual)))}`),
  ];
  // The highest baseline is labelled above its line, the others below, alternating sides, so
  // baselines a hair apart (persistence 1, training mean 1.0005) keep readable labels.
  const ordered = [...baselines].sort((a, b) => b.prediction - a.prediction);
  const baselineLayers = ordered.flatMap((b, k) => {
    const color = baselineColor(baselines.indexOf(b));
    const left = k % 2 === 0;
    return [
      {
        data: { values: [{ y: b.prediction }] },
        mark: { type: 'rule', color, strokeWidth: 1.5, strokeDash: [6, 3] },
        encoding: { y: { field: 'y', type: 'quantitative', scale } },
      },
      {
        data: { values: [{ y: b.prediction, label: `${b.name} baseline: forecast ${formatValue(b.prediction, 6)}` }] },
        mark: {
          type: 'text',
          color,
          fontSize: 11,
          fontWeight: 'bold',
          align: left ? 'left' : 'right',
          baseline: k === 0 ? 'bottom' : 'top',
          dy: k === 0 ? -3 : 3,
        },
        encoding: {
          x: { value: left ? 4 : side - 4 },
          y: { field: 'y', type: 'quantitative', scale },
          text: { field: 'label' },
        },
      },
    ];
  });
  const at = lo + 0.97 * (hi - lo);
  return {
    $schema: SCHEMA,
    title: {
      text: input.title ?? 'Forecast vs actual next-day return',
      subtitle: `${points.length} test days, one dot each. MAE: ${maes.join(', ')}`,
    },
    width: side,
    height: side,
    layer: [
      {
        data: { values: points },
        mark: { type: 'point', filled: true, size: 14, opacity: 0.35, color: MODEL_COLOR },
        encoding: {
          x: { field: 'actual', type: 'quantitative', title: 'Actual next-day return, close[t+1] / close[t]', scale, axis },
          y: { field: 'forecast', type: 'quantitative', title: 'Forecast next-day return', scale, axis },
        },
      },
      {
        data: { values: [{ v: lo }, { v: hi }] },
        mark: { type: 'line', color: REFERENCE_COLOR, strokeWidth: 1.2, strokeDash: [2, 2] },
        encoding: { x: { field: 'v', type: 'quantitative', scale }, y: { field: 'v', type: 'quantitative', scale } },
      },
      {
        data: { values: [{ v: at }] },
        mark: { type: 'text', text: 'perfect forecast (y = x)', color: REFERENCE_COLOR, fontSize: 11, angle: -45, align: 'right', baseline: 'bottom', dy: -3 },
        encoding: { x: { field: 'v', type: 'quantitative', scale }, y: { field: 'v', type: 'quantitative', scale } },
      },
      ...baselineLayers,
    ],
    config: CONFIG,
  } as TopLevelSpec;
}

/**
 * Actual and forecast target over the test dates: two lines on one time axis, and the
 * persistence forecast (a return of 1, no change) as a dashed third, named in the legend (a label
 * inside the plot would sit under the actuals' zigzag).
 */
export function forecastVsActualSpec(input: ForecastVsActualInput): TopLevelSpec {
  const { dates, yTrue, yPred } = input;
  assertSameLength('forecastVsActualSpec', { dates, yTrue, yPred });
  const persistence = 'Persistence forecast (1, no change)';
  const values = dates.flatMap((date, i) => [
    { date: isoDate(date), series: 'Actual', value: finiteOrNull(yTrue[i]) },
    { date: isoDate(date), series: 'Forecast', value: finiteOrNull(yPred[i]) },
    { date: isoDate(date), series: persistence, value: 1 },
  ]);
  const domain = ['Actual', 'Forecast', persistence];
  return {
    $schema: SCHEMA,
    title: input.title ?? 'Forecast vs actual',
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    mark: { type: 'line', strokeWidth: 1.2, interpolate: 'linear' },
    encoding: {
      x: DATE_AXIS,
      y: { field: 'value', type: 'quantitative', title: input.yTitle ?? 'Next-day close ratio', scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null, scale: { domain, range: [ACTUAL_COLOR, MODEL_COLOR, BASELINE_COLORS[0]] } },
      strokeDash: { field: 'series', type: 'nominal', title: null, scale: { domain, range: [[1, 0], [1, 0], [6, 3]] } },
    },
    config: CONFIG,
  } as TopLevelSpec;
}

/**
 * Mean absolute error over a trailing window of test bars, for the model and each baseline: shows
 * whether the model beats doing nothing throughout the test period or only in some stretch of it.
 */
export function rollingErrorSpec(input: RollingErrorInput): TopLevelSpec {
  const { dates, yTrue, yPred } = input;
  assertSameLength('rollingErrorSpec', { dates, yTrue, yPred });
  const requested = input.window ?? 20;
  if (!Number.isInteger(requested) || requested < 1) throw new RangeError(`window must be a positive integer, got ${requested}`);
  // A test set shorter than the window gets one window over all of it, said so in the title.
  const window = Math.max(1, Math.min(requested, dates.length));
  const baselines = (input.baselines ?? []).filter((b) => Number.isFinite(b.prediction));
  const forecasters = [
    { name: 'model', forecast: (i: number) => yPred[i] },
    ...baselines.map((b) => ({ name: `${b.name} (forecast ${formatValue(b.prediction, 6)})`, forecast: () => b.prediction })),
  ];
  const values = forecasters.flatMap((f) =>
    trailingMeans(
      yTrue.map((t, i) => Math.abs(f.forecast(i) - t)),
      window,
    ).flatMap((mae, i) => (mae === null ? [] : [{ date: isoDate(dates[i]), forecaster: f.name, mae }])),
  );
  const names = forecasters.map((f) => f.name);
  return {
    $schema: SCHEMA,
    title: {
      text: input.title ?? `Rolling MAE, ${window}-bar window`,
      subtitle: `Each point: mean absolute error of the ${window} test bars ending that day (lower is better)`,
    },
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    mark: { type: 'line', interpolate: 'linear', strokeWidth: 1.6 },
    encoding: {
      x: DATE_AXIS,
      // Errors start at zero: a zero-based axis shows how large the gaps between the lines are.
      y: { field: 'mae', type: 'quantitative', title: `MAE over ${window} bars`, scale: { zero: true } },
      color: { field: 'forecaster', type: 'nominal', title: null, scale: { domain: names, range: [MODEL_COLOR, ...baselines.map((_, i) => baselineColor(i))] } },
      // Baselines often score alike (persistence and the training mean differ by a hair): each its own dash.
      strokeDash: { field: 'forecaster', type: 'nominal', title: null, scale: { domain: names, range: [[1, 0], ...baselines.map((_, i) => BASELINE_DASHES[i % BASELINE_DASHES.length])] } },
    },
    config: CONFIG,
  } as TopLevelSpec;
}

/** Distribution of forecast errors, with a labelled rule at zero error. */
export function errorHistogramSpec(input: ErrorHistogramInput): TopLevelSpec {
  const finite = input.errors.filter(Number.isFinite);
  const values = finite.map((error) => ({ error }));
  const mean = finite.length > 0 ? finite.reduce((s, e) => s + e, 0) / finite.length : Number.NaN;
  return {
    $schema: SCHEMA,
    title: {
      text: input.title ?? 'Forecast error distribution',
      subtitle: `${finite.length} test days; mean error ${formatValue(mean)} (bias), mean absolute error ${formatValue(meanAbs(finite))}`,
    },
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    layer: [
      {
        mark: { type: 'bar', color: ACTUAL_COLOR, binSpacing: 1 },
        encoding: {
          x: {
            field: 'error',
            type: 'quantitative',
            // Anchored at 0, so a bin edge and a tick fall on zero error.
            bin: { maxbins: input.maxBins ?? 40, anchor: 0 },
            title: 'Forecast error (forecast − actual)',
            // Round ticks through zero: the bins' own edges are labelled every other, and 0 may be skipped.
            axis: { values: roundTicks(...extent([0, ...finite]), 10) },
          },
          y: { aggregate: 'count', type: 'quantitative', title: 'Count' },
        },
      },
      referenceLine({ axis: 'x', at: 0, label: 'zero error', color: DIFFERENCE_COLOR }),
    ],
    config: CONFIG,
  } as TopLevelSpec;
}

/**
 * Cross-validation by fold: a timeline of each fold's training and validation dates (with the
 * dates written out beside it), then MAE, MSE and R² per fold, the model's bar beside each
 * baseline's on the same validation rows.
 */
export function foldMetricsSpec(input: FoldMetricsInput): TopLevelSpec {
  const folds = input.folds;
  const label = (f: FoldSummary): string => `fold ${f.fold}`;
  const foldOrder = folds.map(label);
  const baselineNames = [...new Set(folds.flatMap((f) => Object.keys(f.baselines ?? {})))];
  const forecasters = ['model', ...baselineNames];
  const colors = { domain: forecasters, range: [MODEL_COLOR, ...baselineNames.map((_, i) => baselineColor(i))] };
  const rowHeight = 26;
  const y = { field: 'fold', type: 'ordinal', title: null, sort: foldOrder } as const;

  const spans = folds.flatMap((f) => [
    { fold: label(f), part: 'training', start: isoDate(f.train[0]), end: isoDate(f.train[1]) },
    { fold: label(f), part: 'validation', start: isoDate(f.validation[0]), end: isoDate(f.validation[1]) },
  ]);
  const ranges = spans.map((s) => ({ fold: s.fold, part: s.part, text: `${shortDate(s.start)} .. ${shortDate(s.end)}` }));

  const metrics = [
    { key: 'mae', title: 'MAE (lower is better)' },
    { key: 'mse', title: 'MSE (lower is better)' },
    { key: 'r2', title: 'R² (higher is better)' },
  ] as const;
  const scores = folds.flatMap((f) =>
    [['model', f.metrics] as const, ...Object.entries(f.baselines ?? {})].flatMap(([forecaster, s]) =>
      metrics.map((m) => ({ fold: label(f), forecaster, metric: m.key, value: finiteOrNull(s[m.key]) })),
    ),
  );

  return {
    $schema: SCHEMA,
    title: {
      text: input.title ?? 'Cross-validation by fold',
      subtitle:
        baselineNames.length > 0
          ? `Model vs ${baselineNames.join(' and ')} baselines, scored on each fold's validation rows`
          : "Model scores on each fold's validation rows (no baselines recorded in this bundle)",
    },
    vconcat: [
      {
        hconcat: [
          {
            title: { text: 'Dates of each fold', fontSize: 12 },
            width: 380,
            height: rowHeight * folds.length,
            data: { values: spans },
            mark: { type: 'bar', height: rowHeight * 0.6 },
            encoding: {
              y,
              x: { ...DATE_AXIS, field: 'start', title: null, axis: { format: '%Y' } },
              x2: { field: 'end' },
              color: { field: 'part', type: 'nominal', title: null, scale: { domain: ['training', 'validation'], range: ['#c6d4e6', ACTUAL_COLOR] } },
            },
          },
          {
            width: 320,
            height: rowHeight * folds.length,
            view: { stroke: null },
            data: { values: ranges },
            mark: { type: 'text', fontSize: 11, align: 'center' },
            encoding: {
              y: { ...y, axis: null },
              x: {
                field: 'part',
                type: 'ordinal',
                title: null,
                sort: ['training', 'validation'],
                axis: { orient: 'top', domain: false, ticks: false, labelAngle: 0, labelFontWeight: 'bold', labelExpr: "datum.value + ' dates'" },
              },
              text: { field: 'text' },
            },
          },
        ],
        resolve: { scale: { color: 'independent' } },
      },
      {
        hconcat: metrics.map((m) => ({
          width: 220,
          height: 200,
          data: { values: scores },
          transform: [{ filter: { field: 'metric', equal: m.key } }],
          layer: [
            {
              mark: { type: 'bar' },
              encoding: {
                // Folds are categories in training order, not a continuous axis.
                x: { field: 'fold', type: 'ordinal', title: null, sort: foldOrder, axis: { labelAngle: 0 } },
                xOffset: { field: 'forecaster', type: 'nominal', sort: forecasters },
                y: { field: 'value', type: 'quantitative', title: m.title, scale: { zero: true } },
                color: { field: 'forecaster', type: 'nominal', title: null, scale: colors },
                tooltip: [{ field: 'fold' }, { field: 'forecaster' }, { field: 'value', title: m.key, format: '.6g' }],
              },
            },
            // R² is signed, and 0 is what forecasting the validation mean scores: worth a label.
            ...(m.key === 'r2' ? [referenceLine({ axis: 'y', at: 0, label: 'R² = 0', color: REFERENCE_COLOR })] : []),
          ],
        })),
      },
    ],
    resolve: { scale: { color: 'independent' } },
    config: CONFIG,
  } as TopLevelSpec;
}

/**
 * Offline versus deployed forecasts for `verify`, with the verdict in the title: both series on
 * one axis (deployed dashed, so a perfect match shows both), and below it their difference on
 * every date. Parity makes the difference zero everywhere, so the lower panel draws the zero line
 * and says how many dates lie on it, and marks each date that does not.
 */
export function deploymentComparisonSpec(input: DeploymentComparisonInput): TopLevelSpec {
  const { dates, offline, deployed } = input;
  assertSameLength('deploymentComparisonSpec', { dates, offline, deployed });
  const series = dates.flatMap((date, i) => [
    { date: isoDate(date), source: 'Offline', value: finiteOrNull(offline[i]) },
    { date: isoDate(date), source: 'Deployed', value: finiteOrNull(deployed[i]) },
  ]);
  const differing = dates.flatMap((date, i) => {
    const b = deployed[i];
    if (b !== null && Object.is(b, offline[i])) return [];
    const difference = b === null ? null : finiteOrNull(b - offline[i]);
    return [{ date: isoDate(date), difference, kind: difference === null ? 'no forecast' : 'differs' }];
  });
  const verdict = input.verdict ?? { passed: differing.length === 0, differing: differing.length };
  const identical = dates.length - differing.length;
  const headline = verdict.passed
    ? `PASS: all ${dates.length} deployed forecasts equal the offline ones, bit for bit`
    : `FAIL: ${verdict.differing} of ${dates.length} deployed forecasts differ from the offline ones`;
  const plotted = differing.filter((d) => d.difference !== null && d.difference !== 0);
  const missing = differing.filter((d) => d.difference === null).map((d) => ({ date: d.date, difference: 0 }));
  // Nothing to plot but zero: a symmetric domain centres the zero line instead of a flat, empty axis.
  const yScale = plotted.length === 0 ? { domain: [-1, 1] } : { zero: true };
  const zeroLabel =
    differing.length === 0
      ? `no difference: all ${identical} dates identical`
      : `0 = identical (${identical} of ${dates.length} dates)${missing.length > 0 ? `; + on the line: no forecast (${missing.length})` : ''}`;
  return {
    $schema: SCHEMA,
    title: { text: headline, subtitle: input.title ?? 'Deployed vs offline forecasts', color: verdict.passed ? '#2a7a2a' : '#b3261e' },
    vconcat: [
      {
        width: WIDTH,
        height: HEIGHT,
        data: { values: series },
        mark: { type: 'line', strokeWidth: 1.5 },
        encoding: {
          x: DATE_AXIS,
          y: { field: 'value', type: 'quantitative', title: 'Forecast', scale: { zero: false } },
          color: {
            field: 'source',
            type: 'nominal',
            title: null,
            scale: { domain: ['Offline', 'Deployed'], range: ['#4c78a8', '#e45756'] },
          },
          // Same field as color, so the two share one legend showing colour and dash.
          strokeDash: {
            field: 'source',
            type: 'nominal',
            title: null,
            scale: { domain: ['Offline', 'Deployed'], range: [[1, 0], [5, 4]] },
          },
        },
      },
      {
        width: WIDTH,
        height: 140,
        layer: [
          {
            data: { values: [{ zero: 0 }] },
            mark: { type: 'rule', color: REFERENCE_COLOR, strokeWidth: 1.2 },
            encoding: { y: { field: 'zero', type: 'quantitative', title: 'Deployed − offline', scale: yScale, axis: plotted.length === 0 ? { values: [0] } : {} } },
          },
          {
            data: { values: [{ zero: 0, label: zeroLabel }] },
            mark: { type: 'text', color: REFERENCE_COLOR, fontSize: 11, align: 'left', baseline: 'bottom', dx: 4, dy: -4 },
            encoding: { x: { value: 0 }, y: { field: 'zero', type: 'quantitative' }, text: { field: 'label' } },
          },
          {
            data: { values: plotted },
            mark: { type: 'point', filled: true, size: 30, color: DIFFERENCE_COLOR },
            encoding: { x: DATE_AXIS, y: { field: 'difference', type: 'quantitative' } },
          },
          {
            // A date the service gave no forecast for has no difference to plot: a cross on the zero line.
            data: { values: missing },
            mark: { type: 'point', shape: 'cross', size: 60, color: '#222222', filled: true },
            encoding: { x: DATE_AXIS, y: { field: 'difference', type: 'quantitative' } },
          },
        ],
      },
    ],
    // One date axis for both panels, so the difference panel has dates even when it plots no point.
    resolve: { scale: { x: 'shared' } },
    config: CONFIG,
  } as TopLevelSpec;
}

/** A labelled rule across the whole view at one value of `axis`. */
function referenceLine(o: { axis: 'x' | 'y'; at: number; label: string; color: string }): object {
  return {
    data: { values: [{ at: o.at, label: o.label }] },
    layer: [
      {
        mark: { type: 'rule', color: o.color, strokeDash: [4, 3], strokeWidth: 1.5 },
        encoding: { [o.axis]: { field: 'at', type: 'quantitative' } },
      },
      {
        mark:
          o.axis === 'x'
            ? { type: 'text', color: o.color, fontSize: 11, align: 'left', baseline: 'top', dx: 4, dy: 4 }
            : { type: 'text', color: o.color, fontSize: 11, align: 'left', baseline: 'bottom', dx: 4, dy: -3 },
        encoding: {
          [o.axis]: { field: 'at', type: 'quantitative' },
          [o.axis === 'x' ? 'y' : 'x']: { value: 0 },
          text: { field: 'label' },
        },
      },
    ],
  };
}

export interface WriteChartOptions {
  /** Pixel density of the PNG relative to the SVG's size (default 2, for sharp text). */
  scale?: number;
  /** Extra font files (TTF/OTF) for resvg, for machines without a usable system font. */
  fontFiles?: string[];
}

export interface ChartFiles {
  svg: string;
  png: string;
}

/** Compile a Vega-Lite spec and render it to an SVG string, headless. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const { spec: vgSpec } = compile(spec);
  // renderer 'none': no scenegraph rendering in the View itself; toSVG renders on its own.
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterise an SVG. Throws if no font can draw text (the chart would be unlabelled). */
export function rasterise(svg: string, options: WriteChartOptions = {}): RenderedImage {
  const scale = options.scale ?? 2;
  if (!(scale > 0)) throw new RangeError(`scale must be positive, got ${scale}`);
  const resvg = new Resvg(svg, {
    font: fontOptions(options.fontFiles ?? []),
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    logLevel: 'off',
  });
  return resvg.render();
}

/** Rasterise an SVG to PNG bytes. */
export function svgToPng(svg: string, options: WriteChartOptions = {}): Buffer {
  return rasterise(svg, options).asPng();
}

/** Render `spec` to `${outBase}.svg` and `${outBase}.png`; returns the two paths. */
export async function writeChart(
  spec: TopLevelSpec,
  outBase: string,
  options: WriteChartOptions = {},
): Promise<ChartFiles> {
  const svg = await renderSvg(spec);
  const png = svgToPng(svg, options);
  const files = { svg: `${outBase}.svg`, png: `${outBase}.png` };
  await mkdir(dirname(outBase), { recursive: true });
  await Promise.all([writeFile(files.svg, svg, 'utf8'), writeFile(files.png, png)]);
  return files;
}

// ---------------------------------------------------------------------------------------

const fontChecked = new Set<string>();

/**
 * Font options for resvg. resvg silently drops text it has no font for (it falls back to any
 * loaded font when the named family is missing, but with no font at all the chart would come
 * out unlabelled), so check once per set of extra font files that text can be drawn.
 */
function fontOptions(fontFiles: string[]): NonNullable<ResvgRenderOptions['font']> {
  const family = CHART_FONT_FAMILIES[0];
  const font = { loadSystemFonts: true, fontFiles, defaultFontFamily: family, sansSerifFamily: family };
  const key = fontFiles.join('\n');
  if (!fontChecked.has(key)) {
    if (!canDrawText(font)) {
      throw new Error(
        'No font to draw chart text: no system font was found (on Debian: apt-get install ' +
          'fonts-dejavu-core) and no font file was passed (WriteChartOptions.fontFiles).',
      );
    }
    fontChecked.add(key);
  }
  return font;
}

function canDrawText(font: NonNullable<ResvgRenderOptions['font']>): boolean {
  const probe =
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">' +
    '<text x="2" y="15" font-family="no-such-family">Hg</text></svg>';
  // Text without a font is dropped while parsing, leaving nothing to bound.
  return new Resvg(probe, { font, logLevel: 'off' }).innerBBox() !== undefined;
}

function baselineColor(index: number): string {
  return BASELINE_COLORS[index % BASELINE_COLORS.length];
}

/** The extent of the finite values, padded by 4 % each side so no dot sits on the frame. */
function paddedExtent(values: readonly number[]): [number, number] {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return [0.99, 1.01];
  let [lo, hi] = extent(finite);
  if (hi - lo < 1e-9) [lo, hi] = [lo - 0.01, hi + 0.01];
  const pad = (hi - lo) * 0.04;
  return [lo - pad, hi + pad];
}

/** Smallest and largest of non-empty finite `values` (a loop: spreading a long array into Math.min overflows the stack). */
function extent(values: readonly number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** Multiples of a 1, 2 or 5 × 10^k step within [lo, hi], about `count` of them. */
function roundTicks(lo: number, hi: number, count: number): number[] {
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const out: number[] = [];
  // Integer multiples, rounded, so 1 is exactly 1 and not 0.9999999999999999.
  for (let k = Math.ceil(lo / step); k * step <= hi; k++) out.push(Number((k * step).toPrecision(12)));
  return out;
}

function meanAbs(values: readonly number[]): number {
  const finite = values.filter(Number.isFinite);
  return finite.length === 0 ? Number.NaN : finite.reduce((s, v) => s + Math.abs(v), 0) / finite.length;
}

/** The mean of each full trailing window of `window` values; null where the window is short or holds a non-finite value. */
function trailingMeans(values: readonly number[], window: number): (number | null)[] {
  let sum = 0;
  let bad = 0;
  return values.map((v, i) => {
    if (Number.isFinite(v)) sum += v;
    else bad++;
    if (i >= window) {
      const old = values[i - window];
      if (Number.isFinite(old)) sum -= old;
      else bad--;
    }
    return i + 1 >= window && bad === 0 ? sum / window : null;
  });
}

/** A number for a label: `digits` significant digits, no trailing zeros. */
function formatValue(value: number, digits = 4): string {
  return Number.isFinite(value) ? String(Number(value.toPrecision(digits))) : 'n/a';
}

/** `YYYY-MM-DD` of a date string or ISO timestamp, for labels. */
function shortDate(iso: string): string {
  return /^\d{4}-\d{2}-\d{2}/.test(iso) ? iso.slice(0, 10) : iso;
}

function isoDate(date: ChartDate): string {
  if (typeof date === 'string') return date;
  if (Number.isNaN(date.getTime())) throw new RangeError('invalid Date in chart data');
  return date.toISOString();
}

function finiteOrNull(value: number | null | undefined): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function assertSameLength(where: string, arrays: Record<string, readonly unknown[]>): void {
  const entries = Object.entries(arrays);
  const [firstName, first] = entries[0];
  for (const [name, array] of entries.slice(1)) {
    if (array.length !== first.length) {
      throw new RangeError(`${where}: ${name} has ${array.length} values but ${firstName} has ${first.length}`);
    }
  }
}
