import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { BarSeries } from '../data/bars.js';
import { readBarsCsv, writeBarsCsv } from '../data/index.js';
import { BundleError, DataError } from '../errors.js';
import { FEATURE_SETS } from '../features/index.js';
import type { FeatureEngine, FeatureSet } from '../features/types.js';
import { FeaturePipeline, MODEL_KINDS, modelFromState, PolynomialFeatures, StandardScaler } from '../models/index.js';
import { BUNDLE_FORMAT_VERSION, MODEL_NAME_RE, type BaselineReport, type Baselines, type BundleManifest, type FeatureDistribution, type LoadedBundle } from './types.js';

export const MANIFEST_FILE = 'manifest.json';
export const HISTORY_FILE = 'history.csv';
export const CHECKSUMS_FILE = 'checksums.json';

/**
 * Codes of a bundle whose files are not what its checksums say, or that does not reproduce its own
 * evaluation: damage to the bundle itself. The other refusals (a file that cannot be read, a newer
 * format, an unknown feature set) say nothing of damage, so a caller that repairs a bundle by
 * rebuilding it (the demo start) must not rebuild for them.
 */
export const DAMAGED_BUNDLE_CODES: readonly string[] = ['bundle_tampered', 'bundle_not_reproducible'];

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

/** What a folder a bundle is to be published to holds now. */
type BundleTarget = 'absent' | 'empty' | 'bundle';

/**
 * Whether a bundle may be published to `dir`: it is absent, an empty folder, or (with `replace`) a
 * bundle folder. A BundleError otherwise: `bundle_exists` for a bundle folder without `replace`; a
 * folder holding anything else is refused even with `replace`, because replacing it would delete
 * files that are no bundle's (`--out .` in a home folder).
 */
export async function checkBundleTarget(dir: string, options: { replace?: boolean } = {}): Promise<BundleTarget> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if (ioReason(err) === 'ENOENT') return 'absent';
    if (ioReason(err) === 'ENOTDIR') throw new BundleError(`${dir} is a file, not a bundle folder`, 'bundle_target_invalid');
    throw new BundleError(`cannot open ${dir}: ${ioReason(err)}`, 'bundle_unreadable');
  }
  if (entries.length === 0) return 'empty';
  if (!entries.includes(CHECKSUMS_FILE) && !entries.includes(MANIFEST_FILE))
    throw new BundleError(`${dir} is not empty and holds no bundle (no ${CHECKSUMS_FILE}): a bundle is written only to a new or empty folder, or over a bundle`, 'bundle_target_invalid');
  if (!options.replace) throw new BundleError(`bundle folder ${dir} already exists`, 'bundle_exists');
  return 'bundle';
}

/**
 * Writes a bundle to `dir` as a whole: into a new hidden sibling (dot folders are not model versions
 * to the service's registry), then renamed into place, the bundle it replaces (`replace`) moved aside
 * first and removed after. So `dir` is at every moment absent, the old bundle whole or the new one
 * whole: never a half-written bundle, and never a new bundle mixed with files of the old one (its
 * charts). An interrupted run leaves at most hidden siblings, never a damaged `dir`. Refusals: see
 * {@link checkBundleTarget}.
 */
export async function publishBundle(dir: string, manifest: BundleManifest, history: BarSeries, options: { replace?: boolean } = {}): Promise<void> {
  const before = await checkBundleTarget(dir, options);
  const target = resolve(dir);
  await mkdir(dirname(target), { recursive: true });
  const fresh = await mkdtemp(join(dirname(target), `.${basename(target)}.new-`));
  try {
    await writeBundle(fresh, manifest, history);
    if (before === 'bundle') {
      // Beside the new one, as unique as it: hidden, and removed once the new bundle is in place.
      const old = `${fresh}.replaced`;
      await rename(target, old);
      try {
        await rename(fresh, target);
      } catch (err) {
        await rename(old, target);
        throw err;
      }
      await rm(old, { recursive: true, force: true });
    } else {
      // rmdir, not rm: it removes only an empty folder, so nothing placed there meanwhile is lost.
      if (before === 'empty') await rmdir(target);
      await rename(fresh, target);
    }
  } catch (err) {
    await rm(fresh, { recursive: true, force: true });
    throw err;
  }
}

