import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bundleBaselines,
  deploymentComparisonSpec,
  errorHistogramSpec,
  foldMetricsSpec,
  forecastScatterSpec,
  forecastVsActualSpec,
  rollingErrorSpec,
  rasterise,
  renderSvg,
  writeChart,
  type TopLevelSpec,
} from '../../src/report/charts.js';

/** A deterministic pseudo-random walk, enough to look like returns around 1. */
function series(n: number, seed: number): number[] {
  let s = seed;
  const next = (): number => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31 - 0.5;
  };
  return Array.from({ length: n }, () => 1 + next() * 0.04);
}

function businessDays(n: number): string[] {
  const out: string[] = [];
  const d = new Date(Date.UTC(2020, 0, 2));
  while (out.length < n) {
    const day = d.getUTCDay();
    if (day !== 0 && day !== 6) out.push(d.toISOString().slice(0, 10));
    d.setUTCDate(d.getUTCDate() + 1);
  }
  return out;
}

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function pngSize(png: Buffer): { width: number; height: number } {
  expect(png.subarray(0, 8).equals(PNG_MAGIC)).toBe(true);
  // The first chunk is IHDR: length (4), type (4), then width and height, big-endian.
  expect(png.toString('latin1', 12, 16)).toBe('IHDR');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

function svgSize(svg: string): { width: number; height: number } {
  const m = /<svg[^>]*\swidth="(\d+(?:\.\d+)?)"[^>]*\sheight="(\d+(?:\.\d+)?)"/.exec(svg);
  expect(m).not.toBeNull();
  return { width: Number(m![1]), height: Number(m![2]) };
}

const n = 120;
const dates = businessDays(n);
const yTrue = series(n, 7);
const yPred = series(n, 11).map((v) => 1 + (v - 1) * 0.3);
const errors = yPred.map((p, i) => p - yTrue[i]);

const baselines = bundleBaselines({ persistence: { prediction: 1 }, trainingMean: { prediction: 1.000523 } });
const scores = (mae: number) => ({ mae, mse: mae * mae, r2: 0.05 - mae * 10 });
const folds = [1, 2, 3].map((fold) => ({
  fold,
  train: ['2000-01-03', `200${fold}-06-30`] as const,
  validation: [`200${fold}-07-01`, `200${fold + 1}-06-29`] as const,
  metrics: scores(0.01 + fold / 1000),
  baselines: { persistence: scores(0.0105), 'training mean': scores(0.0104) },
}));
const mismatched = yPred.map((v, i) => (i === 40 ? v + 1e-3 : v));

const cases: { name: string; spec: TopLevelSpec; texts: string[] }[] = [
  {
    name: 'forecast-scatter',
    spec: forecastScatterSpec({ yTrue, yPred, baselines, title: 'MSFT: forecast vs actual' }),
    texts: [
      'MSFT: forecast vs actual',
      'Actual next-day return, close[t+1] / close[t]',
      'Forecast next-day return',
      'perfect forecast (y = x)',
      'persistence baseline: forecast 1',
      'training mean baseline: forecast 1.00052',
      // A tick at a return of 1 (no change).
      '1.000',
    ],
  },
  {
    name: 'forecast-vs-actual',
    spec: forecastVsActualSpec({ dates, yTrue, yPred, title: 'MSFT: forecast vs actual by date' }),
    texts: ['MSFT: forecast vs actual by date', 'Date', 'Next-day close ratio', 'Actual', 'Forecast', 'Persistence forecast (1, no change)'],
  },
  {
    name: 'rolling-mae',
    spec: rollingErrorSpec({ dates, yTrue, yPred, baselines, window: 20 }),
    texts: ['Rolling MAE, 20-bar window', 'MAE over 20 bars', 'model', 'persistence (forecast 1)', 'training mean (forecast 1.00052)'],
  },
  {
    name: 'error-histogram',
    spec: errorHistogramSpec({ errors, title: 'Test-set errors' }),
    texts: ['Test-set errors', 'Forecast error (forecast − actual)', 'Count', 'zero error'],
  },
  {
    name: 'fold-metrics',
    spec: foldMetricsSpec({ folds }),
    texts: [
      'Cross-validation by fold',
      'fold 1',
      'fold 3',
      'training dates',
      'validation dates',
      '2000-01-03 .. 2001-06-30',
      '2001-07-01 .. 2002-06-29',
      'MAE (lower is better)',
      'MSE (lower is better)',
      'R² (higher is better)',
      'R² = 0',
      'model',
      'persistence',
      'training mean',
    ],
  },
  {
    name: 'deployment-comparison-fail',
    spec: deploymentComparisonSpec({ dates, offline: yPred, deployed: mismatched }),
    texts: [
      'FAIL: 1 of 120 deployed forecasts differ from the offline ones',
      'Deployed vs offline forecasts',
      'Date',
      'Forecast',
      'Deployed − offline',
      'Offline',
      'Deployed',
      '0 = identical (119 of 120 dates)',
    ],
  },
  {
    name: 'deployment-comparison-pass',
    spec: deploymentComparisonSpec({ dates, offline: yPred, deployed: yPred, verdict: { passed: true, differing: 0 } }),
    texts: ['PASS: all 120 deployed forecasts equal the offline ones, bit for bit', 'no difference: all 120 dates identical', 'Deployed − offline'],
  },
];

/** Every mark of the compiled spec's layers, flattened: to assert a chart keeps a mark it needs. */
function marks(spec: unknown): { type?: string; [k: string]: unknown }[] {
  const out: { type?: string }[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      const o = node as Record<string, unknown>;
      if (o.mark) out.push(typeof o.mark === 'string' ? { type: o.mark } : (o.mark as { type?: string }));
      for (const key of ['layer', 'hconcat', 'vconcat', 'concat']) if (key in o) walk(o[key]);
    }
  };
  walk(spec);
  return out;
}

