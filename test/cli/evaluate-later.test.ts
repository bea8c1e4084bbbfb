/**
 * Issue 11, item 6, the offline twin: `forecast evaluate BUNDLE --csv LATER.csv` scores a bundle on
 * bars after its training data by the live monitoring's own code path (the real app in-process, one
 * bar per request, its monitoring report), so its figures must equal the scikit-learn metrics of an
 * independent computation: the bundle's pipeline over the BATCH features of the whole series.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBundle, type LoadedBundle } from '../../src/bundle/index.js';
import { generateSyntheticBars, sliceSeries, writeBarsCsv, type BarSeries } from '../../src/data/index.js';
import { regressionMetrics } from '../../src/models/metrics.js';
import type { MonitoringReport } from '../../src/serve/monitoring.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/reference.js';

const BARS = 900;
const TRAIN_BARS = 600;
/** LATER.csv starts this many bars before the end of the training data: equal bars, skipped. */
const OVERLAP = 40;

describe('forecast evaluate --csv: a bundle scored on later bars by the live monitoring itself', () => {
  const work = tempDir();
  const out = join(work, 'models', 'syn', '1');
  const later = join(work, 'LATER.csv');
  let full: BarSeries;
  let bundle: LoadedBundle;

  beforeAll(async () => {
    full = generateSyntheticBars({ seed: 11, bars: BARS });
    const csv = join(work, 'bars.csv');
    writeFileSync(csv, writeBarsCsv(sliceSeries(full, 0, TRAIN_BARS)));
    const res = await runCli('train', '--csv', csv, '--out', out, '--features', 'causal', '--max-depth', '5');
    expect(res.code, res.stderr).toBe(0);
    bundle = await loadBundle(out);
    writeFileSync(later, writeBarsCsv(sliceSeries(full, TRAIN_BARS - OVERLAP)));
  }, 120_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("reports the 'all' window's MAE, MSE and R² of the later dates (but the last) equal to an independent batch computation", async () => {
    const res = await runCli('evaluate', out, '--csv', later, '--json');
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as MonitoringReport;
    expect([report.model, report.version]).toEqual(['syn', '1']);

    // The independent path: batch features of the whole series through the bundle's pipeline.
    const table = bundle.pipeline.featureSet.computeBatch(full);
    const k = table.values.cols;
    const yPred: number[] = [];
    const yTrue: number[] = [];
    for (let i = TRAIN_BARS; i < BARS - 1; i++) {
      const row = table.values.data.slice(i * k, (i + 1) * k);
      expect(row.every(Number.isFinite), `features of bar ${i}`).toBe(true);
      yPred.push(bundle.pipeline.predictFeatures(row));
      yTrue.push(full.close[i + 1] / full.close[i]);
    }
    const expected = regressionMetrics(yTrue, yPred);

    const all = report.live.find((w) => w.window === 'all')!;
    expect(all.rows).toBe(BARS - 1 - TRAIN_BARS);
    expect([all.first_date, all.last_date]).toEqual([full.date[TRAIN_BARS], full.date[BARS - 2]]);
    expect(all.model.mae).toBe(expected.mae);
    expect(all.model.mse).toBe(expected.mse);
    expect(all.model.r2).toBe(expected.r2);
    expect(all.persistence.mae).toBe(regressionMetrics(yTrue, yTrue.map(() => 1)).mae);
    // Every later bar was logged once (the last one pending: its next bar is not in the file); none of the old ones.
    expect(report.log).toMatchObject({ logged: BARS - TRAIN_BARS, scored: BARS - 1 - TRAIN_BARS, pending: 1, first_date: full.date[TRAIN_BARS], last_date: full.date[BARS - 1] });
    expect(report.live.map((w) => w.window)).toEqual([20, 60, 250, 'all']);
    expect(['ok', 'degraded']).toContain(report.state);
  }, 120_000);

  it('prints the monitoring table by default', async () => {
    const res = await runCli('evaluate', out, '--csv', later);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/scored on LATER\.csv: 300 bars after its history/);
    expect(res.stdout).toMatch(new RegExp(`; ${OVERLAP} earlier bars equal to the bundle's history, skipped`));
    expect(res.stdout).toMatch(/syn@1 \(default\)/);
    expect(res.stdout).toMatch(/^scored \/ logged\s+299 \/ 300$/m);
    expect(res.stdout).toMatch(/^since deployment: MAE\s+\d/m);
    expect(res.stdout).toMatch(/^last 250: persistence MAE\s+\d/m);
  }, 120_000);

  it('refuses a file with no bar after the history, naming its last date', async () => {
    const old = join(work, 'OLD.csv');
    writeFileSync(old, writeBarsCsv(sliceSeries(full, TRAIN_BARS - 100, TRAIN_BARS)));
    const res = await runCli('evaluate', out, '--csv', old, '--json');
    expect(res.code).not.toBe(0);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain(`OLD.csv has no bar after ${full.date[TRAIN_BARS - 1]}, the last date of syn@1's history`);
  });

  it("refuses an old bar that differs from the bundle's, naming its date and field (the service's 409)", async () => {
    const changed = sliceSeries(full, TRAIN_BARS - OVERLAP);
    changed.volume[5] += 1000; // within every bar rule: only the comparison with the stored bar can refuse it
    const bad = join(work, 'BAD.csv');
    writeFileSync(bad, writeBarsCsv(changed));
    const res = await runCli('evaluate', out, '--csv', bad, '--json');
    expect(res.code).not.toBe(0);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(new RegExp(`BAD\\.csv: its bars up to ${full.date[TRAIN_BARS - 1]} must equal syn@1's history, and one differs`));
    expect(res.stderr).toContain(`the bar of ${changed.date[5]} is already stored with volume=${full.volume[TRAIN_BARS - OVERLAP + 5]}, submitted volume=${changed.volume[5]}`);
  });
});
