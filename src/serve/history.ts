import type { Bar, BarSeries } from '../data/bars.js';
import type { FeatureEngine, FeatureSet } from '../features/types.js';
import { NO_ROUTING, type HistoryStore, type Routing } from '../store/types.js';
import { Mutex } from './mutex.js';

/**
 * A process's in-memory copy of one model's stored history, kept current by reading only what
 * changed since its version. Every request first catches up (one cheap version read when nothing
 * changed), so every worker process and replica answers from the same history.
 */
export class HistoryMirror {
  version = 0;
  /** Bumped whenever a bar other than a new newest bar changes (insert before the end, replace). */
  epoch = 0;
  readonly date: string[] = [];
  readonly open: number[] = [];
  readonly high: number[] = [];
  readonly low: number[] = [];
  readonly close: number[] = [];
  readonly volume: number[] = [];
  /** Which version answers and which runs in shadow, as of `version` (stored beside the history: every process agrees). */
  routing: Routing = { ...NO_ROUTING };
  /** Serialises this process's writes to the model's history (merges); reads never take it. */
  readonly lock = new Mutex();

  constructor(
    readonly model: string,
    private readonly store: HistoryStore,
  ) {}

  get length(): number {
    return this.date.length;
  }

  /**
   * Where a date is, by binary search over the sorted dates (ISO dates sort as strings). No Map of
   * every date: at a million bars one costs ~50 MiB and a second to build at every start, for
   * lookups that are nearly always of the newest bars (checked first).
   */
  indexOf(date: string): number | undefined {
    const d = this.date;
    let hi = d.length - 1;
    if (hi >= 0 && d[hi] === date) return hi;
    let lo = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = d[mid];
      if (v === date) return mid;
      if (v < date) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  /** The index of the first bar dated `date` or later (`length` when there is none). */
  firstAtOrAfter(date: string): number {
    const d = this.date;
    let lo = 0;
    let hi = d.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (d[mid] < date) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** What the copy holds, as the model card and the admin answers show it. */
  summary(): { version: number; bars: number; first_date: string | null; last_date: string | null } {
    const n = this.length;
    return { version: this.version, bars: n, first_date: n ? this.date[0] : null, last_date: n ? this.date[n - 1] : null };
  }

  barAt(i: number): Bar {
    return { date: this.date[i], open: this.open[i], high: this.high[i], low: this.low[i], close: this.close[i], volume: this.volume[i] };
  }

  /** The stored bar of a date (the merge rule's view of this copy). */
  get(date: string): Bar | undefined {
    const i = this.indexOf(date);
    return i === undefined ? undefined : this.barAt(i);
  }

  /** Whether the copy's first bars are exactly `bars` (same dates, same values to the bit). */
  startsWith(bars: BarSeries): boolean {
    const n = bars.date.length;
    if (n > this.length) return false;
    for (let i = 0; i < n; i++) {
      if (
        this.date[i] !== bars.date[i] ||
        !Object.is(this.open[i], bars.open[i]) ||
        !Object.is(this.high[i], bars.high[i]) ||
        !Object.is(this.low[i], bars.low[i]) ||
        !Object.is(this.close[i], bars.close[i]) ||
        !Object.is(this.volume[i], bars.volume[i])
      )
        return false;
    }
    return true;
  }

  /** A copy as a BarSeries (to seed a feature engine). */
  toSeries(): BarSeries {
    return this.slice(0, this.length);
  }

  /** A copy of bars `start` to `end` (exclusive): a snapshot that later writes do not move. */
  slice(start: number, end: number): BarSeries {
    const part = (c: number[]) => {
      const out = new Float64Array(end - start);
      for (let i = start; i < end; i++) out[i - start] = c[i];
      return out;
    };
    return { date: this.date.slice(start, end), open: part(this.open), high: part(this.high), low: part(this.low), close: part(this.close), volume: part(this.volume) };
  }

  /** Replaces the whole copy with a snapshot. */
  reset(snapshot: { version: number; bars: BarSeries; routing?: Routing }): void {
    const s = snapshot.bars;
    const n = s.date.length;
    // Sized once and filled by index: a million pushes per column cost ~0.6 s at a start.
    for (const a of [this.date, this.open, this.high, this.low, this.close, this.volume]) {
      a.length = 0;
      a.length = n;
    }
    for (let i = 0; i < n; i++) {
      this.date[i] = s.date[i];
      this.open[i] = s.open[i];
      this.high[i] = s.high[i];
      this.low[i] = s.low[i];
      this.close[i] = s.close[i];
      this.volume[i] = s.volume[i];
    }
    this.version = snapshot.version;
    if (snapshot.routing) this.routing = snapshot.routing;
    this.epoch++;
  }

  /** Loads the whole history from the store. */
  async load(): Promise<void> {
    this.reset(await this.store.load(this.model));
  }

  /** The catch-up read in flight, and the one waiting to start (shared by every caller until it starts). */
  private reading: Promise<void> | null = null;
  private queued: Promise<void> | null = null;

  /**
   * Catches up with the store: a version read, plus the changed bars when another writer moved it.
   * Concurrent callers share reads without weakening read-your-writes: a caller never joins a read
   * that started before it was called (it could miss a write acknowledged just before); it joins
   * the next read, which starts once the event loop has taken in the requests that arrived with it
   * (setImmediate), or once the read in flight ends. At most one read per model is in flight and one
   * waits, so a slow store costs one pending query, not one per request, and requests that arrive
   * together cost one version check.
   */
  sync(): Promise<void> {
    if (this.queued !== null) return this.queued;
    const start = (): Promise<void> => {
      this.queued = null;
      const read = this.readChanges().finally(() => {
        if (this.reading === read) this.reading = null;
      });
      this.reading = read;
      return read;
    };
    // A read that fails (the store is unavailable) fails its queue too: one timeout per request, not two.
    const fail = (err: unknown): never => {
      this.queued = null;
      throw err;
    };
    this.queued = this.reading === null ? new Promise<void>((resolve) => setImmediate(resolve)).then(start) : this.reading.then(start, fail);
    return this.queued;
  }

  private async readChanges(): Promise<void> {
    const changes = await this.store.changesSince(this.model, this.version);
    if (changes.version === this.version) return;
    if (changes.version < this.version) {
      // The store went back (restored from a backup): start over from it.
      await this.load();
      return;
    }
    // Deletions first: a date deleted and stored again since is in both lists, and its bar is newer.
    this.remove(changes.deleted);
    this.apply(changes.bars);
    if (changes.routing) this.routing = changes.routing;
    this.version = changes.version;
  }

  /** Drops deleted dates (an administrator's correction: rare, so one pass over the copy is fine). */
  private remove(dates: readonly string[]): void {
    const gone = new Set<number>();
    for (const d of dates) {
      const i = this.indexOf(d);
      if (i !== undefined) gone.add(i);
    }
    if (gone.size === 0) return;
    let kept = 0;
    for (let i = 0; i < this.length; i++) {
      if (gone.has(i)) continue;
      this.date[kept] = this.date[i];
      this.open[kept] = this.open[i];
      this.high[kept] = this.high[i];
      this.low[kept] = this.low[i];
      this.close[kept] = this.close[i];
      this.volume[kept] = this.volume[i];
      kept++;
    }
    for (const c of [this.date, this.open, this.high, this.low, this.close, this.volume]) c.length = kept;
    // Every feature from the deleted bar on changes: the feature states rebuild (FeatureState.update).
    this.epoch++;
  }

  /** Applies new or replaced bars (sorted by date). */
  private apply(bars: readonly Bar[]): void {
    let rebuild = false;
    const inserts: Bar[] = [];
    for (const b of bars) {
      const i = this.indexOf(b.date);
      if (i !== undefined) {
        if (this.open[i] !== b.open || this.high[i] !== b.high || this.low[i] !== b.low || this.close[i] !== b.close || this.volume[i] !== b.volume) {
          this.open[i] = b.open;
          this.high[i] = b.high;
          this.low[i] = b.low;
          this.close[i] = b.close;
          this.volume[i] = b.volume;
          this.epoch++;
        }
      } else if (this.length === 0 || b.date > this.date[this.length - 1]) {
        this.push(b);
      } else {
        inserts.push(b);
        rebuild = true;
      }
    }
    if (!rebuild) return;
    // Bars inserted before the newest one: merge the two sorted lists and recompute from there on.
    const old = Array.from({ length: this.length }, (_, i) => this.barAt(i));
    for (const a of [this.date, this.open, this.high, this.low, this.close, this.volume]) a.length = 0;
    let i = 0;
    let j = 0;
    while (i < old.length || j < inserts.length) {
      if (j >= inserts.length || (i < old.length && old[i].date < inserts[j].date)) this.push(old[i++]);
      else this.push(inserts[j++]);
    }
    this.epoch++;
  }

  private push(b: Bar): void {
    this.date.push(b.date);
    this.open.push(b.open);
    this.high.push(b.high);
    this.low.push(b.low);
    this.close.push(b.close);
    this.volume.push(b.volume);
  }
}

/** Bars appended between yields when a feature state catches up with a large write. */
const APPEND_SLICE = 2048;

/** Why a bar gets no forecast. */
export interface NoForecast {
  reason: string;
}

/**
 * One served model version's incremental feature state over its model's history mirror: appends
 * new newest bars in constant work each, rebuilt from the first bar when an older bar changed.
 */
export class FeatureState {
  private engine: FeatureEngine;
  private epoch = -1;
  private readonly row: Float64Array;

  /** An engine already run over `bars` (the bundle's history, by its load's self-check), until the first update decides. */
  private start: { engine: FeatureEngine; bars: BarSeries } | null;

  constructor(
    readonly featureSet: FeatureSet,
    private readonly history: HistoryMirror,
    start?: { engine: FeatureEngine; bars: BarSeries },
  ) {
    this.engine = featureSet.createEngine();
    this.row = new Float64Array(featureSet.featureNames.length);
    this.start = start && start.engine.length === start.bars.date.length ? start : null;
  }

  /**
   * Forecasts already made for bars whose features are final (NaN: none yet), so a bar forecast
   * again (a client re-sending its recent window) costs a lookup, not the pipeline. Cleared whenever
   * the engine is rebuilt (a bar before the newest was inserted or replaced).
   */
  private finalForecasts = new Float64Array(0);
  /** Bumped by every rebuild of the engine. */
  private generation = 0;

  /** Brings the engine up to the mirror (call after `sync`, in the request's synchronous section). */
  update(): void {
    const h = this.history;
    const start = this.start;
    this.start = null;
    if (start && this.epoch === -1 && h.startsWith(start.bars)) {
      // The stored history begins with the bars the engine has seen: continue from there.
      this.engine = start.engine;
      this.epoch = h.epoch;
      this.generation++;
    } else if (this.epoch !== h.epoch || this.engine.length > h.length) {
      // Rebuilt from the whole history (the engine's seeded start computes it in one pass).
      this.engine = this.featureSet.createEngine(h.toSeries());
      this.epoch = h.epoch;
      this.generation++;
      this.finalForecasts.fill(Number.NaN);
    }
    for (let i = this.engine.length; i < h.length; i++) this.engine.append(h.barAt(i));
  }

  get length(): number {
    return this.engine.length;
  }

  /** The forecast made earlier for bar `i`, when its features were already final then. */
  knownForecast(i: number): number | undefined {
    const y = i < this.finalForecasts.length ? this.finalForecasts[i] : Number.NaN;
    return Number.isNaN(y) ? undefined : y;
  }

  /** Identifies the features read now: a forecast made from them may be remembered only while it still holds. */
  stamp(): { generation: number; length: number } {
    return { generation: this.generation, length: this.engine.length };
  }

  /**
   * Remembers bar `i`'s forecast, made from features read at `stamp`, if those features were final
   * (`lookahead` later bars were known) and no rebuild happened since (a large request predicts
   * after yields, while other requests may have moved the state).
   */
  rememberForecast(i: number, y: number, stamp: { generation: number; length: number }): void {
    if (stamp.generation !== this.generation || i >= stamp.length - this.featureSet.lookahead) return;
    if (i >= this.finalForecasts.length) {
      const grown = new Float64Array(Math.max(1024, this.engine.length * 2)).fill(Number.NaN);
      grown.set(this.finalForecasts);
      this.finalForecasts = grown;
    }
    this.finalForecasts[i] = y;
  }

  /** True when more than one slice of bars waits to be appended (a large request's new bars). */
  get lagging(): boolean {
    return this.history.length - this.engine.length > APPEND_SLICE;
  }

  /**
   * Appends waiting bars in slices with a yield between them, so a large request's new bars do not
   * hold the event loop; the request's synchronous `update()` then finds little or nothing left.
   * Safe beside concurrent requests: every append leaves the engine consistent, and `update()`
   * continues from wherever it stands.
   */
  async catchUp(): Promise<void> {
    while (this.lagging) {
      const h = this.history;
      if (this.epoch !== h.epoch || this.engine.length > h.length) return; // a rebuild: update() does it in one pass
      const end = this.engine.length + APPEND_SLICE;
      for (let i = this.engine.length; i < end; i++) this.engine.append(h.barAt(i));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /**
   * The features of bar `i` as known now, in a buffer reused by the next call; or why there are none
   * usable (a feature not defined for lack of history, or not finite).
   */
  featuresAt(i: number): Float64Array | NoForecast {
    const row = this.row;
    this.engine.featuresAt(i, row);
    for (let j = 0; j < row.length; j++) if (!Number.isFinite(row[j])) return { reason: this.explain(i, row) };
    return row;
  }

  private explain(i: number, row: Float64Array): string {
    const names = this.featureSet.featureNames;
    const bad: string[] = [];
    for (let j = 0; j < row.length; j++) if (!Number.isFinite(row[j])) bad.push(`${names[j]}=${row[j]}`);
    const warmup = this.featureSet.warmupBars;
    if (i < warmup)
      return `insufficient history: ${bad.join(', ')} not defined at this bar (the ${this.featureSet.name} feature set needs ${warmup} earlier bars; this is bar ${i} of the stored history)`;
    return `non-finite features: ${bad.join(', ')} (a degenerate window, e.g. high equal to low or a flat price range)`;
  }
}