describe('charts', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'charts-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const { name, spec, texts } of cases) {
    it(`renders ${name} to SVG and PNG`, async () => {
      const out = await writeChart(spec, join(dir, 'nested', name));
      expect(out).toEqual({ svg: join(dir, 'nested', `${name}.svg`), png: join(dir, 'nested', `${name}.png`) });

      const svg = await readFile(out.svg, 'utf8');
      expect(svg).toMatch(/^<svg[\s>]/);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      expect(texts.filter((text) => !svg.includes(`>${text}</text>`))).toEqual([]);
      expect(svg).toContain('DejaVu Sans');

      const png = await readFile(out.png);
      expect(png.length).toBeGreaterThan(10_000);
      const size = pngSize(png);
      const expected = svgSize(svg);
      // Default scale is 2.
      expect(size.width).toBe(Math.round(expected.width * 2));
      expect(size.height).toBe(Math.round(expected.height * 2));
    });
  }

  it('draws text in the PNG (a font was found)', async () => {
    const svg = await renderSvg(cases[0].spec);
    const withoutText = svg.replace(/<text[^>]*>[^<]*<\/text>/g, '');
    expect(withoutText).not.toContain('<text');
    const ink = (s: string): number => {
      const { pixels } = rasterise(s, { scale: 1 });
      let dark = 0;
      for (let i = 0; i < pixels.length; i += 4) if (pixels[i] + pixels[i + 1] + pixels[i + 2] < 384) dark++;
      return dark;
    };
    // Titles, axis titles, tick labels and the legend are hundreds of dark pixels.
    expect(ink(svg) - ink(withoutText)).toBeGreaterThan(500);
  });

  it('honours the scale option', async () => {
    const spec = errorHistogramSpec({ errors: [0.1, -0.2, 0.05] });
    const out = await writeChart(spec, join(dir, 'scaled'), { scale: 1 });
    const svg = await readFile(out.svg, 'utf8');
    expect(pngSize(await readFile(out.png))).toEqual(svgSize(svg));
  });

  it('drops non-finite values instead of failing', async () => {
    const svg = await renderSvg(
      forecastVsActualSpec({ dates: dates.slice(0, 3), yTrue: [1, Number.NaN, 1.01], yPred: [1, 1, Number.POSITIVE_INFINITY] }),
    );
    expect(svg).toContain('<svg');
    expect(svg).not.toContain('NaN');
  });

  it('rejects series of different lengths', () => {
    expect(() => forecastVsActualSpec({ dates, yTrue, yPred: yPred.slice(1) })).toThrow(/yPred has 119 values but dates has 120/);
    expect(() => deploymentComparisonSpec({ dates, offline: yPred, deployed: [] })).toThrow(RangeError);
  });

  it('accepts Date objects', () => {
    const spec = forecastVsActualSpec({ dates: [new Date(Date.UTC(2021, 5, 1))], yTrue: [1], yPred: [1] }) as {
      data: { values: { date: string }[] };
    };
    expect(spec.data.values[0].date).toBe('2021-06-01T00:00:00.000Z');
  });

  it('draws forecast against actual as a scatter with the y = x line and a rule per baseline', () => {
    const spec = forecastScatterSpec({ yTrue, yPred, baselines }) as unknown as { layer: { data: { values: Record<string, number>[] } }[] };
    const types = marks(spec).map((m) => m.type);
    expect(types[0]).toBe('point');
    expect(types.filter((t) => t === 'rule')).toHaveLength(2);
    // The diagonal: a line whose two points have x = y, corner to corner of the shared domain.
    const diagonal = spec.layer[1].data.values;
    expect(types[1]).toBe('line');
    expect(diagonal.map((p) => p.v)).toHaveLength(2);
    expect(spec.layer[0].data.values).toHaveLength(n);
  });

  it('scores the rolling window it says: the first point is the mean of the first 20 absolute errors', () => {
    const spec = rollingErrorSpec({ dates, yTrue, yPred, baselines, window: 20 }) as unknown as {
      data: { values: { date: string; forecaster: string; mae: number }[] };
    };
    const model = spec.data.values.filter((v) => v.forecaster === 'model');
    expect(model).toHaveLength(n - 19);
    expect(model[0].date).toBe(dates[19]);
    const expected = errors.slice(0, 20).reduce((s, e) => s + Math.abs(e), 0) / 20;
    expect(model[0].mae).toBeCloseTo(expected, 15);
    const persistence = spec.data.values.filter((v) => v.forecaster.startsWith('persistence'));
    expect(persistence[0].mae).toBeCloseTo(yTrue.slice(0, 20).reduce((s, t) => s + Math.abs(1 - t), 0) / 20, 15);
    // A test set shorter than the window is one window, and the title says so.
    expect(JSON.stringify(rollingErrorSpec({ dates: dates.slice(0, 5), yTrue: yTrue.slice(0, 5), yPred: yPred.slice(0, 5) }))).toContain('5-bar window');
  });

  it('derives the deployment verdict from the data when not given, counting a missing forecast as a difference', async () => {
    const svg = await renderSvg(deploymentComparisonSpec({ dates, offline: yPred, deployed: yPred.map((v, i) => (i === 3 ? null : v)) }));
    expect(svg).toContain('>FAIL: 1 of 120 deployed forecasts differ from the offline ones</text>');
    const pass = await renderSvg(deploymentComparisonSpec({ dates, offline: yPred, deployed: [...yPred] }));
    expect(pass).toContain('>PASS: all 120 deployed forecasts equal the offline ones, bit for bit</text>');
    // The verdict verify passes wins (it is the one printed beside the chart).
    const given = await renderSvg(deploymentComparisonSpec({ dates, offline: yPred, deployed: mismatched, verdict: { passed: false, differing: 7 } }));
    expect(given).toContain('>FAIL: 7 of 120 deployed forecasts differ from the offline ones</text>');
  });

  it('notes a bundle without baselines on the folds chart, and draws persistence at 1 even then', async () => {
    const svg = await renderSvg(foldMetricsSpec({ folds: folds.map(({ baselines: _, ...f }) => f) }));
    expect(svg).toContain("(no baselines recorded in this bundle)");
    expect(bundleBaselines(undefined)).toEqual([{ name: 'persistence', prediction: 1 }]);
  });

  it('labels a tick at zero on the error axes (histogram, rolling MAE, R²)', async () => {
    const zeroTick = /<text[^>]*opacity="1">(?:0|0\.0+)<\/text>/;
    expect(await renderSvg(errorHistogramSpec({ errors }))).toMatch(zeroTick);
    expect(await renderSvg(rollingErrorSpec({ dates, yTrue, yPred, baselines }))).toMatch(zeroTick);
    expect(await renderSvg(foldMetricsSpec({ folds }))).toMatch(zeroTick);
  });

  it('keeps labels vega would otherwise drop as overlapping (text is measured in DejaVu Sans, not 0.8 em a character)', async () => {
    const svg = await renderSvg(forecastScatterSpec({ yTrue, yPred, baselines }));
    // Hidden tick labels are rendered with opacity 0.
    const hidden = [...svg.matchAll(/opacity="0">([^<]*)<\/text>/g)].map((m) => m[1]);
    expect(hidden).toEqual([]);
    // No blank band: the canvas is the square plot plus its axes, not widened by an overestimated title.
    expect(svgSize(svg).width).toBeLessThan(640);
  });
});
