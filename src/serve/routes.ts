/**
 * Service routes: status, health, metrics, model cards, admin reload, OpenAPI.
 *
 *   GET  /                           status for the seed's clients (key)
 *   GET  /healthz                    liveness (no key)
 *   GET  /readyz                     readiness: models loaded and store reachable (no key)
 *   GET  /metrics                    Prometheus exposition (no key)
 *   GET  /models                     served models and versions (key)
 *   GET  /models/{name}              model card of the newest version, ?version= for another (key)
 *   GET  /models/{name}/versions/{v} model card of a version (key)
 *   POST /admin/reload               load new bundles without restart (key)
 *   GET  /openapi.json               OpenAPI document (no key); interactive docs at /docs
 */
import type { FastifyInstance } from 'fastify';
import type { ServiceContext } from './context.js';
import { nameParams, nameVersionParams } from './protocols/split.js';
import type { ServedModel } from './registry.js';

function historyInfo(m: ServedModel) {
  const h = m.history;
  return { version: h.version, bars: h.length, first_date: h.length ? h.date[0] : null, last_date: h.length ? h.date[h.length - 1] : null };
}

function modelSummary(m: ServedModel) {
  const s = m.bundle.manifest.model;
  if (s.kind === 'decision_tree_regressor')
    return { kind: s.kind, n_features: s.nFeatures, node_count: s.nodeCount, leaves: s.feature.filter((f) => f === -2).length, max_depth: s.maxDepth };
  return { kind: s.kind, n_features: s.nFeatures };
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
    metrics: man.metrics,
    training: { learn_rows: man.training.learnRows, fit_rows: man.training.fitRows, folds: man.training.folds },
    data: {
      source: { file: man.source.file, sha256: man.source.sha256, first_date: man.source.firstDate, last_date: man.source.lastDate, bars: man.source.bars },
      evaluation: { rows: ev.dates.length, first_date: ev.dates[0] ?? null, last_date: ev.dates[ev.dates.length - 1] ?? null },
    },
    history: historyInfo(m),
  };
}

export async function serviceRoutes(app: FastifyInstance, opts: { ctx: ServiceContext; serverVersion: string }): Promise<void> {
  const { ctx } = opts;
  const secured = { onRequest: ctx.auth.hook };
  const sec = [{ apiKey: [] }];

  app.get('/', { ...secured, schema: { tags: ['service'], summary: 'Service status', security: sec } }, async () => ({
    status: ctx.state.shuttingDown ? 'shutting_down' : 'ok',
    service: 'forecast-service',
    version: opts.serverVersion,
    default_model: ctx.registry.defaultName ? ctx.registry.resolve().id : null,
    models: ctx.registry.all().map((m) => m.id),
    store: ctx.store.kind,
    uptime_s: Math.round((Date.now() - ctx.state.startedAt) / 1000),
    docs: '/docs',
  }));

  app.get('/healthz', { schema: { tags: ['health'], summary: 'Liveness (no key)' } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { tags: ['health'], summary: 'Readiness: models loaded, store reachable (no key)' } }, async (_req, reply) => {
    if (!ctx.state.ready || ctx.state.shuttingDown) return reply.status(503).send({ status: ctx.state.shuttingDown ? 'shutting_down' : 'starting' });
    try {
      await ctx.store.ping();
    } catch {
      return reply.status(503).send({ status: 'store_unreachable' });
    }
    return { status: 'ready', models: ctx.registry.all().length };
  });

  app.get('/metrics', { schema: { tags: ['service'], summary: 'Prometheus metrics (no key)' } }, async (_req, reply) => {
    const { contentType, body } = await ctx.metricsText();
    return reply.type(contentType).send(body);
  });

  app.get('/models', { ...secured, schema: { tags: ['models'], summary: 'Served models', security: sec } }, async () => ({
    default_model: ctx.registry.defaultName,
    models: ctx.registry.names().map((name) => {
      const versions = ctx.registry.versions(name);
      return {
        name,
        latest: versions[0].version,
        versions: versions.map((v) => ({ version: v.version, id: v.id, created_at: v.bundle.manifest.createdAt, feature_set: v.bundle.manifest.featureSet.name })),
        history: historyInfo(versions[0]),
      };
    }),
  }));

  app.get<{ Params: { name: string }; Querystring: { version?: string } }>(
    '/models/:name',
    {
      ...secured,
      schema: {
        tags: ['models'],
        summary: 'Model card (newest version; ?version= for another)',
        security: sec,
        params: nameParams,
        querystring: { type: 'object', properties: { version: { type: 'string', minLength: 1, maxLength: 128 } }, additionalProperties: false },
      },
    },
    async (req) => modelCard(ctx, ctx.registry.resolve(req.params.name, req.query.version ?? null)),
  );

  app.get<{ Params: { name: string; version: string } }>(
    '/models/:name/versions/:version',
    { ...secured, schema: { tags: ['models'], summary: 'Model card of a version', security: sec, params: nameVersionParams } },
    async (req) => modelCard(ctx, ctx.registry.resolve(req.params.name, req.params.version)),
  );

  app.post('/admin/reload', { ...secured, schema: { tags: ['admin'], summary: 'Load new bundles without restart', security: sec } }, async (req) => {
    const report = await ctx.reload();
    req.log.info({ report }, 'models reloaded');
    return report;
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
