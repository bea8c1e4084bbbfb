/**
 * Live monitoring's part in serving: logs the forecast of each model's newest bar for every served
 * version, and scores logged forecasts once the next bar is stored, whichever request, worker or
 * replica stored it. Runs after the answers, off the request path: a request only notes what it
 * forecast (a few comparisons), and the store writes happen in one background run per model at a
 * time, whose failures are logged and retried by the next run, never a request's error.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { HistoryStore, LoggedForecast, ForecastOutcomeRow, ServedCount } from '../store/types.js';
import { forecastAt, type ForecastOutcome } from './forecast.js';
import type { ModelRegistry, ServedModel } from './registry.js';

/** Pending rows read per scoring run: a backlog (a long outage) is worked off over several runs. */
const SCORING_BATCH = 1000;
/** Distinct re-forecast dates counted between flushes; beyond it, counts wait for the next flush. */
const MAX_PENDING_COUNTS = 10_000;
/** Re-forecast counts are written at most this often (ms). */
const COUNT_FLUSH_MS = 5000;

/** One model's state in this process. */
interface ModelTrack {
  /** Newest date seen by the last run, and the history length then: a changed one needs a run. */
  newest: string | null;
  length: number;
  /** The newest date logged per version by this process (the store keeps the first row of any process). */
  logged: Map<string, string>;
  /** The first date this process logged for the model: dates before it were never logged, so never counted. */
  since: string | null;
  /** The newest bar's forecast as a request answered it, by version: logged with that request's id. */
  answered: Map<string, { date: string; yPred: number | null; provisional: boolean; requestId: string }>;
  running: Promise<void> | null;
  again: boolean;
}