async function writeChecksums(dir: string, files: Record<string, string>): Promise<void> {
  const sorted = Object.fromEntries(Object.entries(files).sort(([a], [b]) => a.localeCompare(b)));
  const body: Checksums = { algorithm: 'sha256', files: sorted };
  await writeFileAtomic(join(dir, CHECKSUMS_FILE), JSON.stringify(body, null, 2) + '\n');
}

/** Adds (or refreshes) files written into a bundle after it was made, such as evaluation charts. */
export async function addBundleFiles(dir: string, names: readonly string[]): Promise<void> {
  const checksums = await readChecksums(dir, await bundleRealDir(dir));
  for (const name of names) checksums.files[name] = sha256(await readFile(join(dir, name)));
  await writeChecksums(dir, checksums.files);
}

/** Why a file could not be read, as the system's one-word code (`EACCES`, `EISDIR`, ...). */
function ioReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : 'read error';
}

/** A name or value taken from a bundle's files, fit for a message: quoted and short. */
function shown(value: unknown): string {
  if (typeof value !== 'string') return typeof value;
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);
}

async function bundleRealDir(dir: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(dir);
  } catch (err) {
    if (ioReason(err) === 'ENOENT') throw new BundleError(`${dir} is not a bundle: the folder does not exist`, 'bundle_not_found');
    throw new BundleError(`cannot open bundle folder ${dir}: ${ioReason(err)}`, 'bundle_unreadable');
  }
  if (!(await stat(real)).isDirectory()) throw new BundleError(`${dir} is not a bundle: it is not a folder`, 'bundle_not_found');
  return real;
}

/**
 * Reads one file of a bundle. It must be a regular file inside the bundle folder once links are
 * followed: through a link elsewhere (`history.csv -> /etc/passwd`) the loader would read, hash and
 * parse a file the bundle does not own. Links within the folder stay allowed (a Kubernetes ConfigMap
 * volume mounts each file as a link into a hidden folder beside it).
 */
async function readBundleFile(dir: string, realDir: string, name: string, missing?: () => BundleError): Promise<Buffer> {
  let real: string;
  try {
    real = await realpath(join(dir, name));
  } catch (err) {
    if (ioReason(err) === 'ENOENT') throw missing?.() ?? new BundleError(`bundle file ${name} is missing from ${dir}`, 'bundle_tampered');
    throw new BundleError(`cannot read bundle file ${name} in ${dir}: ${ioReason(err)}`, 'bundle_unreadable');
  }
  const rel = relative(realDir, real);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel))
    throw new BundleError(`bundle file ${name} in ${dir} is a link to a file outside the bundle folder`, 'bundle_tampered');
  try {
    if (!(await stat(real)).isFile()) throw new BundleError(`bundle file ${name} in ${dir} is not a regular file`, 'bundle_unreadable');
    return await readFile(real);
  } catch (err) {
    if (err instanceof BundleError) throw err;
    throw new BundleError(`cannot read bundle file ${name} in ${dir}: ${ioReason(err)}`, 'bundle_unreadable');
  }
}

async function readChecksums(dir: string, realDir: string): Promise<Checksums> {
  const text = await readBundleFile(dir, realDir, CHECKSUMS_FILE, () => new BundleError(`${dir} is not a bundle: ${CHECKSUMS_FILE} is missing`, 'bundle_not_found'));
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.toString('utf8'));
  } catch {
    // Not the parser's message: V8 quotes the text around the error, and the file may hold anything.
    throw new BundleError(`${CHECKSUMS_FILE} in ${dir} is not valid JSON: the bundle is damaged`, 'bundle_tampered');
  }
  const c = parsed as Partial<Checksums> | null;
  if (c === null || typeof c !== 'object' || c.algorithm !== 'sha256' || typeof c.files !== 'object' || c.files === null || Array.isArray(c.files))
    throw new BundleError(`${CHECKSUMS_FILE} in ${dir} has no sha256 file list: the bundle is damaged`, 'bundle_tampered');
  for (const [name, digest] of Object.entries(c.files)) {
    if (typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest))
      throw new BundleError(`${CHECKSUMS_FILE} in ${dir} lists ${shown(name)} without a sha256 digest: the bundle is damaged`, 'bundle_tampered');
  }
  return c as Checksums;
}

