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

const WIDTH = 720;
const HEIGHT = 300;

/** Shared look: one font (see CHART_FONT_FAMILIES), white background, readable sizes. */
const CONFIG = {
  font: CHART_FONT,
  background: 'white',
  view: { stroke: '#d0d0d0' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#ececec' },
  legend: { labelFontSize: 11, titleFontSize: 12, orient: 'top' },
  title: { fontSize: 14, anchor: 'start' },
} as const;

/** A date as it appears in a bundle (`YYYY-MM-DD`), a timestamp string, or a Date. */
export type ChartDate = string | Date;

export interface ForecastVsActualInput {
  dates: readonly ChartDate[];
  yTrue: readonly number[];
  yPred: readonly number[];
  title?: string;
  /** Y axis title; the reference target is the next day's close ratio (FEATURES.md §2). */
  yTitle?: string;
}

export interface ErrorHistogramInput {
  /** Forecast minus actual, one per test row. */
  errors: readonly number[];
  title?: string;
  maxBins?: number;
}

export interface FoldMetrics {
  fold: number;
  mae: number;
  mse: number;
  r2: number;
}

export interface FoldMetricsInput {
  folds: readonly FoldMetrics[];
  title?: string;
}

export interface DeploymentComparisonInput {
  dates: readonly ChartDate[];
  /** Forecasts of the offline evaluation (the bundle's `evaluation.yPred`). */
  offline: readonly number[];
  /** Forecasts the deployed service returned for the same dates. */
  deployed: readonly (number | null)[];
  title?: string;
}

/** Actual and forecast target over the test dates: two lines on one time axis. */
export function forecastVsActualSpec(input: ForecastVsActualInput): TopLevelSpec {
  const { dates, yTrue, yPred } = input;
  assertSameLength('forecastVsActualSpec', { dates, yTrue, yPred });
  const values = dates.flatMap((date, i) => [
    { date: isoDate(date), series: 'Actual', value: finiteOrNull(yTrue[i]) },
    { date: isoDate(date), series: 'Forecast', value: finiteOrNull(yPred[i]) },
  ]);
  return {
    $schema: SCHEMA,
    title: input.title ?? 'Forecast vs actual',
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    mark: { type: 'line', strokeWidth: 1.5, interpolate: 'linear' },
    encoding: {
      x: { field: 'date', type: 'temporal', title: 'Date', scale: { type: 'utc' }, axis: { format: '%Y-%m-%d' } },
      y: { field: 'value', type: 'quantitative', title: input.yTitle ?? 'Next-day close ratio', scale: { zero: false } },
      color: {
        field: 'series',
        type: 'nominal',
        title: null,
        scale: { domain: ['Actual', 'Forecast'], range: ['#4c78a8', '#f58518'] },
      },
    },
    config: CONFIG,
  } as TopLevelSpec;
}

/** Distribution of forecast errors, with a rule at zero. */
export function errorHistogramSpec(input: ErrorHistogramInput): TopLevelSpec {
  const values = input.errors.filter(Number.isFinite).map((error) => ({ error }));
  return {
    $schema: SCHEMA,
    title: input.title ?? 'Forecast error distribution',
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    layer: [
      {
        mark: { type: 'bar', color: '#4c78a8', binSpacing: 1 },
        encoding: {
          x: {
            field: 'error',
            type: 'quantitative',
            bin: { maxbins: input.maxBins ?? 40 },
            title: 'Forecast error (forecast − actual)',
          },
          y: { aggregate: 'count', type: 'quantitative', title: 'Count' },
        },
      },
      {
        data: { values: [{ zero: 0 }] },
        mark: { type: 'rule', color: '#e45756', strokeDash: [4, 3], strokeWidth: 1.5 },
        encoding: { x: { field: 'zero', type: 'quantitative' } },
      },
    ],
    config: CONFIG,
  } as TopLevelSpec;
}

/** Cross-validation metrics per fold: one bar chart per metric, each on its own scale. */
export function foldMetricsSpec(input: FoldMetricsInput): TopLevelSpec {
  const metrics = [
    { key: 'mae', title: 'MAE', color: '#4c78a8' },
    { key: 'mse', title: 'MSE', color: '#f58518' },
    { key: 'r2', title: 'R²', color: '#54a24b' },
  ] as const;
  const values = input.folds.map((f) => ({
    fold: String(f.fold),
    mae: finiteOrNull(f.mae),
    mse: finiteOrNull(f.mse),
    r2: finiteOrNull(f.r2),
  }));
  return {
    $schema: SCHEMA,
    title: input.title ?? 'Cross-validation metrics by fold',
    data: { values },
    hconcat: metrics.map((m) => ({
      width: 220,
      height: 220,
      mark: { type: 'bar', color: m.color },
      encoding: {
        // Folds are categories in training order, not a continuous axis.
        x: { field: 'fold', type: 'ordinal', title: 'Fold', sort: null, axis: { labelAngle: 0 } },
        y: { field: m.key, type: 'quantitative', title: m.title },
        tooltip: [{ field: 'fold' }, { field: m.key, title: m.title, format: '.6g' }],
      },
    })),
    config: CONFIG,
  } as TopLevelSpec;
}

/**
 * Offline versus deployed forecasts for `verify`: both series on one axis (deployed dashed,
 * so a perfect match shows both), and below it their difference, which parity makes zero.
 */
export function deploymentComparisonSpec(input: DeploymentComparisonInput): TopLevelSpec {
  const { dates, offline, deployed } = input;
  assertSameLength('deploymentComparisonSpec', { dates, offline, deployed });
  const series = dates.flatMap((date, i) => [
    { date: isoDate(date), source: 'Offline', value: finiteOrNull(offline[i]) },
    { date: isoDate(date), source: 'Deployed', value: finiteOrNull(deployed[i]) },
  ]);
  const differences = dates.map((date, i) => {
    const a = finiteOrNull(offline[i]);
    const b = finiteOrNull(deployed[i]);
    return { date: isoDate(date), difference: a === null || b === null ? null : b - a };
  });
  const x = {
    field: 'date',
    type: 'temporal',
    title: 'Date',
    scale: { type: 'utc' },
    axis: { format: '%Y-%m-%d' },
  } as const;
  return {
    $schema: SCHEMA,
    title: input.title ?? 'Deployed vs offline forecasts',
    vconcat: [
      {
        width: WIDTH,
        height: HEIGHT,
        data: { values: series },
        mark: { type: 'line', strokeWidth: 1.5 },
        encoding: {
          x,
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
        data: { values: differences },
        mark: { type: 'line', strokeWidth: 1.2, color: '#e45756', point: { size: 12, filled: true, color: '#e45756' } },
        encoding: {
          x,
          y: { field: 'difference', type: 'quantitative', title: 'Deployed − offline' },
        },
      },
    ],
    config: CONFIG,
  } as TopLevelSpec;
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
