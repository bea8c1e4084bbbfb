/**
 * The HTTP app: where a request becomes a forecast. Used by `forecast serve` (via startServer), by
 * tests, and by serverless adapters through `app.inject()`; it never listens by itself.
 *
 * Everything the hot path touches is built here once: the frozen configuration, compiled JSON
 * schemas, loaded bundles, the in-memory history mirrors and feature engines, the store's prepared
 * statements. Access is decided by where a route is registered (./auth.ts): public, client and admin
 * routes each live in one encapsulated context.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import Fastify, { type FastifyHttpOptions, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { LoadedBundle } from '../bundle/types.js';
import { packageVersion } from '../version.js';
import { ConfigError, serviceConfig, type ConfigInput, type ServiceConfig } from '../config.js';
import { openHistoryStore } from '../store/index.js';
import type { HistoryStore } from '../store/types.js';
import { accessContext, ApiKeyAuth, RouteAccessLog } from './auth.js';
import type { ProtocolRoutes, ServiceContext } from './context.js';
import { answerExpectation, clientErrorHandler, errorBody, frameworkErrors, installErrorHandling, REQUEST_ID_RE } from './errors.js';
import { JSON_CONTENT_TYPE, parseJsonBody } from './json-body.js';
import { ServiceMetrics } from './metrics.js';
import { Mutex } from './mutex.js';
import { mlflowProtocol } from './protocols/mlflow.js';
import { oipProtocol } from './protocols/oip.js';
import { splitProtocol } from './protocols/split.js';
import { ReadinessProbe } from './readiness.js';
import { ModelRegistry, type ModelSource, type ReloadReport } from './registry.js';
import { SHARED_SCHEMAS } from './schemas.js';
import { LiveMonitor } from './monitoring.js';
import { applyConfiguredShadows } from './routing-routes.js';
import { adminRoutes, clientRoutes, publicRoutes } from './routes.js';

/** Cross-process hooks installed by a node:cluster worker (see server.ts). */
export interface ClusterHooks {
  /** Reload bundles in every worker; resolves with this worker's report. */
  reloadAll(): Promise<ReloadReport>;
  /** Metrics aggregated over every worker. */
  metricsText(): Promise<{ contentType: string; body: string }>;
}

/** What an app is built from besides its configuration. */
export interface AppDeps {
  /** Bundles already loaded (tests, embedding), served beside bundleDir / modelsDir. */
  bundles?: LoadedBundle[];
  /** A history store to use instead of opening one from the config; the app closes it on close. */
  store?: HistoryStore;
  /** fastify logger: false for none, or pino options; default JSON logs at `logLevel`. */
  logger?: boolean | Record<string, unknown>;
  cluster?: ClusterHooks;
}

/** A configuration (finished by `serviceConfig`, or any part of one) and the app's dependencies. */
export type AppOptions = ConfigInput & AppDeps;

declare module 'fastify' {
  interface FastifyInstance {
    /** The app's services; `reloadLocal` reloads bundles in this process only. */
    forecastService: ServiceContext & { reloadLocal(): Promise<ReloadReport> };
  }
}

/** The protocols served, each meeting the others at the one forecast path (./forecast.ts). */
const PROTOCOLS: readonly ProtocolRoutes[] = [splitProtocol, mlflowProtocol, oipProtocol];


/** pino options: JSON lines, request ids, no secrets. */
export function loggerOptions(level: string): Record<string, unknown> {
  return {
    level,
    redact: {
      paths: [
        'req.headers["x-api-key"]',
        'req.headers.authorization',
        'headers["x-api-key"]',
        'headers.authorization',
        'apiKeys',
        'adminApiKeys',
        '*.apiKeys',
        '*.adminApiKeys',
      ],
      censor: '[redacted]',
    },
  };
}

/** Splits app options into the configuration and the dependencies. */
function splitOptions(options: AppOptions): { config: Readonly<ServiceConfig>; deps: AppDeps } {
  const { bundles, store, logger, cluster, ...config } = options;
  return { config: serviceConfig(config), deps: { bundles, store, logger, cluster } };
}