/**
 * Verifies every file `checksums.json` lists against its sha256; returns each file's contents. A
 * BundleError otherwise: `bundle_not_found` (no folder, no checksums.json), `bundle_tampered` (a file
 * missing, modified, or outside the folder), `bundle_unreadable` (a file that cannot be read:
 * permissions, a folder where a file should be).
 */
export async function verifyBundleFiles(dir: string): Promise<Map<string, Buffer>> {
  const realDir = await bundleRealDir(dir);
  const checksums = await readChecksums(dir, realDir);
  for (const required of [MANIFEST_FILE, HISTORY_FILE]) {
    if (!(required in checksums.files)) throw new BundleError(`${CHECKSUMS_FILE} in ${dir} does not list ${required}: the bundle is damaged`, 'bundle_tampered');
  }
  const contents = new Map<string, Buffer>();
  for (const [name, expected] of Object.entries(checksums.files)) {
    if (name === '' || name.includes('/') || name.includes('\\') || name.includes('\0') || name.startsWith('.'))
      throw new BundleError(`${CHECKSUMS_FILE} in ${dir} names ${shown(name)}, which is outside the bundle`, 'bundle_tampered');
    const data = await readBundleFile(dir, realDir, name);
    const actual = sha256(data);
    if (actual !== expected)
      throw new BundleError(`bundle file ${name} in ${dir} was modified or truncated: sha256 ${actual}, expected ${expected}`, 'bundle_tampered');
    contents.set(name, data);
  }
  return contents;
}

/** The sha256 of each file, by name. */
function digestsOf(contents: ReadonlyMap<string, Buffer>): Record<string, string> {
  return Object.fromEntries([...contents].map(([name, data]) => [name, sha256(data)]));
}

/**
 * Whether `dir` still holds exactly the files `bundle` was loaded from (same names, same sha256),
 * each verified again. Throws what {@link verifyBundleFiles} throws when the folder is damaged.
 */
export async function bundleUnchanged(bundle: Pick<LoadedBundle, 'files'>, dir: string): Promise<boolean> {
  const now = digestsOf(await verifyBundleFiles(dir));
  const before = bundle.files;
  if (!before) return false;
  const names = Object.keys(now);
  return names.length === Object.keys(before).length && names.every((n) => before[n] === now[n]);
}

export interface LoadOptions {
  /**
   * Recompute the evaluation forecasts from the bundle's own history and require them to equal the
   * stored ones bit for bit (default true). Costs one batch feature pass; catches a model, scaler or
   * feature-set definition that no longer reproduces the evaluation.
   */
  selfCheck?: boolean;
}

/**
 * Loads a bundle, verifying every file's sha256, the format version and the manifest's shape. Every
 * refusal is a BundleError (422) naming the folder and the problem that never quotes a file's text:
 * a bundle's file may be anything, and the message goes to logs and HTTP answers.
 */
export async function loadBundle(dir: string, options: LoadOptions = {}): Promise<LoadedBundle> {
  const contents = await verifyBundleFiles(dir);
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(contents.get(MANIFEST_FILE)!.toString('utf8')) as BundleManifest;
  } catch {
    throw new BundleError(`${MANIFEST_FILE} in ${dir} is not valid JSON`, 'bundle_tampered');
  }
  checkManifest(manifest, dir);
  let history: BarSeries;
  try {
    history = readBarsCsv(contents.get(HISTORY_FILE)!.toString('utf8'), { numberParsing: 'exact', sourceName: HISTORY_FILE, quoteContents: false });
  } catch (err) {
    if (err instanceof DataError) throw new BundleError(`bundle ${dir}: ${err.message}`, 'bundle_invalid');
    throw err;
  }
  const pipeline = pipelineFromManifest(manifest, dir);
  const bundle: LoadedBundle = { dir, manifest, pipeline, history, id: `${manifest.name}@${manifest.version}`, files: digestsOf(contents) };
  if (options.selfCheck ?? true) selfCheck(bundle);
  return bundle;
}

