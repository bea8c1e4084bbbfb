/**
 * The HTTP app: where a request becomes a forecast. Used by `forecast serve` (via startServer), by
 * tests, and by serverless adapters through `app.inject()`; it never listens by itself.
 *
 * Everything the hot path touches is built here once: compiled JSON schemas, loaded bundles, the
 * in-memory history mirrors and feature engines, the store's prepared statements.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { LoadedBundle } from '../bundle/types.js';
import { ConfigError, DEFAULT_CONFIG, type ServiceConfig } from '../config.js';
import { openHistoryStore } from '../store/index.js';
import type { HistoryStore } from '../store/types.js';
import { ApiKeyAuth } from './auth.js';
import type { ServiceContext } from './context.js';
import { errorSchema, installErrorHandling } from './errors.js';
import { ServiceMetrics } from './metrics.js';
import { Mutex } from './mutex.js';
import { mlflowProtocol } from './protocols/mlflow.js';
import { oipProtocol } from './protocols/oip.js';
import { barForecastSchema, historyInfoSchema, splitFrameSchema, splitProtocol } from './protocols/split.js';
import { ModelRegistry, type ModelSource, type ReloadReport } from './registry.js';
import { serviceRoutes } from './routes.js';

export type AppConfig = Pick<
  ServiceConfig,
  'apiKeys' | 'insecureDev' | 'databaseUrl' | 'databaseSchema' | 'sqlitePath' | 'maxBodyBytes' | 'logLevel' | 'bundleDir' | 'modelsDir' | 'defaultModel'
>;

/** Cross-process hooks installed by a node:cluster worker (see server.ts). */
export interface ClusterHooks {
  /** Reload bundles in every worker; resolves with this worker's report. */
  reloadAll(): Promise<ReloadReport>;
  /** Metrics aggregated over every worker. */
  metricsText(): Promise<{ contentType: string; body: string }>;
}

export interface AppOptions extends Partial<AppConfig> {
  /** Bundles already loaded (tests, embedding), served beside bundleDir / modelsDir. */
  bundles?: LoadedBundle[];
  /** A history store to use instead of opening one from the config; the app closes it on close. */
  store?: HistoryStore;
  /** fastify logger: false for none, or pino options; default JSON logs at `logLevel`. */
  logger?: boolean | Record<string, unknown>;
  cluster?: ClusterHooks;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The app's services; `reloadLocal` reloads bundles in this process only. */
    forecastService: ServiceContext & { reloadLocal(): Promise<ReloadReport> };
  }
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/** pino options: JSON lines, request ids, no secrets. */
export function loggerOptions(level: string): Record<string, unknown> {
  return {
    level,
    redact: {
      paths: ['req.headers["x-api-key"]', 'req.headers.authorization', 'headers["x-api-key"]', 'headers.authorization', 'apiKeys', '*.apiKeys'],
      censor: '[redacted]',
    },
  };
}

export async function buildApp(options: AppOptions = {}): Promise<FastifyInstance> {
  const cfg: AppConfig = {
    apiKeys: options.apiKeys ?? [],
    insecureDev: options.insecureDev ?? false,
    databaseUrl: options.databaseUrl ?? null,
    databaseSchema: options.databaseSchema ?? DEFAULT_CONFIG.databaseSchema,
    sqlitePath: options.sqlitePath ?? DEFAULT_CONFIG.sqlitePath,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_CONFIG.maxBodyBytes,
    logLevel: options.logLevel ?? DEFAULT_CONFIG.logLevel,
    bundleDir: options.bundleDir ?? null,
    modelsDir: options.modelsDir ?? null,
    defaultModel: options.defaultModel ?? null,
  };
  if (cfg.apiKeys.length === 0 && !cfg.insecureDev)
    throw new ConfigError('no API key configured: set API_KEYS or API_KEYS_FILE (or use --insecure-dev for local development only)');
  const source: ModelSource = { bundleDir: cfg.bundleDir, modelsDir: cfg.modelsDir, bundles: options.bundles };
  if (!source.bundleDir && !source.modelsDir && !source.bundles?.length) throw new ConfigError('no model to serve: name a bundle folder or a models folder');

  const store = options.store ?? (await openHistoryStore(cfg));
  const app = Fastify({
    logger: options.logger === false ? false : { ...loggerOptions(cfg.logLevel), ...(typeof options.logger === 'object' ? options.logger : {}) },
    bodyLimit: cfg.maxBodyBytes,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, allowUnionTypes: true } },
  } satisfies FastifyServerOptions);

  let registry: ModelRegistry | null = null;
  try {
    registry = new ModelRegistry(store, cfg.defaultModel, (msg, extra) => app.log.warn(extra ?? {}, msg));
    const started = performance.now();
    const report = await registry.load(source);
    app.log.info({ models: report.models, store: store.location, ms: Math.round(performance.now() - started) }, 'models loaded');
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  const reg = registry;
  const metrics = new ServiceMetrics(() => reg);
  const reloadLock = new Mutex();
  const reloadLocal = () => reloadLock.run(() => reg.load(source));
  const ctx: ServiceContext = {
    store,
    registry: reg,
    metrics,
    auth: new ApiKeyAuth(cfg.apiKeys, cfg.insecureDev),
    reload: options.cluster ? () => options.cluster!.reloadAll() : reloadLocal,
    metricsText: options.cluster
      ? () => options.cluster!.metricsText()
      : async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
    state: { ready: true, shuttingDown: false, startedAt: Date.now() },
  };
  if (!ctx.auth.enabled) app.log.warn('serving WITHOUT API keys (--insecure-dev): never expose this service');
  app.decorate('forecastService', { ...ctx, reloadLocal });
  app.decorateRequest('modelLabel', '');

  app.removeContentTypeParser(['text/plain']);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // A body sent without a content type is read as JSON (curl -d without -H, simple clients).
    if (request.headers['content-type'] === undefined && (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined))
      request.headers['content-type'] = 'application/json';
  });
  app.addHook('onSend', async (_request, reply) => {
    // While shutting down, let clients drop kept-alive connections after this answer, so close() need not wait for them.
    if (ctx.state.shuttingDown) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const model = request.modelLabel;
    metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode), model });
    metrics.latency.observe({ method: request.method, route, model }, reply.elapsedTime / 1000);
  });
  app.addHook('onClose', async () => {
    await store.close();
  });
  installErrorHandling(app);

  app.addSchema(errorSchema);
  app.addSchema(splitFrameSchema);
  app.addSchema(barForecastSchema);
  app.addSchema(historyInfoSchema);
  const serverVersion = packageVersion();
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'forecast-service',
        version: serverVersion,
        description:
          "Next-bar return forecasts from daily OHLCV bars. Submitted bars are merged into the model's stored history; " +
          'one forecast per submitted bar. See docs/serving.md.',
      },
      components: { securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(serviceRoutes, { ctx, serverVersion });
  await app.register(splitProtocol, { ctx });
  await app.register(mlflowProtocol, { ctx });
  await app.register(oipProtocol, { ctx, serverVersion });
  return app;
}
