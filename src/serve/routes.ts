/**
 * The service's own routes (the protocols have theirs in ./protocols), by access context:
 *
 *   public   GET  /healthz                    liveness
 *            GET  /readyz                     readiness (src/serve/readiness.ts)
 *            GET  /metrics                    Prometheus exposition
 *            GET  /openapi.json               OpenAPI document; interactive docs at /docs
 *   client   GET  /                           status for the seed's clients
 *            GET  /models                     served models and versions, with their current stored history
 *            GET  /models/{name}              model card of the newest version, ?version= for another
 *            GET  /models/{name}/versions/{v} model card of a version
 *            GET  /models/{name}/history      the stored bars (./history-routes.ts)
 *            GET  /models/{name}/monitoring   live accuracy against the offline evaluation (./monitoring-routes.ts)
 *   admin    POST /admin/reload               load new bundles without restart (ADMIN_API_KEYS)
 *            DELETE /admin/models/{name}/history/{date}  delete a bar sent by mistake (./history-routes.ts)
 *            POST /admin/models/{name}/promote, /shadow  which version answers, which runs in shadow (./routing-routes.ts)
 */
import type { FastifyInstance } from 'fastify';
import type { BaselineReport, Baselines } from '../bundle/types.js';
import type { ServiceContext } from './context.js';
import { historyAdminRoutes, historyClientRoutes } from './history-routes.js';
import { monitoringRoutes } from './monitoring-routes.js';
import { routingAdminRoutes } from './routing-routes.js';
import type { ServedModel } from './registry.js';
import { apiKeySecurity, errorResponses, forecastQuerySchema, nameParams, nameVersionParams } from './schemas.js';

function modelSummary(m: ServedModel) {
  const s = m.bundle.manifest.model;
  if (s.kind === 'decision_tree_regressor')
    return { kind: s.kind, n_features: s.nFeatures, node_count: s.nodeCount, leaves: s.feature.filter((f) => f === -2).length, max_depth: s.maxDepth };
  return { kind: s.kind, n_features: s.nFeatures };
}

/** A baseline on the card, in the card's snake_case; null for a bundle made before baselines were recorded. */
function cardBaselines(b: Baselines | undefined) {
  if (!b) return null;
  const report = (r: BaselineReport) => ({ prediction: r.prediction, ...r.metrics, model_beats: r.modelBeats });
  return { persistence: report(b.persistence), training_mean: report(b.trainingMean) };
}

/** A model card from the manifest: what the model is, how it was made and how good it was. */
export function modelCard(ctx: ServiceContext, m: ServedModel) {
  const man = m.bundle.manifest;
  const fs = man.featureSet;
  const ev = man.evaluation;
  return {
    name: m.name,
    version: m.version,
    id: m.id,
    versions: ctx.registry.versions(m.name).map((v) => v.version),
    default: ctx.registry.defaultName === m.name,
    // Which version answers requests that name none, and which runs in shadow (POST /admin/models/{name}/promote, /shadow).
    routing: { default_version: m.history.routing.defaultVersion ?? ctx.registry.versions(m.name)[0].version, shadow_version: m.history.routing.shadowVersion },
    created_at: man.createdAt,
    origin: man.origin,
    target: "next bar's return close[t+1] / close[t]",
    feature_set: {
      name: fs.name,
      feature_names: fs.featureNames,
      lookahead: fs.lookahead,
      number_parsing: fs.numberParsing,
      csv_round_trip: fs.csvRoundTrip,
      caveats: fs.caveats,
    },
    model: modelSummary(m),
    preprocessing: { scaler: 'standard', expansion: man.expansion ? `polynomial degree ${man.expansion.degree} (${man.expansion.nOutputFeatures} columns)` : null },
    hyperparameters: man.hyperparameters,
    // Beside the model's metrics, those of doing nothing on the same rows: a negative R² alone cannot say whether the model helps.
    metrics: { test: man.metrics.test, cv: man.metrics.cv, baselines: cardBaselines(man.metrics.baselines) },
    training: {
      learn_rows: man.training.learnRows,
      fit_rows: man.training.fitRows,
      folds: man.training.folds.map((f) => ({ fold: f.fold, train: f.train, validation: f.validation, metrics: f.metrics, baselines: cardBaselines(f.baselines) })),
    },
    data: {
      source: { file: man.source.file, sha256: man.source.sha256, first_date: man.source.firstDate, last_date: man.source.lastDate, bars: man.source.bars },
      evaluation: { rows: ev.dates.length, first_date: ev.dates[0] ?? null, last_date: ev.dates[ev.dates.length - 1] ?? null },
    },
    history: m.history.summary(),
  };
}