const isNumberArray = (a: unknown, length?: number): a is number[] =>
  Array.isArray(a) && (length === undefined || a.length === length) && a.every((x) => typeof x === 'number');
const isFiniteArray = (a: unknown, length?: number): a is number[] => isNumberArray(a, length) && a.every(Number.isFinite);

/** The feature set a manifest names, or a BundleError naming it and the known ones. */
function featureSetOf(m: BundleManifest, dir: string | undefined): FeatureSet {
  const name: unknown = m.featureSet?.name;
  if (typeof name === 'string' && Object.prototype.hasOwnProperty.call(FEATURE_SETS, name)) return FEATURE_SETS[name as keyof typeof FEATURE_SETS];
  throw new BundleError(
    `${dir ? `bundle ${dir}` : 'the bundle'} uses the feature set ${shown(name)}, which this program does not know (known: ${Object.keys(FEATURE_SETS).join(', ')})`,
    'bundle_unknown_feature_set',
  );
}

/**
 * The manifest is JSON from disk typed by a cast: every field the loader uses is checked here, so a
 * malformed one is a BundleError naming the field, never a TypeError deeper down.
 */
function checkManifest(m: BundleManifest, dir: string): void {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) throw new BundleError(`${MANIFEST_FILE} in ${dir} is not a JSON object`, 'bundle_invalid');
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
  need(typeof m.name === 'string' && MODEL_NAME_RE.test(m.name), 'name must be letters, digits, dot, dash or underscore, at most 128 characters');
  need(typeof m.version === 'string' && m.version.length > 0, 'version is missing');
  need(m.featureSet && typeof m.featureSet === 'object' && Array.isArray(m.featureSet.featureNames), 'featureSet is missing');
  featureSetOf(m, dir);
  const k = m.featureSet.featureNames.length;
  need(m.scaler && isFiniteArray(m.scaler.mean, k) && isFiniteArray(m.scaler.scale, k), 'scaler does not match the feature set');
  const e = m.expansion;
  need(e === null || e === undefined || (typeof e === 'object' && e.degree === 2 && e.nInputFeatures === k && e.nOutputFeatures === PolynomialFeatures.outputCount(k)), 'expansion does not match the feature set');
  const width = e ? e.nOutputFeatures : k;
  need(m.model && typeof m.model === 'object' && MODEL_KINDS.includes(m.model.kind), `model kind must be one of ${MODEL_KINDS.join(', ')}`);
  need(m.model.nFeatures === width, `the model takes ${shown(String(m.model.nFeatures))} inputs; the feature set${e ? ' after expansion' : ''} gives ${width}`);
  const ev = m.evaluation;
  need(
    ev && Array.isArray(ev.dates) && ev.dates.every((d) => typeof d === 'string') && isNumberArray(ev.yPred, ev.dates.length) && isNumberArray(ev.yTrue, ev.dates.length),
    'evaluation dates and forecasts differ in length',
  );
  // Baselines are optional: bundles made before they were recorded have none, and load as before.
  need(isOptionalBaselines(m.metrics?.baselines), 'metrics.baselines is malformed');
  if (Array.isArray(m.training?.folds)) m.training.folds.forEach((f, i) => need(isOptionalBaselines(f?.baselines), `training.folds[${i}].baselines is malformed`));
  // Optional too: bundles made before format version 2 have none, load as before and report drift as unavailable.
  const distributionProblem = featureDistributionProblem(m.featureDistribution, m.featureSet.featureNames);
  need(distributionProblem === null, `featureDistribution${distributionProblem}`);
  if (m.model.kind === 'decision_tree_regressor') {
    const t = m.model;
    need(Number.isInteger(t.nodeCount) && t.nodeCount >= 1, 'tree nodeCount is not a positive whole number');
    const fields = [t.leftChild, t.rightChild, t.feature, t.threshold, t.value];
    need(fields.every((f) => isNumberArray(f, t.nodeCount)), 'tree node arrays do not match nodeCount');
    for (let i = 0; i < t.nodeCount; i++) {
      const l = t.leftChild[i];
      const r = t.rightChild[i];
      const leaf = l === -1 && r === -1;
      need(leaf || (Number.isInteger(l) && Number.isInteger(r) && l > i && r > i && l < t.nodeCount && r < t.nodeCount), `tree node ${i} has invalid children`);
      need(leaf || (Number.isInteger(t.feature[i]) && t.feature[i] >= 0 && t.feature[i] < t.nFeatures), `tree node ${i} splits on a feature out of range`);
      need(Number.isFinite(t.value[i]), `tree node ${i} has a non-finite value`);
    }
  } else {
    const l = m.model;
    need(isFiniteArray(l.coef, l.nFeatures) && typeof l.intercept === 'number' && Number.isFinite(l.intercept), 'linear model coefficients do not match nFeatures or are not finite');
  }
}

