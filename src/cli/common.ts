import { readFile } from 'node:fs/promises';
import { basename, normalize } from 'node:path';
import cliProgress from 'cli-progress';
import { Option } from 'commander';
import type { BarSeries } from '../data/bars.js';
import { NULL_ROW_CODE } from '../data/csv.js';
import { readBarsCsv } from '../data/index.js';
import { BundleError, DataError, ForecastError } from '../errors.js';
import { MODEL_NAME_RE, type Baselines, type BundleManifest, type RegressionMetrics } from '../bundle/types.js';
import { checkBundleTarget, publishBundle, sha256 } from '../bundle/io.js';

/** `--skip-null-rows`, for every command that reads bars with {@link readSource}. */
export function skipNullRowsOption(): Option {
  return new Option('--skip-null-rows', 'skip rows with null in every value (Yahoo\'s days without data), reporting how many on stderr');
}

/**
 * A CSV of bars read with the number parser the feature set defines (FEATURES.md §3b.1). Rows of
 * nulls (Yahoo's days without data) are refused with a hint, or skipped and counted on stderr.
 */
export async function readSource(
  path: string,
  numberParsing: 'legacy' | 'exact',
  options: { skipNullRows?: boolean } = {},
): Promise<{ series: BarSeries; source: { file: string; sha256: string } }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ForecastError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 404, 'file_not_found');
  }
  const skipped: number[] = [];
  let series: BarSeries;
  try {
    series = readBarsCsv(text, { numberParsing, sourceName: basename(path), skipNullRows: options.skipNullRows, onSkippedRow: (line) => skipped.push(line) });
  } catch (err) {
    if (err instanceof DataError && err.code === NULL_ROW_CODE)
      throw new DataError(`${err.message}: pass --skip-null-rows to skip such days`, err.location, err.status, err.code);
    throw err;
  }
  if (skipped.length > 0) {
    const shown = skipped.slice(0, 5).join(', ') + (skipped.length > 5 ? ', ...' : '');
    process.stderr.write(`skipped ${skipped.length} row${skipped.length === 1 ? '' : 's'} of ${basename(path)} with null in every value (days without data): line${skipped.length === 1 ? '' : 's'} ${shown}\n`);
  }
  return { series, source: { file: basename(path), sha256: sha256(text) } };
}

/**
 * The name and version a bundle written to `out` is served under by `forecast serve --models DIR`
 * when `out` is DIR/NAME/VERSION: the registry takes a model's URL names from those two folders,
 * whatever its manifest says. Null when the last two segments of `out` are not a valid name and version.
 */
function identityFromFolder(out: string): { name: string; version: string } | null {
  const segments = normalize(out).split(/[\\/]+/).filter((s) => s !== '');
  if (segments.length < 2) return null;
  const [name, version] = segments.slice(-2);
  return MODEL_NAME_RE.test(name) && MODEL_NAME_RE.test(version) ? { name, version } : null;
}

/**
 * The name and version of a bundle to write to `out`: `--name` and `--model-version` when given
 * (checked against the service's rule, so a bundle it would refuse is never written), else those of
 * the folder (see {@link identityFromFolder}); undefined parts keep the recipe's default naming.
 */
export function bundleIdentity(out: string, given: { name?: string; modelVersion?: string }): { name?: string; version?: string } {
  for (const [option, value] of [['--name', given.name], ['--model-version', given.modelVersion]] as const) {
    if (value !== undefined && !MODEL_NAME_RE.test(value))
      throw new ForecastError(
        `${option} ${JSON.stringify(value)} is not a name the service accepts: letters, digits, dot, dash and underscore, starting with a letter or digit, at most 128 characters`,
        400,
        'invalid_option',
      );
  }
  const folder = identityFromFolder(out);
  return { name: given.name ?? folder?.name, version: given.modelVersion ?? folder?.version };
}

/** `--force`, for every command that writes a bundle with {@link writeBundleOut}. */
export function forceOption(): Option {
  return new Option('--force', 'replace the bundle already in --out (all of its files go, charts included)');
}

/** The refusal of an existing bundle, with the option that overrides it. */
function suggestForce(err: unknown): never {
  if (err instanceof BundleError && err.code === 'bundle_exists') throw new BundleError(`${err.message}: pass --force to replace it, or choose another --out`, err.code);
  throw err;
}

/** Checked before the slow part: a run whose --out would be refused fails before it trains. */
export async function checkBundleOut(out: string, force: boolean | undefined): Promise<void> {
  await checkBundleTarget(out, { replace: force }).catch(suggestForce);
}

/** Writes the bundle to --out as a whole, replacing one there only with --force (see `publishBundle`). */
export async function writeBundleOut(out: string, manifest: BundleManifest, history: BarSeries, force: boolean | undefined): Promise<void> {
  await publishBundle(out, manifest, history, { replace: force }).catch(suggestForce);
}

/** Progress bars on stderr for long steps, silent when stderr is not a terminal (CI, pipes). */
export function progressReporter(): { update: (step: string, done: number, total: number) => void; stop: () => void } {
  if (!process.stderr.isTTY) {
    let last = '';
    return {
      update: (step) => {
        if (step !== last) process.stderr.write(`${step}...\n`);
        last = step;
      },
      stop: () => undefined,
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: '{step} [{bar}] {value}/{total}', stream: process.stderr, clearOnComplete: true, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let current = '';
  return {
    update(step, done, total) {
      if (step !== current) {
        if (current) bar.stop();
        bar.start(total, done, { step });
        current = step;
      } else bar.update(done, { step });
    },
    stop: () => {
      if (current) bar.stop();
    },
  };
}

/** Full round-trip precision: `String(x)` is the shortest decimal that reads back as the same double. */
export function formatNumber(x: number | null): string {
  return x === null ? 'null' : String(x);
}

/** The columns of {@link metricsRow} and {@link baselineRows}: the last says only of a baseline whether the model beats it. */
export const METRICS_HEADER = ['rows', 'n', 'MAE', 'MSE', 'R2', 'model beats it (lower MSE)'];

export function metricsRow(label: string, m: RegressionMetrics): string[] {
  return [label, String(m.rows), m.mae.toPrecision(8), m.mse.toPrecision(8), m.r2.toPrecision(8)];
}

/**
 * A metrics row followed by the rows of the naive baselines scored on the same rows, when the bundle
 * recorded them: without them a negative R² cannot tell a model worse than doing nothing from a
 * merely hard target.
 */
export function metricsRows(label: string, m: RegressionMetrics, b: Baselines | undefined): string[][] {
  if (!b) return [metricsRow(label, m)];
  return [
    metricsRow(label, m),
    [...metricsRow('  baseline: persistence (y = 1)', b.persistence.metrics), b.persistence.modelBeats ? 'yes' : 'no'],
    [...metricsRow(`  baseline: training mean (y = ${b.trainingMean.prediction.toPrecision(8)})`, b.trainingMean.metrics), b.trainingMean.modelBeats ? 'yes' : 'no'],
  ];
}

/** A plain aligned text table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function parseIntOption(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new ForecastError(`${name} must be a whole number, got "${value}"`, 400, 'invalid_option');
    return n;
  };
}
