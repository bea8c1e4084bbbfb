/**
 * Live monitoring of the served versions: the forecast log (./live-tracker.ts) read back and judged
 * against each version's offline evaluation (../monitor/live.ts). Its route: ./monitoring-routes.ts.
 */
import type { FastifyBaseLogger } from 'fastify';
import { DriftHistogram, driftReport, type DriftReport } from '../monitor/drift.js';
import {
  addScoreSums,
  forecastScores,
  judgeState,
  liveWindows,
  OfflineErrorModel,
  scoreSums,
  type ScoredForecast,
  type ScoreSums,
  type StateJudgement,
  type WindowReport,
} from '../monitor/live.js';
import type { ForecastLogRow, HistoryStore } from '../store/types.js';
import type { ForecastOutcome } from './forecast.js';
import { LiveTracker } from './live-tracker.js';
import type { ServiceMetrics } from './metrics.js';
import type { ModelRegistry, ServedModel } from './registry.js';

/** Scorings per process between retention checks of a model (each reads the log's newest rows). */
const COMPACT_EVERY = 50;
/** Gauges are recomputed at most this often per model (ms). */
const GAUGE_REFRESH_MS = 5000;
/** Rows folded into the compacted summary per transaction. */
const COMPACT_CHUNK = 1000;

/** What the forecast log keeps of the rows retention removed. */
interface CompactedLog {
  logged: number;
  unusable: number;
  unscored: number;
  re_forecasts: number;
  first_date: string;
  scores: ScoreSums | null;
}

const STATE_CODE = { ok: 0, insufficient_data: 1, degraded: 2 } as const;

export interface MonitoringReport {
  model: string;
  version: string;
  state: StateJudgement['state'];
  reason: string;
  test: StateJudgement['test'];
  feature_set: { name: string; lookahead: number };
  /** Counts since deployment; `retained` rows are held row by row, the older ones as sums (MONITOR_RETENTION). */
  log: { logged: number; retained: number; scored: number; pending: number; unusable: number; re_forecasts: number; first_date: string | null; last_date: string | null };
  /** Scored from each bar's final features: for a look-ahead feature set, what the offline evaluation scores. */
  live: WindowReport[];
  /** Look-ahead feature sets only: the forecasts as answered while the bar was the newest (provisional features). */
  as_served: WindowReport[] | null;
  /** The features of the logged bars against the bundle's training distribution. */
  drift: DriftReport;
  offline: {
    test: { rows: number; mae: number; mse: number; r2: number; hit_rate: number | null };
    baselines: { persistence: { mae: number; mse: number; r2: number; model_beats: boolean }; training_mean: { prediction: number; mae: number; mse: number; r2: number; model_beats: boolean } } | null;
  };
}

export class LiveMonitor {
  readonly tracker: LiveTracker;
  /** Per served version (kept while the version is): its offline errors' bootstrap bounds. */
  private readonly offline = new WeakMap<ServedModel, OfflineErrorModel>();
  private readonly lastState = new Map<string, string>();

  private readonly scoredSinceCheck = new Map<string, number>();

  constructor(
    private readonly store: HistoryStore,
    private readonly registry: ModelRegistry,
    private readonly metrics: ServiceMetrics,
    private readonly log: FastifyBaseLogger,
    /** Rows kept per version (MONITOR_RETENTION). */
    private readonly retention: number,
  ) {
    this.tracker = new LiveTracker(store, registry, log, (name, scored) => this.afterScoring(name, scored));
  }

  /** New scores: the gauges follow (throttled), and every COMPACT_EVERY scorings the retention is applied. */
  private async afterScoring(name: string, scored: number): Promise<void> {
    this.refreshGauges(name);
    const n = (this.scoredSinceCheck.get(name) ?? 0) + scored;
    this.scoredSinceCheck.set(name, n);
    if (n < COMPACT_EVERY) return;
    this.scoredSinceCheck.set(name, 0);
    for (const v of this.registry.versions(name)) await this.compact(v);
  }

  /**
   * Retention: the version's rows older than its newest `retention` are folded, a chunk at a time,
   * into the compacted summary and deleted. A chunk another process compacted first is refused by
   * the store; the next check starts again from what is left.
   */
  async compact(m: ServedModel): Promise<number> {
    const newest = await this.store.forecastLog(m.name, m.version, this.retention);
    if (newest.length < this.retention) return 0;
    const keepFrom = newest[0].date;
    const trainingMean = m.bundle.manifest.metrics.baselines?.trainingMean.prediction ?? null;
    let folded = 0;
    for (;;) {
      const old = await this.store.forecastLog(m.name, m.version, COMPACT_CHUNK, keepFrom);
      if (old.length === 0) return folded;
      const part = summarise(old, trainingMean);
      const done = await this.store.compactForecastLog<CompactedLog>(m.name, m.version, old[old.length - 1].date, old.length, (stored) => mergeCompacted(stored, part));
      if (!done) return folded;
      folded += old.length;
      this.log.info({ model: m.id, rows: old.length, through: old[old.length - 1].date }, 'forecast log rows compacted (MONITOR_RETENTION)');
    }
  }

