import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { BarSeries } from '../data/bars.js';
import { readBarsCsv, writeBarsCsv } from '../data/index.js';
import { BundleError } from '../errors.js';
import { getFeatureSet } from '../features/index.js';
import { FeaturePipeline, modelFromState, PolynomialFeatures, StandardScaler } from '../models/index.js';
import { BUNDLE_FORMAT_VERSION, type BundleManifest, type LoadedBundle } from './types.js';

export const MANIFEST_FILE = 'manifest.json';
export const HISTORY_FILE = 'history.csv';
export const CHECKSUMS_FILE = 'checksums.json';

interface Checksums {
  algorithm: 'sha256';
  files: Record<string, string>;
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Writes atomically (temp file + rename) so a crash never leaves a half-written bundle file. */
async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/** Writes a bundle folder: manifest, source history and a sha256 for every file. */
export async function writeBundle(dir: string, manifest: BundleManifest, history: BarSeries): Promise<void> {
  await mkdir(dir, { recursive: true });
  // Shortest round-trip decimal: read back with a correctly rounded parser, every value is bit-identical.
  const historyCsv = writeBarsCsv(history);
  const manifestJson = JSON.stringify({ ...manifest, historyFile: HISTORY_FILE }, null, 2) + '\n';
  await writeFileAtomic(join(dir, HISTORY_FILE), historyCsv);
  await writeFileAtomic(join(dir, MANIFEST_FILE), manifestJson);
  await writeChecksums(dir, { [MANIFEST_FILE]: sha256(manifestJson), [HISTORY_FILE]: sha256(historyCsv) });
}

async function writeChecksums(dir: string, files: Record<string, string>): Promise<void> {
  const sorted = Object.fromEntries(Object.entries(files).sort(([a], [b]) => a.localeCompare(b)));
  const body: Checksums = { algorithm: 'sha256', files: sorted };
  await writeFileAtomic(join(dir, CHECKSUMS_FILE), JSON.stringify(body, null, 2) + '\n');
}

/** Adds (or refreshes) files written into a bundle after it was made, such as evaluation charts. */
export async function addBundleFiles(dir: string, names: readonly string[]): Promise<void> {
  const checksums = await readChecksums(dir);
  for (const name of names) checksums.files[name] = sha256(await readFile(join(dir, name)));
  await writeChecksums(dir, checksums.files);
}

async function readChecksums(dir: string): Promise<Checksums> {
  const path = join(dir, CHECKSUMS_FILE);
  if (!existsSync(path)) throw new BundleError(`${dir} is not a bundle: ${CHECKSUMS_FILE} is missing`, 'bundle_not_found');
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new BundleError(`${CHECKSUMS_FILE} in ${dir} is not valid JSON (${(err as Error).message}): the bundle is damaged`, 'bundle_tampered');
  }
  const c = parsed as Partial<Checksums>;
  if (c.algorithm !== 'sha256' || typeof c.files !== 'object' || c.files === null)
    throw new BundleError(`${CHECKSUMS_FILE} in ${dir} has no sha256 file list: the bundle is damaged`, 'bundle_tampered');
  return c as Checksums;
}

export interface LoadOptions {
  /**
   * Recompute the evaluation forecasts from the bundle's own history and require them to equal the
   * stored ones bit for bit (default true). Costs one batch feature pass; catches a model, scaler or
   * feature-set definition that no longer reproduces the evaluation.
   */
  selfCheck?: boolean;
}

/** Loads a bundle, verifying every file's sha256, the format version and the manifest's shape. */
export async function loadBundle(dir: string, options: LoadOptions = {}): Promise<LoadedBundle> {
  const checksums = await readChecksums(dir);
  for (const required of [MANIFEST_FILE, HISTORY_FILE]) {
    if (!(required in checksums.files)) throw new BundleError(`${CHECKSUMS_FILE} in ${dir} does not list ${required}: the bundle is damaged`, 'bundle_tampered');
  }
  const contents = new Map<string, Buffer>();
  for (const [name, expected] of Object.entries(checksums.files)) {
    if (name.includes('/') || name.includes('\\') || name.startsWith('.')) throw new BundleError(`${CHECKSUMS_FILE} names ${name}, which is outside the bundle`, 'bundle_tampered');
    const path = join(dir, name);
    if (!existsSync(path)) throw new BundleError(`bundle file ${name} is missing from ${dir}`, 'bundle_tampered');
    const data = await readFile(path);
    const actual = sha256(data);
    if (actual !== expected)
      throw new BundleError(`bundle file ${name} in ${dir} was modified or truncated: sha256 ${actual}, expected ${expected}`, 'bundle_tampered');
    contents.set(name, data);
  }
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(contents.get(MANIFEST_FILE)!.toString('utf8')) as BundleManifest;
  } catch (err) {
    throw new BundleError(`${MANIFEST_FILE} in ${dir} is not valid JSON: ${(err as Error).message}`, 'bundle_tampered');
  }
  checkManifest(manifest, dir);
  const history = readBarsCsv(contents.get(HISTORY_FILE)!.toString('utf8'), { numberParsing: 'exact', sourceName: join(basename(dir), HISTORY_FILE) });
  const pipeline = pipelineFromManifest(manifest);
  const bundle: LoadedBundle = { dir, manifest, pipeline, history, id: `${manifest.name}@${manifest.version}` };
  if (options.selfCheck ?? true) selfCheck(bundle);
  return bundle;
}