export async function publicRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.get('/healthz', { schema: { tags: ['health'], summary: 'Liveness (no key)' } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { tags: ['health'], summary: 'Readiness: models loaded, store reachable (no key)' } }, async (_req, reply) => {
    const r = await ctx.readiness.check();
    const body = {
      status: r.status,
      models: r.models,
      ...(r.message ? { message: r.message } : {}),
      ...(r.refused.length ? { refused: r.refused } : {}),
    };
    return reply.status(r.ready ? 200 : 503).send(body);
  });

  app.get('/metrics', { schema: { tags: ['service'], summary: 'Prometheus metrics (no key)' } }, async (_req, reply) => {
    const { contentType, body } = await ctx.metricsText();
    return reply.type(contentType).send(body);
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

export async function clientRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  const sec = apiKeySecurity;
  app.get('/', { schema: { tags: ['service'], summary: 'Service status', security: sec, response: errorResponses } }, async () => ({
    status: ctx.state.shuttingDown ? 'shutting_down' : 'ok',
    service: 'forecast-service',
    version: ctx.serverVersion,
    default_model: ctx.registry.defaultName ? ctx.registry.resolve().id : null,
    models: ctx.registry.all().map((m) => m.id),
    store: ctx.store.kind,
    uptime_s: Math.round((Date.now() - ctx.state.startedAt) / 1000),
    docs: '/docs',
  }));

  app.get('/models', { schema: { tags: ['models'], summary: 'Served models, with their current stored history', security: sec, response: errorResponses } }, async () => {
    const names = ctx.registry.names();
    // The stored history, not this process's last view of it: another worker or replica may have written since.
    await Promise.all(names.map((name) => ctx.registry.versions(name)[0].history.sync()));
    return {
      default_model: ctx.registry.defaultName,
      models: names.map((name) => {
        const versions = ctx.registry.versions(name);
        return {
          name,
          latest: versions[0].version,
          versions: versions.map((v) => ({ version: v.version, id: v.id, created_at: v.bundle.manifest.createdAt, feature_set: v.bundle.manifest.featureSet.name })),
          history: versions[0].history.summary(),
        };
      }),
    };
  });

  const card = async (name: string, version: string | null) => {
    await ctx.registry.resolve(name, version).history.sync();
    // Resolved again after the catch-up: the default version is the one the stored routing names now.
    const m = ctx.registry.resolve(name, version);
    const live = await ctx.monitor.report(m);
    return { ...modelCard(ctx, m), monitoring: { state: live.state, reason: live.reason, drift: live.drift.level, details: `/models/${m.name}/monitoring?version=${m.version}` } };
  };
  app.get<{ Params: { name: string }; Querystring: { version?: string } }>(
    '/models/:name',
    {
      schema: {
        tags: ['models'],
        summary: 'Model card (newest version; ?version= for another)',
        security: sec,
        params: nameParams,
        querystring: { type: 'object', properties: { version: forecastQuerySchema.properties.version }, additionalProperties: false },
        response: errorResponses,
      },
    },
    async (req) => card(req.params.name, req.query.version ?? null),
  );

  app.get<{ Params: { name: string; version: string } }>(
    '/models/:name/versions/:version',
    { schema: { tags: ['models'], summary: 'Model card of a version', security: sec, params: nameVersionParams, response: errorResponses } },
    async (req) => card(req.params.name, req.params.version),
  );

  await historyClientRoutes(app, ctx);
  await monitoringRoutes(app, ctx);
}

export async function adminRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  const sec = [{ adminKey: [] }];
  app.post('/admin/reload', { schema: { tags: ['admin'], summary: 'Load new bundles without restart (admin key)', security: sec, response: errorResponses } }, async (req) => {
    const report = await ctx.reload();
    req.log.info({ report }, 'models reloaded');
    return report;
  });

  await historyAdminRoutes(app, ctx);
  await routingAdminRoutes(app, ctx);
}