/**
 * Why a manifest's featureDistribution is malformed, as the rest of a message that starts with the
 * field (`.features[2].edges are not ...`); null when it is absent or well formed: one entry per
 * feature, in order, with finite strictly increasing edges (at most bins - 1), one proportion per
 * bin in [0, 1] summing to 1 (all 0 for a feature without finite training values), whole counts.
 */
function featureDistributionProblem(d: FeatureDistribution | undefined, featureNames: readonly string[]): string | null {
  if (d === undefined) return null;
  if (d === null || typeof d !== 'object' || Array.isArray(d)) return ' is not an object';
  if (!Number.isInteger(d.bins) || d.bins < 2) return '.bins is not a whole number of at least 2';
  if (!Array.isArray(d.features) || d.features.length !== featureNames.length) return `.features does not have one entry per feature (${featureNames.length})`;
  const whole = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  for (let i = 0; i < d.features.length; i++) {
    const f = d.features[i];
    const at = `.features[${i}]`;
    if (f === null || typeof f !== 'object' || Array.isArray(f)) return `${at} is not an object`;
    if (f.name !== featureNames[i]) return `${at}.name is not the feature set's ${shown(featureNames[i])}`;
    if (!isFiniteArray(f.edges) || f.edges.length > d.bins - 1 || f.edges.some((e, j) => j > 0 && !(e > f.edges[j - 1])))
      return `${at}.edges are not at most ${d.bins - 1} finite, strictly increasing numbers`;
    if (!whole(f.rows)) return `${at}.rows is not a whole non-negative number`;
    if (!whole(f.nonFinite)) return `${at}.nonFinite is not a whole non-negative number`;
    if (!isFiniteArray(f.proportions, f.edges.length + 1) || f.proportions.some((p) => p < 0 || p > 1)) return `${at}.proportions are not ${f.edges.length + 1} shares between 0 and 1`;
    const sum = f.proportions.reduce((s, p) => s + p, 0);
    if (f.rows > 0 ? Math.abs(sum - 1) > 1e-9 : sum !== 0) return `${at}.proportions sum to ${sum}, not ${f.rows > 0 ? 1 : 0}`;
  }
  return null;
}

/** Absent, or both baselines with a numeric prediction, numeric metrics and a verdict. */
function isOptionalBaselines(b: Baselines | undefined): boolean {
  if (b === undefined) return true;
  const isReport = (r: BaselineReport | undefined) =>
    !!r &&
    typeof r === 'object' &&
    typeof r.prediction === 'number' &&
    typeof r.modelBeats === 'boolean' &&
    !!r.metrics &&
    typeof r.metrics === 'object' &&
    (['mae', 'mse', 'r2', 'rows'] as const).every((k) => typeof r.metrics[k] === 'number');
  return b !== null && typeof b === 'object' && isReport(b.persistence) && isReport(b.trainingMean);
}