  /** Called by the forecast path with every answer. */
  observe(out: ForecastOutcome, requestId: string): void {
    this.tracker.observe(out, requestId);
  }

  private offlineModel(m: ServedModel): OfflineErrorModel {
    let o = this.offline.get(m);
    if (!o) {
      const ev = m.bundle.manifest.evaluation;
      o = new OfflineErrorModel(ev.yTrue, ev.yPred);
      this.offline.set(m, o);
    }
    return o;
  }

  /** Gauge refreshes waiting for their turn, by model; the one running, by model; when each model's last one started. */
  private readonly gaugeTimers = new Map<string, NodeJS.Timeout>();
  private readonly gaugeRuns = new Map<string, Promise<void>>();
  private readonly gaugeLast = new Map<string, number>();

  /**
   * New scores move the gauges (and may change the state, which is logged): the model's reports are
   * computed again, off every request's path (a request waits for the scoring, not for this), and at
   * most once per GAUGE_REFRESH_MS per model. A report reads the whole retained log, so refreshing
   * after every scoring would make a burst of bars (a backfill, `evaluate --csv`) cost the square of
   * its length.
   */
  private refreshGauges(name: string): void {
    if (this.closed || this.gaugeTimers.has(name)) return;
    const wait = Math.max(0, (this.gaugeLast.get(name) ?? Number.NEGATIVE_INFINITY) + GAUGE_REFRESH_MS - performance.now());
    const timer = setTimeout(() => {
      this.gaugeTimers.delete(name);
      this.gaugeLast.set(name, performance.now());
      const run = (async () => {
        await this.gaugeRuns.get(name);
        for (const v of this.registry.versions(name)) if (!this.closed) await this.computeReport(v);
      })()
        .catch((err: unknown) => this.log.warn({ err, model: name }, 'live monitoring could not refresh its gauges'))
        .finally(() => {
          if (this.gaugeRuns.get(name) === run) this.gaugeRuns.delete(name);
        });
      this.gaugeRuns.set(name, run);
    }, wait);
    timer.unref();
    this.gaugeTimers.set(name, timer);
  }

  /**
   * The stored history changed at `date` (a bar deleted, when `deleted`; replaced; or inserted before
   * the newest): every outcome recorded from the bar before it on (less the largest look-ahead, whose
   * final features it entered too) is scored again from the history as it is now, before this resolves.
   */
  async historyCorrected(name: string, date: string, deleted: boolean): Promise<void> {
    const versions = this.registry.versions(name);
    if (versions.length === 0) return;
    const h = versions[0].history;
    const lookahead = Math.max(0, ...versions.map((v) => v.bundle.manifest.featureSet.lookahead));
    const at = Math.max(0, Math.min(h.length - 1, h.firstAtOrAfter(date) - 1 - lookahead));
    const from = h.length && h.date[at] < date ? h.date[at] : date;
    await this.store.reopenForecasts(name, from, deleted ? date : null);
    await this.tracker.refresh(name);
  }

  /** The version's live report, from the shared log, after this process's own logging and scoring finished. */
  async report(m: ServedModel): Promise<MonitoringReport> {
    await this.tracker.idle(m.name);
    await this.tracker.flushCounts();
    return this.computeReport(m);
  }

