import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { bundleUnchanged, loadBundle, MANIFEST_FILE, MODEL_NAME_RE, takeHistoryEngine, type LoadedBundle } from '../bundle/index.js';
import { ForecastError } from '../errors.js';
import type { HistoryStore } from '../store/types.js';
import { FeatureState, HistoryMirror } from './history.js';

/** Where the served bundles come from. */
export interface ModelSource {
  /** One bundle folder: served under its manifest's name and version. */
  bundleDir?: string | null;
  /** A folder laid out `name/version/` (each a bundle folder); `name/` may itself be a bundle. */
  modelsDir?: string | null;
  /** Bundles already loaded (tests, embedding). Served under their manifest's name and version. */
  bundles?: readonly LoadedBundle[];
}

/** One served model version: its bundle, the shared history of its model, its own feature state. */
export interface ServedModel {
  readonly name: string;
  readonly version: string;
  /** `name@version`. */
  readonly id: string;
  readonly bundle: LoadedBundle;
  readonly history: HistoryMirror;
  readonly features: FeatureState;
}

/** A served model: its versions (newest first) and the one history they share. */
export interface ServedModelGroup {
  readonly name: string;
  readonly versions: readonly ServedModel[];
  readonly history: HistoryMirror;
}

/** A bundle version (or a folder of them) the last load did not serve, and why. */
export interface RefusedBundle {
  /** The folder refused (absolute), or null for a bundle given in memory. */
  dir: string | null;
  /** Model name and version when known (from the folder names, or the copy served before). */
  model?: string;
  version?: string;
  /** Machine-readable: the error's code, e.g. `bundle_tampered`, `bundle_not_reproducible`, `bundle_unknown_feature_set`. */
  code: string;
  /** One line naming the folder and the problem; never a file's contents. */
  reason: string;
}

export interface ReloadReport {
  models: string[];
  added: string[];
  removed: string[];
  /**
   * Versions served before and still served by the same objects. A version both here and in
   * `refused` is one whose folder became damaged or changed: the copy loaded before is still served.
   */
  kept: string[];
  refused: RefusedBundle[];
}

/** Folders a file system makes by itself at the root of a volume: never a model. */
const FS_ARTEFACTS = new Set(['lost+found']);
const MAX_REASON = 500;

/** Newest last: numeric-aware (`2 < 10`, `2024-01-02 < 2024-03-01`), then by creation time. */
export function compareVersions(a: { version: string; createdAt?: string }, b: { version: string; createdAt?: string }): number {
  const c = a.version.localeCompare(b.version, 'en', { numeric: true, sensitivity: 'variant' });
  if (c !== 0) return c;
  return (a.createdAt ?? '').localeCompare(b.createdAt ?? '');
}

interface Candidate {
  /** From the folder names; '' when the manifest decides (a bundle folder given alone, a name folder that is a bundle). */
  name: string;
  version: string;
  dir: string | null;
  bundle: LoadedBundle | null;
}

/** One line, bounded: messages may carry a path or a parser's text of unknown length. */
function oneLine(text: string): string {
  const s = text.replace(/[\r\n\t]+/g, ' ').trim();
  return s.length > MAX_REASON ? `${s.slice(0, MAX_REASON)}...` : s;
}

function refusal(c: Pick<Candidate, 'dir' | 'name' | 'version'>, err: unknown, known?: { name: string; version: string }): RefusedBundle {
  const code = err instanceof ForecastError ? err.code : 'load_failed';
  const reason = oneLine(err instanceof Error ? err.message : String(err));
  const model = c.name || known?.name;
  const version = c.version || known?.version;
  return { dir: c.dir, ...(model ? { model } : {}), ...(version ? { version } : {}), code, reason };
}

function errno(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : String(err);
}

/** Sub-folders (dot folders and file-system artefacts left out), sorted. */
async function subdirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.') || FS_ARTEFACTS.has(e.name)) continue;
    // A link to a folder counts as a folder (a `current -> 3` version, a mounted volume's layout).
    if (e.isDirectory() || (e.isSymbolicLink() && (await stat(join(dir, e.name)).then((s) => s.isDirectory(), () => false)))) names.push(e.name);
  }
  return names.sort();
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Every bundle version the source names. A folder that cannot be listed is refused, not thrown: one
 * unreadable model folder must not hide the others, and a missing models folder (an empty or absent
 * mount) is zero models, reported, so the service still starts and can be reloaded later.
 */