/** Rebuilds the forecast pipeline a manifest describes; a BundleError when this program cannot. */
export function pipelineFromManifest(m: BundleManifest, dir?: string): FeaturePipeline {
  const featureSet = featureSetOf(m, dir);
  const names = featureSet.featureNames;
  if (names.length !== m.featureSet.featureNames.length || names.some((n, i) => n !== m.featureSet.featureNames[i]))
    throw new BundleError(`bundle's ${featureSet.name} features [${m.featureSet.featureNames.map(shown).join(', ')}] differ from this program's [${names.join(', ')}]`, 'bundle_invalid');
  try {
    return new FeaturePipeline(
      featureSet,
      StandardScaler.fromState(m.scaler),
      m.expansion ? PolynomialFeatures.fromState(m.expansion) : null,
      modelFromState(m.model),
      m.featureSet.csvRoundTrip,
    );
  } catch (err) {
    // The estimators check their state with their own errors; to a loader it is a bad bundle.
    if (err instanceof BundleError) throw err;
    throw new BundleError(`${dir ? `bundle ${dir}` : 'the bundle'}: its model cannot be rebuilt: ${err instanceof Error ? err.message : String(err)}`, 'bundle_invalid');
  }
}

/** The first position in sorted `xs` whose value is not below `x`. */
function lowerBound(xs: readonly string[], x: string): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The feature engine the self-check ran over a loaded bundle's whole history, kept for whoever
 * serves the bundle next: a server whose stored history begins with that history continues from it
 * instead of computing every feature of a long history a second time (a second at a million
 * bars). Taken once (the engine then belongs to the taker); a bundle nobody serves lets it go.
 */
const historyEngines = new WeakMap<LoadedBundle, FeatureEngine>();

/** The engine over `bundle.history` left by the load's self-check, once; undefined if none (or already taken). */
export function takeHistoryEngine(bundle: LoadedBundle): FeatureEngine | undefined {
  const engine = historyEngines.get(bundle);
  historyEngines.delete(bundle);
  return engine;
}

/** Forecasts for the bundle's evaluation dates, recomputed from its own history. */
export function recomputeEvaluation(bundle: Pick<LoadedBundle, 'manifest' | 'pipeline' | 'history'>): Float64Array {
  return evaluateOnHistory(bundle).forecasts;
}

/** The evaluation forecasts recomputed by an engine run over the history, and that engine. */
function evaluateOnHistory(bundle: Pick<LoadedBundle, 'manifest' | 'pipeline' | 'history'>): { forecasts: Float64Array; engine: FeatureEngine } {
  const { manifest, pipeline, history } = bundle;
  // The engine, not a batch table: the same rows by construction (the batch runs this engine), and
  // the engine can go on serving.
  const engine = pipeline.featureSet.createEngine(history);
  const dates = history.date;
  const row = new Float64Array(pipeline.featureSet.featureNames.length);
  const out = new Float64Array(manifest.evaluation.dates.length);
  // The history's dates are sorted (the CSV reader refuses them otherwise), and so are the
  // evaluation's, a suffix of them: one walk finds every row, where a Map of a million dates would
  // cost a second of start-up. A date out of order is looked up by binary search.
  let at = 0;
  manifest.evaluation.dates.forEach((date, j) => {
    if (at < dates.length && dates[at] > date) at = lowerBound(dates, date);
    while (at < dates.length && dates[at] < date) at++;
    const i = dates[at] === date ? at : undefined;
    if (i === undefined) throw new BundleError(`evaluation date ${shown(date)} is not in the bundle's history`, 'bundle_invalid');
    engine.featuresAt(i, row);
    out[j] = pipeline.predictFeatures(row);
  });
  return { forecasts: out, engine };
}

function selfCheck(bundle: LoadedBundle): void {
  const { forecasts: recomputed, engine } = evaluateOnHistory(bundle);
  const stored = bundle.manifest.evaluation.yPred;
  for (let j = 0; j < recomputed.length; j++) {
    if (!Object.is(recomputed[j], stored[j]))
      throw new BundleError(
        `bundle ${bundle.id} does not reproduce its own evaluation: on ${bundle.manifest.evaluation.dates[j]} it forecasts ${recomputed[j]}, the manifest says ${stored[j]}`,
        'bundle_not_reproducible',
      );
  }
  historyEngines.set(bundle, engine);
}
