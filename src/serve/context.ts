import type { FastifyRequest } from 'fastify';
import type { Bar } from '../data/bars.js';
import type { HistoryStore } from '../store/types.js';
import type { ApiKeyAuth } from './auth.js';
import { forecastBars, type ForecastOutcome } from './forecast.js';
import type { ServiceMetrics } from './metrics.js';
import type { ModelRegistry, ReloadReport, ServedModel } from './registry.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** `name@version` of the model a request used, for metrics and logs. */
    modelLabel: string;
  }
}

/** Shared services of one app, built once at start and handed to every route plugin. */
export interface ServiceContext {
  store: HistoryStore;
  registry: ModelRegistry;
  metrics: ServiceMetrics;
  auth: ApiKeyAuth;
  /** Reloads bundles in this process (and, under node:cluster, in every worker). */
  reload(): Promise<ReloadReport>;
  /** Prometheus exposition (aggregated over cluster workers when running under node:cluster). */
  metricsText(): Promise<{ contentType: string; body: string }>;
  state: { ready: boolean; shuttingDown: boolean; startedAt: number };
}

/** The query every forecast endpoint accepts. */
export const forecastQuerySchema = {
  type: 'object',
  properties: {
    version: { type: 'string', minLength: 1, maxLength: 128, description: 'Model version (default: the newest).' },
    replace: {
      type: 'string',
      enum: ['true', 'false', '1', '0'],
      description: 'Replace stored bars whose values differ (default false: such a bar is a 409 conflict).',
    },
  },
  additionalProperties: false,
} as const;

export interface ForecastQuery {
  version?: string;
  replace?: 'true' | 'false' | '1' | '0';
  model?: string;
}

export function wantsReplace(q: ForecastQuery | undefined): boolean {
  return q?.replace === 'true' || q?.replace === '1';
}

/** Runs the forecast path for any protocol and records metrics. */
export async function runForecast(ctx: ServiceContext, request: FastifyRequest, model: ServedModel, bars: readonly Bar[], replace: boolean): Promise<ForecastOutcome> {
  request.modelLabel = model.id;
  const out = await forecastBars(model, ctx.store, bars, replace);
  let nulls = 0;
  for (const f of out.forecasts) if (f.y_pred === null) nulls++;
  const m = ctx.metrics;
  if (out.forecasts.length - nulls) m.forecasts.inc({ model: model.id, outcome: 'value' }, out.forecasts.length - nulls);
  if (nulls) m.forecasts.inc({ model: model.id, outcome: 'null' }, nulls);
  if (out.history.added) m.barsWritten.inc({ model: model.name, kind: 'added' }, out.history.added);
  if (out.history.replaced) m.barsWritten.inc({ model: model.name, kind: 'replaced' }, out.history.replaced);
  return out;
}