  private async computeReport(m: ServedModel): Promise<MonitoringReport> {
    const [compacted, rows] = await Promise.all([
      this.store.compactedForecasts<CompactedLog>(m.name, m.version),
      // Retention plus what the next compaction check may leave: every row still held.
      this.store.forecastLog(m.name, m.version, this.retention + COMPACT_EVERY * 4),
    ]);
    const man = m.bundle.manifest;
    const trainingMean = man.metrics.baselines?.trainingMean.prediction ?? null;
    const final: ScoredForecast[] = [];
    const served: ScoredForecast[] = [];
    let pending = 0;
    let unusable = 0;
    let reForecasts = 0;
    for (const r of rows) {
      reForecasts += r.served - 1;
      if (r.yTrue === null) {
        pending++;
        continue;
      }
      if (r.yFinal === null) unusable++;
      else final.push({ date: r.date, yPred: r.yFinal, yTrue: r.yTrue });
      if (r.yPred !== null) served.push({ date: r.date, yPred: r.yPred, yTrue: r.yTrue });
    }
    const drift = this.drift(m, rows);
    const live = liveWindows(final, trainingMean, compacted?.scores ?? null);
    const offline = this.offlineModel(m);
    const judgement = judgeState(live, offline, man.metrics.baselines?.persistence.modelBeats ?? null);
    this.record(m, judgement, live, drift);
    const ev = man.evaluation;
    const b = man.metrics.baselines;
    return {
      model: m.name,
      version: m.version,
      state: judgement.state,
      reason: judgement.reason,
      test: judgement.test,
      feature_set: { name: man.featureSet.name, lookahead: man.featureSet.lookahead },
      log: {
        logged: rows.length + (compacted?.logged ?? 0),
        retained: rows.length,
        scored: final.length + (compacted?.scores?.rows ?? 0),
        pending,
        unusable: unusable + (compacted?.unusable ?? 0),
        re_forecasts: reForecasts + (compacted?.re_forecasts ?? 0),
        first_date: compacted?.first_date ?? rows[0]?.date ?? null,
        last_date: rows.at(-1)?.date ?? null,
      },
      live,
      as_served: man.featureSet.lookahead > 0 ? liveWindows(served, trainingMean) : null,
      drift,
      offline: {
        test: { ...man.metrics.test, hit_rate: ev.yTrue.length ? forecastScores(ev.yTrue, ev.yPred).hit_rate : null },
        baselines: b
          ? {
              persistence: { ...b.persistence.metrics, model_beats: b.persistence.modelBeats },
              training_mean: { prediction: b.trainingMean.prediction, ...b.trainingMean.metrics, model_beats: b.trainingMean.modelBeats },
            }
          : null,
      },
    };
  }

  /**
   * Drift of the bars forecast since deployment (the logged dates), from their features as the
   * stored history gives them now: computed from the shared history, so every process reports the
   * same, with nothing more to store. Synchronous: the history cannot move meanwhile.
   */
  private drift(m: ServedModel, rows: readonly { date: string }[]): DriftReport {
    const distribution = m.bundle.manifest.featureDistribution;
    if (!distribution) return driftReport(null, null);
    const histogram = new DriftHistogram(distribution);
    m.features.update();
    for (const r of rows) {
      const i = m.history.indexOf(r.date);
      if (i === undefined) continue;
      const features = m.features.featuresAt(i);
      if (features instanceof Float64Array) histogram.add(features);
    }
    return driftReport(distribution, histogram);
  }

  /** Gauges, and a log line when the state changes. */
  private record(m: ServedModel, j: StateJudgement, live: readonly WindowReport[], drift: DriftReport): void {
    const labels = { model: m.name, version: m.version };
    this.metrics.liveState.set(labels, STATE_CODE[j.state]);
    this.metrics.liveScored.set(labels, live.find((w) => w.window === 'all')?.rows ?? 0);
    for (const w of live) this.metrics.liveMae.set({ ...labels, window: String(w.window) }, w.model.mae);
    for (const f of drift.features) if (f.psi !== null) this.metrics.featureDrift.set({ ...labels, feature: f.name }, f.psi);
    const before = this.lastState.get(m.id);
    if (before !== j.state) {
      this.lastState.set(m.id, j.state);
      const line = { model: m.id, from: before ?? null, to: j.state, reason: j.reason };
      if (j.state === 'degraded') this.log.warn(line, 'live monitoring state changed');
      else this.log.info(line, 'live monitoring state changed');
    }
  }

  private closed = false;

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.gaugeTimers.values()) clearTimeout(t);
    this.gaugeTimers.clear();
    await this.tracker.close();
    await Promise.all(this.gaugeRuns.values());
  }
}

/** What a run of log rows (oldest first) leaves once compacted. */
function summarise(rows: readonly ForecastLogRow[], trainingMean: number | null): CompactedLog {
  const scored: ScoredForecast[] = [];
  let unusable = 0;
  let unscored = 0;
  let reForecasts = 0;
  for (const r of rows) {
    reForecasts += r.served - 1;
    if (r.yTrue === null) unscored++;
    else if (r.yFinal === null) unusable++;
    else scored.push({ date: r.date, yPred: r.yFinal, yTrue: r.yTrue });
  }
  return { logged: rows.length, unusable, unscored, re_forecasts: reForecasts, first_date: rows[0].date, scores: scored.length ? scoreSums(scored, trainingMean) : null };
}

function mergeCompacted(stored: CompactedLog | null, part: CompactedLog): CompactedLog {
  if (!stored) return part;
  return {
    logged: stored.logged + part.logged,
    unusable: stored.unusable + part.unusable,
    unscored: stored.unscored + part.unscored,
    re_forecasts: stored.re_forecasts + part.re_forecasts,
    first_date: stored.first_date < part.first_date ? stored.first_date : part.first_date,
    scores: stored.scores && part.scores ? addScoreSums(stored.scores, part.scores) : (stored.scores ?? part.scores),
  };
}