export class LiveTracker {
  private readonly models = new Map<string, ModelTrack>();
  private counts = new Map<string, ServedCount>();
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly store: HistoryStore,
    private readonly registry: ModelRegistry,
    private readonly log: FastifyBaseLogger,
    /** Told after a run scored forecasts of a model, inside the run (retention: ./monitoring.ts). */
    private readonly afterScoring: (name: string, scored: number) => Promise<void> = async () => undefined,
  ) {
    this.timer = setInterval(() => void this.flushCounts(), COUNT_FLUSH_MS);
    this.timer.unref();
  }

  private track(name: string): ModelTrack {
    let t = this.models.get(name);
    if (!t) {
      t = { newest: null, length: -1, logged: new Map(), since: null, answered: new Map(), running: null, again: false };
      this.models.set(name, t);
    }
    return t;
  }

  /**
   * Notes a request's forecasts (synchronously, right after they were computed). The newest bar's
   * first forecast is remembered for the log; every other forecast of a date since deployment is a
   * re-forecast, counted (the store adds counts to logged rows only). The walk stops at the first
   * date before deployment: bounded by the request's own bars.
   */
  observe(out: ForecastOutcome, requestId: string): void {
    if (this.closed) return;
    const model = out.model;
    const h = model.history;
    const n = h.length;
    if (n === 0) return;
    const t = this.track(model.name);
    const newest = h.date[n - 1];
    const logged = t.logged.get(model.version);
    for (let k = out.forecasts.length - 1; k >= 0; k--) {
      const f = out.forecasts[k];
      if (f.date === newest && logged !== newest && !t.answered.has(model.version)) {
        t.answered.set(model.version, { date: newest, yPred: f.y_pred, provisional: f.provisional === true, requestId });
        continue;
      }
      if (t.since === null || f.date < t.since) break;
      this.count(model, f.date);
    }
    if (t.newest !== newest || t.length !== n || logged !== newest) this.schedule(model.name, t);
  }

  /** Runs logging and scoring for a model now (after its history was corrected), and resolves when done. */
  async refresh(name: string): Promise<void> {
    const t = this.track(name);
    t.length = -1;
    t.newest = null;
    this.schedule(name, t);
    await this.idle(name);
  }

  private count(model: ServedModel, date: string): void {
    const key = `${model.name}\u0000${model.version}\u0000${date}`;
    const c = this.counts.get(key);
    if (c) c.count++;
    else if (this.counts.size < MAX_PENDING_COUNTS) this.counts.set(key, { model: model.name, version: model.version, date, count: 1 });
  }

  private schedule(name: string, t: ModelTrack): void {
    if (t.running) {
      t.again = true;
      return;
    }
    t.running = (async () => {
      // Started on the next turn of the event loop: the requests that arrived together (and a shadow
      // version's forecasts of this one, which carry its request id) are noted before the run reads them.
      await new Promise<void>((resolve) => setImmediate(resolve));
      do {
        t.again = false;
        try {
          await this.run(name, t);
        } catch (err) {
          // The next request's run retries: logging and scoring are idempotent.
          this.log.warn({ err, model: name }, 'live monitoring could not log or score forecasts; will retry');
          t.length = -1;
          break;
        }
      } while (t.again && !this.closed);
    })().finally(() => {
      t.running = null;
    });
  }

  /** Logs the newest bar's forecast of every served version, then scores what the history now settles. */
  private async run(name: string, t: ModelTrack): Promise<void> {
    const versions = this.registry.versions(name);
    if (versions.length === 0) return;
    const h = versions[0].history;
    if (h.length === 0) return;
    const n = h.length;
    const newest = h.date[n - 1];
    const madeAt = new Date().toISOString();
    const rows: LoggedForecast[] = [];
    for (const v of versions) {
      if (t.logged.get(v.version) === newest) continue;
      const a = t.answered.get(v.version);
      const answered = a && a.date === newest ? a : null;
      const lookahead = v.bundle.manifest.featureSet.lookahead;
      rows.push({
        model: name,
        version: v.version,
        date: newest,
        yPred: answered ? answered.yPred : forecastAt(v, n - 1),
        provisional: answered ? answered.provisional : lookahead > 0,
        featureSet: v.bundle.manifest.featureSet.name,
        requestId: answered ? answered.requestId : null,
        madeAt,
      });
    }
    t.answered.clear();
    t.newest = newest;
    t.length = n;
    const outcomes = await this.outcomes(name);
    // One transaction (one durable commit) for both: a new bar's monitoring costs one write, not two.
    const written = rows.length + outcomes.length > 0 ? await this.store.writeForecastLog(rows, outcomes) : { logged: 0, scored: 0 };
    for (const r of rows) t.logged.set(r.version, r.date);
    if (rows.length > 0) t.since ??= newest;
    if (written.scored > 0) await this.afterScoring(name, written.scored);
  }

  /** The outcome of every logged forecast whose next bar (and look-ahead) is stored now. */
  private async outcomes(name: string): Promise<ForecastOutcomeRow[]> {
    const pending = await this.store.unscored(name, SCORING_BATCH);
    if (pending.length === 0) return [];
    // Synchronous from here to the write's start: the history and feature states cannot move meanwhile.
    const versions = new Map(this.registry.versions(name).map((v) => [v.version, v]));
    const outcomes: ForecastOutcomeRow[] = [];
    const scoredAt = new Date().toISOString();
    for (const p of pending) {
      const v = versions.get(p.version);
      // A version this process does not serve is scored by a process that does.
      if (!v) continue;
      const h = v.history;
      const i = h.indexOf(p.date);
      // A deleted bar: its row stays unscored (its outcome is not a fact any more).
      if (i === undefined) continue;
      if (i + Math.max(1, v.bundle.manifest.featureSet.lookahead) > h.length - 1) continue;
      outcomes.push({ model: name, version: p.version, date: p.date, yTrue: h.close[i + 1] / h.close[i], yFinal: forecastAt(v, i), scoredAt });
    }
    return outcomes;
  }

  /** Writes the re-forecast counts noted so far (also every few seconds, and at close). */
  async flushCounts(): Promise<void> {
    if (this.counts.size === 0) return;
    const rows = [...this.counts.values()];
    this.counts = new Map();
    try {
      await this.store.countServed(rows);
    } catch (err) {
      this.log.warn({ err, rows: rows.length }, 'live monitoring could not record re-forecast counts');
    }
  }

  /** Resolves when every run started so far has finished (the monitoring endpoint answers after this process's own work). */
  async idle(name?: string): Promise<void> {
    const tracks = name === undefined ? [...this.models.values()] : [this.models.get(name)].filter((t): t is ModelTrack => t !== undefined);
    for (const t of tracks) while (t.running) await t.running;
  }

  /** Finishes the runs in flight and writes the pending counts (before the store closes). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.idle();
    await this.flushCounts();
  }
}
