import client from 'prom-client';
import type { ModelRegistry } from './registry.js';

/**
 * Prometheus metrics of one app instance, in its own registry (several apps may share a process in
 * tests). Under node:cluster the primary aggregates every worker's registry (AggregatorRegistry):
 * counters and histograms are summed, history gauges take the maximum (every worker mirrors the same
 * history).
 */
export class ServiceMetrics {
  readonly registry = new client.Registry();
  readonly requests: client.Counter<'method' | 'route' | 'status' | 'model'>;
  readonly latency: client.Histogram<'method' | 'route' | 'model'>;
  readonly forecasts: client.Counter<'model' | 'outcome'>;
  readonly barsWritten: client.Counter<'model' | 'kind'>;
  /** Live monitoring per model version (set whenever a monitoring report is computed; see ./monitoring.ts). */
  readonly liveState: client.Gauge<'model' | 'version'>;
  readonly liveMae: client.Gauge<'model' | 'version' | 'window'>;
  readonly liveScored: client.Gauge<'model' | 'version'>;
  readonly featureDrift: client.Gauge<'model' | 'version' | 'feature'>;

  /** Label-bound children of the per-request metrics, so a request hashes no label object (hot path). */
  private readonly requestChildren = new Map<string, { inc(): void; observe(seconds: number): void }>();

  /** Counts one answered request and its server time. */
  observeRequest(method: string, route: string, status: number, model: string, seconds: number): void {
    const key = `${method} ${route} ${status} ${model}`;
    let child = this.requestChildren.get(key);
    if (!child) {
      const counter = this.requests.labels({ method, route, status: String(status), model });
      const histogram = this.latency.labels({ method, route, model });
      child = { inc: () => counter.inc(), observe: (s) => histogram.observe(s) };
      // Bounded by routes × statuses × models: route templates, not raw URLs, are the labels.
      if (this.requestChildren.size < 10_000) this.requestChildren.set(key, child);
    }
    child.inc();
    child.observe(seconds);
  }

  private readonly forecastChildren = new Map<string, { values: { inc(n: number): void }; nulls: { inc(n: number): void } }>();

  /** Counts one request's forecasts: `values` with a number, `nulls` without (features not usable). */
  observeForecasts(model: string, values: number, nulls: number): void {
    let child = this.forecastChildren.get(model);
    if (!child) {
      child = { values: this.forecasts.labels({ model, outcome: 'value' }), nulls: this.forecasts.labels({ model, outcome: 'null' }) };
      if (this.forecastChildren.size < 10_000) this.forecastChildren.set(model, child);
    }
    if (values) child.values.inc(values);
    if (nulls) child.nulls.inc(nulls);
  }

  constructor(getRegistry: () => ModelRegistry | null) {
    const registers = [this.registry];
    this.requests = new client.Counter({
      name: 'forecast_http_requests_total',
      help: 'HTTP requests by route template, status and model.',
      labelNames: ['method', 'route', 'status', 'model'],
      registers,
    });
    this.latency = new client.Histogram({
      name: 'forecast_http_request_duration_seconds',
      help: 'Server time per request (from receipt to the response being sent), by route and model.',
      labelNames: ['method', 'route', 'model'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.forecasts = new client.Counter({
      name: 'forecast_forecasts_total',
      help: 'Forecasts answered (one per submitted bar); outcome=value or outcome=null (features not usable).',
      labelNames: ['model', 'outcome'],
      registers,
    });
    this.barsWritten = new client.Counter({
      name: 'forecast_history_bars_written_total',
      help: 'Bars this process wrote to the history store (kind=added, replaced, or deleted by an administrator).',
      labelNames: ['model', 'kind'],
      registers,
    });
    // Every process computes these from the one shared forecast log: under node:cluster the largest reading stands (for the state, the worst).
    this.liveState = new client.Gauge({
      name: 'forecast_live_state',
      help: 'Live monitoring state of a model version: 0 ok, 1 insufficient_data, 2 degraded (GET /models/{name}/monitoring says why).',
      labelNames: ['model', 'version'],
      aggregator: 'max',
      registers,
    });
    this.liveMae = new client.Gauge({
      name: 'forecast_live_mae',
      help: 'Live MAE of a model version over its newest scored bars (window=20, 60, 250 or all).',
      labelNames: ['model', 'version', 'window'],
      aggregator: 'max',
      registers,
    });
    this.liveScored = new client.Gauge({
      name: 'forecast_live_scored_forecasts',
      help: 'Forecasts of a model version scored against their realised outcome since deployment.',
      labelNames: ['model', 'version'],
      aggregator: 'max',
      registers,
    });
    this.featureDrift = new client.Gauge({
      name: 'forecast_feature_drift_psi',
      help: "Population stability index of a feature: the bars forecast since deployment against the bundle's training distribution (0.1 moderate, 0.25 significant).",
      labelNames: ['model', 'version', 'feature'],
      aggregator: 'max',
      registers,
    });
    new client.Gauge({
      name: 'forecast_history_bars',
      help: 'Bars in the model history (as mirrored by this process).',
      labelNames: ['model'],
      aggregator: 'max',
      registers,
      collect() {
        const reg = getRegistry();
        if (!reg) return;
        for (const name of reg.names()) this.set({ model: name }, reg.versions(name)[0]?.history.length ?? 0);
      },
    });
    new client.Gauge({
      name: 'forecast_history_version',
      help: 'Version of the model history (bumped by every write).',
      labelNames: ['model'],
      aggregator: 'max',
      registers,
      collect() {
        const reg = getRegistry();
        if (!reg) return;
        for (const name of reg.names()) this.set({ model: name }, reg.versions(name)[0]?.history.version ?? 0);
      },
    });
    new client.Gauge({
      name: 'forecast_models_loaded',
      help: 'Model versions loaded.',
      aggregator: 'max',
      registers,
      collect() {
        this.set(getRegistry()?.all().length ?? 0);
      },
    });
    new client.Gauge({
      name: 'forecast_bundles_refused',
      help: 'Bundle versions (or folders) the last load or reload refused to serve: damaged, unreadable, unknown format or feature set. Reasons: /readyz.',
      aggregator: 'max',
      registers,
      collect() {
        this.set(getRegistry()?.refused().length ?? 0);
      },
    });
    client.collectDefaultMetrics({ register: this.registry, prefix: 'forecast_' });
  }
}