function checkManifest(m: BundleManifest, dir: string): void {
  if (typeof m.formatVersion !== 'number' || !Number.isInteger(m.formatVersion) || m.formatVersion < 1)
    throw new BundleError(`${MANIFEST_FILE} in ${dir} has no valid formatVersion`, 'bundle_invalid');
  if (m.formatVersion > BUNDLE_FORMAT_VERSION)
    throw new BundleError(
      `bundle ${dir} has format version ${m.formatVersion}, newer than this program reads (${BUNDLE_FORMAT_VERSION}): upgrade forecast-service`,
      'bundle_newer_format',
    );
  const need = (cond: unknown, what: string) => {
    if (!cond) throw new BundleError(`${MANIFEST_FILE} in ${dir}: ${what}`, 'bundle_invalid');
  };
  need(typeof m.name === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(m.name), 'name must be letters, digits, dot, dash or underscore');
  need(typeof m.version === 'string' && m.version.length > 0, 'version is missing');
  need(m.featureSet && Array.isArray(m.featureSet.featureNames), 'featureSet is missing');
  need(m.scaler && Array.isArray(m.scaler.mean) && m.scaler.mean.length === m.featureSet.featureNames.length, 'scaler does not match the feature set');
  need(m.model && typeof m.model.kind === 'string', 'model is missing');
  need(
    m.evaluation && Array.isArray(m.evaluation.dates) && m.evaluation.dates.length === m.evaluation.yPred.length && m.evaluation.dates.length === m.evaluation.yTrue.length,
    'evaluation dates and forecasts differ in length',
  );
  if (m.model.kind === 'decision_tree_regressor') {
    const t = m.model;
    const fields = [t.leftChild, t.rightChild, t.feature, t.threshold, t.value];
    need(fields.every((f) => Array.isArray(f) && f.length === t.nodeCount), 'tree node arrays do not match nodeCount');
    for (let i = 0; i < t.nodeCount; i++) {
      const l = t.leftChild[i];
      const r = t.rightChild[i];
      const leaf = l === -1 && r === -1;
      need(leaf || (l > i && r > i && l < t.nodeCount && r < t.nodeCount), `tree node ${i} has invalid children`);
      need(leaf || (t.feature[i] >= 0 && t.feature[i] < t.nFeatures), `tree node ${i} splits on a feature out of range`);
      need(Number.isFinite(t.value[i]), `tree node ${i} has a non-finite value`);
    }
  }
}

/** Rebuilds the forecast pipeline a manifest describes. */
export function pipelineFromManifest(m: BundleManifest): FeaturePipeline {
  const featureSet = getFeatureSet(m.featureSet.name);
  const names = featureSet.featureNames;
  if (names.length !== m.featureSet.featureNames.length || names.some((n, i) => n !== m.featureSet.featureNames[i]))
    throw new BundleError(`bundle's ${m.featureSet.name} features [${m.featureSet.featureNames.join(', ')}] differ from this program's [${names.join(', ')}]`, 'bundle_invalid');
  return new FeaturePipeline(
    featureSet,
    StandardScaler.fromState(m.scaler),
    m.expansion ? PolynomialFeatures.fromState(m.expansion) : null,
    modelFromState(m.model),
    m.featureSet.csvRoundTrip,
  );
}

/** Forecasts for the bundle's evaluation dates, recomputed from its own history. */
export function recomputeEvaluation(bundle: Pick<LoadedBundle, 'manifest' | 'pipeline' | 'history'>): Float64Array {
  const { manifest, pipeline, history } = bundle;
  const table = pipeline.featureSet.computeBatch(history);
  const index = new Map<string, number>();
  table.dates.forEach((d, i) => index.set(d, i));
  const k = table.values.cols;
  const row = new Float64Array(k);
  const out = new Float64Array(manifest.evaluation.dates.length);
  manifest.evaluation.dates.forEach((date, j) => {
    const i = index.get(date);
    if (i === undefined) throw new BundleError(`evaluation date ${date} is not in the bundle's history`, 'bundle_invalid');
    row.set(table.values.data.subarray(i * k, (i + 1) * k));
    out[j] = pipeline.predictFeatures(row);
  });
  return out;
}

function selfCheck(bundle: LoadedBundle): void {
  const recomputed = recomputeEvaluation(bundle);
  const stored = bundle.manifest.evaluation.yPred;
  for (let j = 0; j < recomputed.length; j++) {
    if (!Object.is(recomputed[j], stored[j]))
      throw new BundleError(
        `bundle ${bundle.id} does not reproduce its own evaluation: on ${bundle.manifest.evaluation.dates[j]} it forecasts ${recomputed[j]}, the manifest says ${stored[j]}`,
        'bundle_not_reproducible',
      );
  }
}
