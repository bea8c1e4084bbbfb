import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deploymentComparisonSpec,
  errorHistogramSpec,
  foldMetricsSpec,
  forecastVsActualSpec,
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

const cases: { name: string; spec: TopLevelSpec; texts: string[] }[] = [
  {
    name: 'forecast-vs-actual',
    spec: forecastVsActualSpec({ dates, yTrue, yPred, title: 'MSFT: forecast vs actual' }),
    texts: ['MSFT: forecast vs actual', 'Date', 'Next-day close ratio', 'Actual', 'Forecast'],
  },
  {
    name: 'error-histogram',
    spec: errorHistogramSpec({ errors, title: 'Test-set errors' }),
    texts: ['Test-set errors', 'Forecast error (forecast − actual)', 'Count'],
  },
  {
    name: 'fold-metrics',
    spec: foldMetricsSpec({
      folds: [1, 2, 3, 4, 5].map((fold) => ({ fold, mae: 0.01 + fold / 1000, mse: 2e-4 * fold, r2: -0.02 * fold + 0.05 })),
    }),
    texts: ['Cross-validation metrics by fold', 'Fold', 'MAE', 'MSE', 'R²'],
  },
  {
    name: 'deployment-comparison',
    spec: deploymentComparisonSpec({
      dates,
      offline: yPred,
      deployed: yPred.map((v, i) => (i === 40 ? v + 1e-3 : v)),
    }),
    texts: ['Deployed vs offline forecasts', 'Date', 'Forecast', 'Deployed − offline', 'Offline', 'Deployed'],
  },
];

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
});