async function discover(source: ModelSource): Promise<{ candidates: Candidate[]; refused: RefusedBundle[] }> {
  const candidates: Candidate[] = [];
  const refused: RefusedBundle[] = [];
  for (const b of source.bundles ?? []) candidates.push({ name: '', version: '', dir: b.dir, bundle: b });
  if (source.bundleDir) candidates.push({ name: '', version: '', dir: resolve(source.bundleDir), bundle: null });
  if (source.modelsDir) {
    const root = resolve(source.modelsDir);
    let names: string[] = [];
    try {
      names = await subdirs(root);
    } catch (err) {
      const what = errno(err) === 'ENOENT' ? 'does not exist' : errno(err) === 'ENOTDIR' ? 'is not a folder' : `cannot be read (${errno(err)})`;
      refused.push({ dir: root, code: errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR' ? 'models_not_found' : 'models_unreadable', reason: `models folder ${root} ${what}` });
    }
    for (const name of names) {
      const nameDir = join(root, name);
      if (await exists(join(nameDir, MANIFEST_FILE))) {
        candidates.push({ name, version: '', dir: nameDir, bundle: null });
        continue;
      }
      let versions: string[];
      try {
        versions = await subdirs(nameDir);
      } catch (err) {
        refused.push({ dir: nameDir, model: name, code: 'bundle_unreadable', reason: `model folder ${nameDir} cannot be read (${errno(err)})` });
        continue;
      }
      if (versions.length === 0)
        refused.push({ dir: nameDir, model: name, code: 'bundle_not_found', reason: `model folder ${nameDir} holds no bundle: expected ${name}/<version>/ folders, or a bundle itself` });
      for (const version of versions) candidates.push({ name, version, dir: join(nameDir, version), bundle: null });
    }
  }
  return { candidates, refused };
}

interface Loaded {
  name: string;
  version: string;
  bundle: LoadedBundle;
}

/**
 * The served models: loaded once at start (and on `POST /admin/reload`), each model's history seeded
 * from its newest bundle when the store has none, each version with its own in-memory feature state.
 *
 * A load never fails because of a bundle: every version that cannot be served (damaged, unreadable,
 * newer format, unknown feature set, bad name, a second claim to a name@version) is refused, logged
 * and reported, and every other version is served; zero models is a valid state (`resolve` answers
 * 503 `no_models`). Only a store failure throws, and then nothing is swapped.
 */
export class ModelRegistry {
  private entries = new Map<string, ServedModelGroup>();
  private defaultModelName: string | null = null;
  private refusedLast: readonly RefusedBundle[] = [];

  constructor(
    private readonly store: HistoryStore,
    private readonly preferredDefault: string | null = null,
    private readonly log: (msg: string, extra?: Record<string, unknown>) => void = () => undefined,
  ) {}

  /** The default model's name; null when no model is loaded or the configured default is not. */
  get defaultName(): string | null {
    return this.defaultModelName;
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  versions(name: string): readonly ServedModel[] {
    return this.entries.get(name)?.versions ?? [];
  }

  all(): ServedModel[] {
    return [...this.entries.values()].flatMap((e) => e.versions);
  }

  /** Every served model with its shared history, in name order (e.g. to `history.sync()` each before reporting it). */
  models(): readonly ServedModelGroup[] {
    return [...this.entries.values()];
  }

  /** The version of `name` running in shadow beside its default, when one is routed and served here. */
  shadow(name: string): ServedModel | null {
    const entry = this.entries.get(name);
    const v = entry?.history.routing.shadowVersion;
    return (v && entry?.versions.find((m) => m.version === v)) || null;
  }

  /** What the last load refused. */
  refused(): readonly RefusedBundle[] {
    return this.refusedLast;
  }

  /**
   * Model `name` (default model when absent), version `version` (when absent: the default version
   * the model's stored routing names, else the newest); 404 otherwise, 503 with nothing to serve,
   * or when the routing names a version this process does not serve (never another version instead).
   */
  resolve(name?: string | null, version?: string | null): ServedModel {
    if (this.entries.size === 0) {
      const n = this.refusedLast.length;
      throw new ForecastError(
        `no model is loaded${n ? ` (${n} bundle folder${n === 1 ? '' : 's'} refused: see /readyz)` : ''}: add a bundle and POST /admin/reload`,
        503,
        'no_models',
      );
    }
    const n = name ?? this.defaultModelName;
    if (n === null)
      throw new ForecastError(
        `the default model '${this.preferredDefault}' is not loaded (served: ${this.names().join(', ')}): name a model in the URL, or fix its bundle and POST /admin/reload`,
        503,
        'default_model_unavailable',
        { model: this.preferredDefault },
      );
    const entry = this.entries.get(n);
    if (!entry) throw new ForecastError(`unknown model '${n}' (served: ${this.names().join(', ') || 'none'})`, 404, 'unknown_model', { model: n });
    if (version === undefined || version === null || version === '') {
      const promoted = entry.history.routing.defaultVersion;
      if (promoted === null) return entry.versions[0];
      const chosen = entry.versions.find((v) => v.version === promoted);
      if (!chosen)
        throw new ForecastError(
          `model '${n}' is routed to version '${promoted}', which this process does not serve (served: ${entry.versions.map((v) => v.version).join(', ')}): deploy its bundle here and POST /admin/reload`,
          503,
          'default_version_unavailable',
          { model: n, version: promoted },
        );
      return chosen;
    }
    const found = entry.versions.find((v) => v.version === version);
    if (!found)
      throw new ForecastError(
        `model '${n}' has no version '${version}' (served: ${entry.versions.map((v) => v.version).join(', ')})`,
        404,
        'unknown_version',
        { model: n, version },
      );
    return found;
  }

  /**
   * The bundle to serve for one candidate, or a refusal. A folder served before is verified again
   * (every file's sha256) rather than trusted: when it is damaged, or was changed in place under the
   * same name@version, it is refused and the copy loaded before **keeps being served** (it was
   * verified when loaded and is still in memory; dropping it would turn a disk or deploy accident
   * into an outage, and the refusal says what happened). A folder that now holds another version
   * serves that version.
   */
  private async loadCandidate(c: Candidate, previous: readonly ServedModel[], refused: RefusedBundle[]): Promise<Loaded | null> {
    if (c.bundle) return { name: c.bundle.manifest.name, version: c.bundle.manifest.version, bundle: c.bundle };
    const dir = c.dir!;
    const prev = previous.find((m) => m.bundle.dir === dir && m.bundle.files && (!c.name || m.name === c.name) && (!c.version || m.version === c.version));
    const keepPrev = (err: unknown): Loaded | null => {
      const r = refusal(c, err, prev);
      if (prev) r.reason = oneLine(`${r.reason}; still serving ${prev.id} as loaded before`);
      refused.push(r);
      return prev ? { name: prev.name, version: prev.version, bundle: prev.bundle } : null;
    };
    try {
      if (prev && (await bundleUnchanged(prev.bundle, dir))) return { name: prev.name, version: prev.version, bundle: prev.bundle };
      // loadBundle verifies every file's checksum and that the bundle reproduces its own evaluation.
      const bundle = await loadBundle(dir);
      const name = c.name || bundle.manifest.name;
      const version = c.version || bundle.manifest.version;
      if (prev && prev.name === name && prev.version === version)
        return keepPrev(
          new ForecastError(`bundle folder ${dir} changed since ${prev.id} was loaded from it: publish a changed model as a new version`, 409, 'bundle_changed'),
        );
      if (c.name && bundle.manifest.name !== c.name) this.log(`bundle ${dir} says it is '${bundle.manifest.name}' but is served as '${c.name}' (its folder)`);
      return { name, version, bundle };
    } catch (err) {
      return keepPrev(err);
    }
  }

  /** Loads (or reloads) every bundle of `source`; unchanged versions keep their state. */
  async load(source: ModelSource): Promise<ReloadReport> {
    const { candidates, refused } = await discover(source);
    const previous = this.all();
    const old = new Map(previous.map((m) => [m.id, m]));
    const loaded: (Loaded & { dir: string | null })[] = [];
    const badName = (name: string, version: string) =>
      name && !MODEL_NAME_RE.test(name) ? `model name '${name}'` : version && !MODEL_NAME_RE.test(version) ? `model version '${version}' of ${name}` : null;
    for (const c of candidates) {
      // Folder names are the URL names: a folder that cannot be one is refused before it is read.
      const badFolder = badName(c.name, c.version);
      const l = badFolder ? null : await this.loadCandidate(c, previous, refused);
      const bad = badFolder ?? (l ? badName(l.name, l.version) : null);
      if (bad) {
        const [model, version] = l ? [l.name, l.version] : [c.name, c.version];
        refused.push({ dir: c.dir, model, ...(version ? { version } : {}), code: 'invalid_model_name', reason: oneLine(`${bad} (${c.dir ?? 'given bundle'}) must match ${MODEL_NAME_RE}`) });
        continue;
      }
      if (!l) continue;
      const first = loaded.find((x) => x.name === l.name && x.version === l.version);
      if (first) {
        // The first claim wins (given bundles, then the bundle folder, then the models folder in name order): deterministic.
        refused.push({ dir: c.dir, model: l.name, version: l.version, code: 'duplicate_model', reason: `two bundles claim ${l.name}@${l.version}: ${first.dir ?? 'a given bundle'} is served, ${c.dir ?? 'a given bundle'} is not` });
        continue;
      }
      loaded.push({ ...l, dir: c.dir });
    }

    const byName = new Map<string, Loaded[]>();
    for (const l of loaded) byName.set(l.name, [...(byName.get(l.name) ?? []), l]);
    const next = new Map<string, ServedModelGroup>();
    const report: ReloadReport = { models: [], added: [], removed: [], kept: [], refused };
    for (const [name, list] of [...byName.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      list.sort((a, b) => -compareVersions({ version: a.version, createdAt: a.bundle.manifest.createdAt }, { version: b.version, createdAt: b.bundle.manifest.createdAt }));
      let history = this.entries.get(name)?.history;
      if (!history) {
        history = new HistoryMirror(name, this.store);
        const seed = list[0].bundle.history;
        const stored = await this.store.ensureModel(name, seed);
        // Just written: the seed is the stored history at that version (later writes are caught up by sync).
        if (stored.seeded) history.reset({ version: stored.version, bars: seed });
        else await history.load();
      }
      const versions: ServedModel[] = [];
      for (const l of list) {
        const id = `${name}@${l.version}`;
        const prev = old.get(id);
        if (prev && prev.bundle === l.bundle && prev.history === history) {
          versions.push(prev);
          report.kept.push(id);
          continue;
        }
        // The engine the bundle's self-check ran over its history: reused when the stored history begins with it.
        const engine = takeHistoryEngine(l.bundle);
        const start = engine ? { engine, bars: l.bundle.history } : undefined;
        const served: ServedModel = { name, version: l.version, id, bundle: l.bundle, history, features: new FeatureState(l.bundle.pipeline.featureSet, history, start) };
        const h = history;
        let failure: unknown = null;
        await h.lock.run(async () => {
          // A store failure is not this bundle's: it propagates and nothing is swapped.
          await h.sync();
          try {
            served.features.update();
          } catch (err) {
            failure = err;
          }
        });
        if (failure !== null) {
          refused.push(refusal({ dir: l.bundle.dir, name, version: l.version }, failure));
          continue;
        }
        versions.push(served);
        report.added.push(id);
      }
      if (versions.length === 0) continue;
      next.set(name, { name, versions, history });
      report.models.push(...versions.map((v) => v.id));
    }
    for (const id of old.keys()) if (!report.models.includes(id)) report.removed.push(id);
    for (const r of refused) this.log(`bundle refused: ${r.reason}`, { refused: r });

    const pref = this.preferredDefault;
    if (pref && !next.has(pref) && next.size > 0)
      this.log(`the default model '${pref}' is not loaded (served: ${[...next.keys()].join(', ')}): requests that name no model get a 503`, { model: pref });
    // Swap at once: requests in flight keep the objects they resolved.
    this.entries = next;
    this.refusedLast = Object.freeze([...refused]);
    this.defaultModelName = pref ? (next.has(pref) ? pref : null) : ([...next.keys()][0] ?? null);
    return report;
  }
}
