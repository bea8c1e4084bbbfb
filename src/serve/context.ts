import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServiceConfig } from '../config.js';
import type { Bar } from '../data/bars.js';
import type { HistoryStore } from '../store/types.js';
import type { ApiKeyAuth, RouteAccessLog } from './auth.js';
import { forecastBars, forecastStored, type ForecastOutcome } from './forecast.js';
import type { ServiceMetrics } from './metrics.js';
import type { LiveMonitor } from './monitoring.js';
import type { ReadinessProbe } from './readiness.js';
import type { ModelRegistry, ReloadReport } from './registry.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** `name@version` of the model a request used, for metrics and logs. */
    modelLabel: string;
  }
}

/** Shared services of one app, built once at start and handed to every route plugin. */
export interface ServiceContext {
  readonly config: Readonly<ServiceConfig>;
  readonly store: HistoryStore;
  readonly registry: ModelRegistry;
  readonly metrics: ServiceMetrics;
  readonly auth: ApiKeyAuth;
  /** Which context each route was registered in (public, client, admin). */
  readonly access: RouteAccessLog;
  readonly readiness: ReadinessProbe;
  /** Logs and scores served forecasts; answers the monitoring endpoint. */
  readonly monitor: LiveMonitor;
  readonly serverVersion: string;
  /** Reloads bundles in this process (and, under node:cluster, in every worker). */
  reload(): Promise<ReloadReport>;
  /** Prometheus exposition (aggregated over cluster workers when running under node:cluster). */
  metricsText(): Promise<{ contentType: string; body: string }>;
  /** `shuttingDown`: readiness answers 503 and answers carry `connection: close` (the drain signal). */
  readonly state: { shuttingDown: boolean; readonly startedAt: number };
}

/** The model a request names: a version, or none (the version the model's routing makes its default). */
export interface ModelTarget {
  name: string | null;
  version: string | null;
}

/** Runs the forecast path for any protocol and records metrics. */
export async function runForecast(ctx: ServiceContext, request: FastifyRequest, target: ModelTarget, bars: readonly Bar[], replace: boolean): Promise<ForecastOutcome> {
  const select = () => ctx.registry.resolve(target.name, target.version);
  request.modelLabel = select().id;
  const out = await forecastBars(select, ctx.store, bars, replace);
  const model = out.model;
  request.modelLabel = model.id;
  const requestId = String(request.id);
  ctx.monitor.observe(out, requestId);
  // The shadow version forecasts what the default answered, off the answer (never returned); the
  // monitoring logs and scores it like any other version.
  const shadow = target.version === null ? ctx.registry.shadow(model.name) : null;
  const shadowed =
    shadow && shadow !== model
      ? forecastStored(shadow, bars).then(
          (o) => ctx.monitor.observe(o, requestId),
          (err: unknown) => request.log.warn({ err, shadow: shadow.id }, 'the shadow version could not forecast this request'),
        )
      : null;
  // A request that stored bars is answered once the monitoring they cause is written (the new newest
  // bar's forecasts logged, the outcomes they realise scored), so a monitoring read after the answer
  // sees them on any process. Its failure is logged by the tracker, never this request's.
  if (out.history.added + out.history.replaced > 0) {
    await shadowed;
    // A bar replaced, or inserted before the newest, changes the features after it: their outcomes are scored again.
    if (out.corrected !== null) await ctx.monitor.historyCorrected(model.name, out.corrected, false);
    await ctx.monitor.tracker.idle(model.name);
  }
  let nulls = 0;
  for (const f of out.forecasts) if (f.y_pred === null) nulls++;
  const m = ctx.metrics;
  m.observeForecasts(model.id, out.forecasts.length - nulls, nulls);
  if (out.history.added) m.barsWritten.inc({ model: model.name, kind: 'added' }, out.history.added);
  if (out.history.replaced) m.barsWritten.inc({ model: model.name, kind: 'replaced' }, out.history.replaced);
  return out;
}

/** A protocol's routes by access: registered by the app inside the matching access context. */
export interface ProtocolRoutes {
  public?: (app: FastifyInstance, ctx: ServiceContext) => Promise<void>;
  client: (app: FastifyInstance, ctx: ServiceContext) => Promise<void>;
}