export async function buildApp(options: AppOptions = {}): Promise<FastifyInstance> {
  const { config, deps } = splitOptions(options);
  if (config.apiKeys.length === 0 && !config.insecureDev)
    throw new ConfigError('no API key configured: set API_KEYS or API_KEYS_FILE (or use --insecure-dev for local development only)');
  const source: ModelSource = { bundleDir: config.bundleDir, modelsDir: config.modelsDir, bundles: deps.bundles };

  const store = deps.store ?? (await openHistoryStore(config));
  const app = Fastify({
    logger: deps.logger === false ? false : { ...loggerOptions(config.logLevel), ...(typeof deps.logger === 'object' ? deps.logger : {}) },
    bodyLimit: config.maxBodyBytes,
    // Slow or stalled clients cannot hold a connection open forever (slowloris).
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    http: {
      // Node requires headersTimeout <= requestTimeout.
      headersTimeout: Math.min(config.headersTimeoutMs, config.requestTimeoutMs),
      // Node checks both timeouts on this period (default 30 s, which would stretch a 1 s limit to 31 s).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(Math.min(config.headersTimeoutMs, config.requestTimeoutMs) / 4))),
      // A request without Host is answered in the error shape below, not by Node's bare 400.
      requireHostHeader: false,
    },
    clientErrorHandler,
    frameworkErrors,
    // Above the 128 characters of a model name or version, so an overlong one is a 400 naming the field.
    routerOptions: { maxParamLength: 512 },
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    // verbose: a schema error carries the schema it failed (what an object accepts, for the message: ./errors.ts).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, allowUnionTypes: true, verbose: true } },
  } satisfies FastifyHttpOptions<Server>);

  let registry: ModelRegistry;
  try {
    registry = new ModelRegistry(store, config.defaultModel, (msg, extra) => app.log.warn(extra ?? {}, msg));
    const started = performance.now();
    const report = await registry.load(source);
    app.log.info({ models: report.models, refused: report.refused, store: store.location, ms: Math.round(performance.now() - started) }, 'models loaded');
  } catch (err) {
    await store.close().catch(() => undefined);
    await app.close().catch(() => undefined);
    throw err;
  }
  const reg = registry;
  const metrics = new ServiceMetrics(() => reg);
  const reloadLock = new Mutex();
  // The registry logs each refused bundle itself.
  const reloadLocal = () => reloadLock.run(() => reg.load(source));
  const state = { shuttingDown: false, startedAt: Date.now() };
  const ctx: ServiceContext = {
    config,
    store,
    registry: reg,
    metrics,
    auth: new ApiKeyAuth(config.apiKeys, config.adminApiKeys, config.insecureDev),
    access: new RouteAccessLog(),
    readiness: new ReadinessProbe(store, reg, state, config.readyTimeoutMs),
    monitor: new LiveMonitor(store, reg, metrics, app.log, config.monitorRetention),
    serverVersion: packageVersion(),
    reload: deps.cluster ? () => deps.cluster!.reloadAll() : reloadLocal,
    metricsText: deps.cluster
      ? () => deps.cluster!.metricsText()
      : async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
    state,
  };
  await applyConfiguredShadows(ctx, (msg, extra) => app.log.warn(extra, msg));
  if (!ctx.auth.enabled) app.log.warn('serving WITHOUT API keys (--insecure-dev): never expose this service');
  app.decorate('forecastService', { ...ctx, reloadLocal });
  app.decorateRequest('modelLabel', '');

  app.removeContentTypeParser(['text/plain', JSON_CONTENT_TYPE]);
  app.addContentTypeParser(JSON_CONTENT_TYPE, { parseAs: 'string' }, parseJsonBody);
  app.addHook('onRoute', (route) => ctx.access.observe(route));
  // Callback-style hooks on the hot path: an async hook costs a promise per request.
  // Node answers an Expect other than 100-continue with a bare 417 unless someone listens.
  app.server.on('checkExpectation', answerExpectation);
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    if (request.headers.host === undefined && request.raw.httpVersion === '1.1') {
      void reply.status(400).send(errorBody(request, 'missing_host', 'the Host header is required (HTTP/1.1)'));
      return;
    }
    // A body sent without a content type is read as JSON (curl -d without -H, simple clients).
    if (request.headers['content-type'] === undefined && (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined))
      request.headers['content-type'] = JSON_CONTENT_TYPE;
    // While shutting down, let clients drop kept-alive connections after this answer, so close() need not wait for them.
    if (state.shuttingDown) reply.header('connection', 'close');
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    metrics.observeRequest(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, request.modelLabel, reply.elapsedTime / 1000);
    done();
  });
  app.addHook('onClose', async () => {
    // The monitoring's last writes go before the store closes.
    await ctx.monitor.close();
    await store.close();
  });
  installErrorHandling(app);

  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  await app.register(swagger, {
    // Shared schemas are components named by their $id (ErrorResponse, SplitFrame...), not def-0, def-1...
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'forecast-service',
        version: ctx.serverVersion,
        description:
          "Next-bar return forecasts from daily OHLCV bars. Submitted bars are merged into the model's stored history; " +
          'one forecast per submitted bar. See docs/serving.md.',
      },
      components: {
        securitySchemes: {
          apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'A client key (API_KEYS).' },
          adminKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'An admin key (ADMIN_API_KEYS).' },
        },
      },
    },
  });
  await accessContext(app, 'public', ctx.auth, ctx.access, async (scope) => {
    await scope.register(swaggerUi, { routePrefix: '/docs' });
    await publicRoutes(scope, ctx);
    for (const p of PROTOCOLS) if (p.public) await p.public(scope, ctx);
  });
  await accessContext(app, 'client', ctx.auth, ctx.access, async (scope) => {
    await clientRoutes(scope, ctx);
    for (const p of PROTOCOLS) await p.client(scope, ctx);
  });
  await accessContext(app, 'admin', ctx.auth, ctx.access, (scope) => adminRoutes(scope, ctx));
  return app;
}

