import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadBundle, type LoadedBundle } from '../bundle/index.js';
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

interface ModelEntry {
  name: string;
  /** Newest first. */
  versions: ServedModel[];
  history: HistoryMirror;
}

export interface ReloadReport {
  models: string[];
  added: string[];
  removed: string[];
  kept: string[];
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Newest last: numeric-aware (`2 < 10`, `2024-01-02 < 2024-03-01`), then by creation time. */
export function compareVersions(a: { version: string; createdAt?: string }, b: { version: string; createdAt?: string }): number {
  const c = a.version.localeCompare(b.version, 'en', { numeric: true, sensitivity: 'variant' });
  if (c !== 0) return c;
  return (a.createdAt ?? '').localeCompare(b.createdAt ?? '');
}

interface Candidate {
  name: string;
  version: string;
  dir: string | null;
  bundle: LoadedBundle | null;
}

async function subdirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
}

async function discover(source: ModelSource): Promise<Candidate[]> {
  const out: Candidate[] = [];
  for (const b of source.bundles ?? []) out.push({ name: b.manifest.name, version: b.manifest.version, dir: b.dir, bundle: b });
  if (source.bundleDir) out.push({ name: '', version: '', dir: resolve(source.bundleDir), bundle: null });
  if (source.modelsDir) {
    const root = resolve(source.modelsDir);
    if (!existsSync(root)) throw new ForecastError(`models folder ${root} does not exist`, 404, 'models_not_found');
    for (const name of await subdirs(root)) {
      const nameDir = join(root, name);
      if (existsSync(join(nameDir, 'manifest.json'))) {
        out.push({ name, version: '', dir: nameDir, bundle: null });
        continue;
      }
      for (const version of await subdirs(nameDir)) {
        const dir = join(nameDir, version);
        if (existsSync(join(dir, 'manifest.json'))) out.push({ name, version, dir, bundle: null });
      }
    }
  }
  return out;
}

/**
 * The served models: loaded once at start (and on `POST /admin/reload`), each model's history seeded
 * from its newest bundle when the store has none, each version with its own in-memory feature state.
 */
export class ModelRegistry {
  private entries = new Map<string, ModelEntry>();
  private defaultModelName: string | null = null;

  constructor(
    private readonly store: HistoryStore,
    private readonly preferredDefault: string | null = null,
    private readonly log: (msg: string, extra?: Record<string, unknown>) => void = () => undefined,
  ) {}

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

  /** Model `name` (default model when absent), version `version` (newest when absent); 404 otherwise. */
  resolve(name?: string | null, version?: string | null): ServedModel {
    const n = name ?? this.defaultModelName;
    if (n === null) throw new ForecastError('no model is loaded', 503, 'no_model');
    const entry = this.entries.get(n);
    if (!entry) throw new ForecastError(`unknown model '${n}' (served: ${this.names().join(', ') || 'none'})`, 404, 'unknown_model', { model: n });
    if (version === undefined || version === null || version === '') return entry.versions[0];
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

  /** Loads (or reloads) every bundle of `source`; unchanged versions keep their state. */
  async load(source: ModelSource): Promise<ReloadReport> {
    const candidates = await discover(source);
    const loaded: { name: string; version: string; bundle: LoadedBundle }[] = [];
    const old = new Map(this.all().map((m) => [`${m.name}@${m.version}`, m]));
    for (const c of candidates) {
      let bundle = c.bundle;
      // A version already served from the same folder is kept as is (bundles are immutable once written).
      const reuse = c.name && c.version ? old.get(`${c.name}@${c.version}`) : undefined;
      if (!bundle && reuse && reuse.bundle.dir === c.dir) bundle = reuse.bundle;
      // loadBundle verifies every file's checksum and that the bundle reproduces its own evaluation.
      bundle ??= await loadBundle(c.dir!);
      const name = c.name || bundle.manifest.name;
      const version = c.version || bundle.manifest.version;
      if (!NAME_RE.test(name)) throw new ForecastError(`model name '${name}' (${c.dir ?? 'given bundle'}) must match ${NAME_RE}`, 422, 'invalid_model_name');
      if (!NAME_RE.test(version)) throw new ForecastError(`model version '${version}' of ${name} must match ${NAME_RE}`, 422, 'invalid_model_name');
      if (c.name && bundle.manifest.name !== c.name)
        this.log(`bundle ${c.dir} says it is '${bundle.manifest.name}' but is served as '${c.name}' (its folder)`);
      // A single bundle folder reloaded unchanged keeps its served state.
      const prev = old.get(`${name}@${version}`);
      if (prev && prev.bundle !== bundle && prev.bundle.dir === bundle.dir && prev.bundle.manifest.createdAt === bundle.manifest.createdAt) bundle = prev.bundle;
      if (loaded.some((l) => l.name === name && l.version === version))
        throw new ForecastError(`two bundles claim ${name}@${version}`, 422, 'duplicate_model');
      loaded.push({ name, version, bundle });
    }
    if (loaded.length === 0) throw new ForecastError('no bundle found to serve', 404, 'no_model');

    const byName = new Map<string, typeof loaded>();
    for (const l of loaded) byName.set(l.name, [...(byName.get(l.name) ?? []), l]);
    const next = new Map<string, ModelEntry>();
    const report: ReloadReport = { models: [], added: [], removed: [], kept: [] };
    for (const [name, list] of [...byName.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      list.sort((a, b) => -compareVersions({ version: a.version, createdAt: a.bundle.manifest.createdAt }, { version: b.version, createdAt: b.bundle.manifest.createdAt }));
      let history = this.entries.get(name)?.history;
      if (!history) {
        history = new HistoryMirror(name, this.store);
        await this.store.ensureModel(name, list[0].bundle.history);
        await history.load();
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
        const served: ServedModel = { name, version: l.version, id, bundle: l.bundle, history, features: new FeatureState(l.bundle.pipeline.featureSet, history) };
        await history.lock.run(async () => {
          await history.sync();
          served.features.update();
        });
        versions.push(served);
        report.added.push(id);
      }
      next.set(name, { name, versions, history });
      report.models.push(...versions.map((v) => v.id));
    }
    for (const id of old.keys()) if (!report.models.includes(id)) report.removed.push(id);
    const pref = this.preferredDefault;
    if (pref && !next.has(pref)) throw new ForecastError(`default model '${pref}' is not among the served models (${[...next.keys()].join(', ')})`, 404, 'unknown_model');
    // Swap at once: requests in flight keep the objects they resolved.
    this.entries = next;
    this.defaultModelName = pref ?? [...next.keys()][0];
    return report;
  }
}
