/**
 * AWS Lambda entry point: the same fastify app as `forecast serve` (src/serve/app.ts), answering
 * API Gateway HTTP API events (payload format 2.0) and Lambda Function URL events (the same shape)
 * through `app.inject()`. Same routes, same auth, same forecasts; no socket is opened.
 *
 * The app is built once per container and reused by every later event of that container (a
 * container handles one event at a time). The packaged entry (./entry.ts) builds it during Lambda's
 * init phase; `npm run package:lambda` bundles that entry into `dist/lambda/handler.mjs` of a zip,
 * with the bundles under `models/` (name/version/).
 *
 * Configuration is the service's own (src/config.ts: API_KEYS, DATABASE_URL, BUNDLE_DIR, ...), with
 * two Lambda defaults: the packaged `models/` folder when neither BUNDLE_DIR nor MODELS_DIR is set,
 * and the SQLite history in /tmp (the only writable path) when HISTORY_DB is not set. /tmp lives as
 * long as the container: set DATABASE_URL for a history that survives containers and is shared by
 * concurrent ones.
 */
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { DEFAULT_CONFIG, loadConfig, serviceConfig, type ServiceConfig } from '../config.js';
import { buildApp } from '../serve/app.js';
import { REQUEST_ID_RE } from '../serve/errors.js';

/** API Gateway HTTP API (payload 2.0) and Function URL request event: the fields read here. */
export interface HttpApiEvent {
  version: string;
  routeKey?: string;
  rawPath: string;
  rawQueryString?: string;
  cookies?: string[];
  /** Lower-case names; repeated headers joined with commas. */
  headers?: Record<string, string | undefined>;
  requestContext: {
    requestId?: string;
    stage?: string;
    domainName?: string;
    http: { method: string; path?: string; protocol?: string; sourceIp?: string; userAgent?: string };
  };
  body?: string;
  isBase64Encoded?: boolean;
}

/** The structured response both event sources accept. */
export interface HttpApiResult {
  statusCode: number;
  headers: Record<string, string>;
  /** Set-Cookie values: payload 2.0 carries them here, not in `headers`. */
  cookies?: string[];
  body: string;
  isBase64Encoded: boolean;
}

/** The part of the Lambda context object used here. */
export interface LambdaContext {
  awsRequestId?: string;
}

export interface LambdaHandler {
  (event: HttpApiEvent, context?: LambdaContext): Promise<HttpApiResult>;
  /** Builds the app now rather than at the first event; a failure is logged, never thrown. */
  prepare(): Promise<void>;
}

/** The packaged bundles: `models/` at the root of the zip, two folders above `dist/lambda/handler.mjs`. */
export const PACKAGED_MODELS_DIR = fileURLToPath(new URL('../../models/', import.meta.url));

/** The SQLite history when HISTORY_DB is not set: /tmp is a Lambda container's only writable place. */
export const LAMBDA_SQLITE_PATH = '/tmp/forecast/history.sqlite';

/** The configuration on Lambda: the service's own, with the Lambda defaults described above. */
export function lambdaAppOptions(config: Readonly<ServiceConfig>, packagedModelsDir: string = PACKAGED_MODELS_DIR): Readonly<ServiceConfig> {
  return serviceConfig({
    ...config,
    modelsDir: config.bundleDir ? null : (config.modelsDir ?? packagedModelsDir),
    // loadConfig fills in the default path when HISTORY_DB is unset; that default is relative to the
    // working directory, which on Lambda is the read-only code folder.
    sqlitePath: config.sqlitePath === DEFAULT_CONFIG.sqlitePath ? LAMBDA_SQLITE_PATH : config.sqlitePath,
  });
}

const TEXT_TYPES = /^(text\/|application\/(json|javascript|xml|yaml|x-yaml|x-www-form-urlencoded)\b|[^;]*\+(json|xml)\b)/i;
/** Hop-by-hop headers mean nothing once API Gateway or the Function URL answers the client. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade']);

/** The request an event describes, for `app.inject()`. */
export function toInjectOptions(event: HttpApiEvent, context?: LambdaContext): InjectOptions {
  const http = event?.requestContext?.http;
  if (event?.version !== '2.0' || !http || typeof event.rawPath !== 'string')
    throw new UnsupportedEventError(
      'not an API Gateway HTTP API (payload format 2.0) or Function URL event: set the integration\'s payload format version to 2.0',
    );
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) if (value !== undefined) headers[name.toLowerCase()] = value;
  if (event.cookies?.length) headers.cookie = event.cookies.join('; ');
  // inject() measures the (decoded) body itself.
  delete headers['content-length'];
  // Reuse Lambda's request id, so the service's log lines and Lambda's own carry the same id.
  if (headers['x-request-id'] === undefined && context?.awsRequestId && REQUEST_ID_RE.test(context.awsRequestId)) headers['x-request-id'] = context.awsRequestId;
  let path = event.rawPath || '/';
  // A named stage is part of rawPath (`/prod/forecast`); the app's routes start after it.
  const stage = event.requestContext.stage;
  if (stage && stage !== '$default' && (path === `/${stage}` || path.startsWith(`/${stage}/`))) path = path.slice(stage.length + 1) || '/';
  const options: InjectOptions = {
    method: http.method.toUpperCase() as InjectOptions['method'],
    url: event.rawQueryString ? `${path}?${event.rawQueryString}` : path,
    headers,
    remoteAddress: http.sourceIp,
  };
  if (event.body !== undefined && event.body !== null) options.payload = event.isBase64Encoded ? Buffer.from(event.body, 'base64') : event.body;
  return options;
}

/** The response for API Gateway / the Function URL: text as is, anything else base64. */
export function toLambdaResult(response: LightMyRequestResponse): HttpApiResult {
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  for (const [name, value] of Object.entries(response.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    if (name === 'set-cookie') cookies = Array.isArray(value) ? value.map(String) : [String(value)];
    else headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  const type = headers['content-type'] ?? '';
  const text = !headers['content-encoding'] && (response.rawPayload.length === 0 || TEXT_TYPES.test(type));
  const result: HttpApiResult = {
    statusCode: response.statusCode,
    headers,
    body: text ? response.rawPayload.toString('utf8') : response.rawPayload.toString('base64'),
    isBase64Encoded: !text,
  };
  if (cookies) result.cookies = cookies;
  return result;
}

class UnsupportedEventError extends Error {}

function errorResult(status: number, code: string, message: string, requestId: string): HttpApiResult {
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'x-request-id': requestId },
    body: JSON.stringify({ error: { code, message, request_id: requestId } }),
    isBase64Encoded: false,
  };
}

/**
 * A Lambda handler over an app built by `makeApp` once and kept for the container's life: by
 * `prepare()` during the init phase (src/lambda/entry.ts), else on the first event. A failed start is
 * logged and answered with a 503; the next event tries again (a database may be back).
 */
export function createHandler(makeApp: () => Promise<FastifyInstance>): LambdaHandler {
  let app: Promise<FastifyInstance> | null = null;
  const start = (): Promise<FastifyInstance> => {
    if (!app) {
      // ready() loads the plugins (otherwise the first inject() would), so prepare() leaves none of it to the first event.
      const building = makeApp().then(async (instance) => {
        await instance.ready();
        return instance;
      });
      app = building;
      building.catch(() => {
        if (app === building) app = null;
      });
    }
    return app;
  };
  const handle = async (event: HttpApiEvent, context?: LambdaContext): Promise<HttpApiResult> => {
    const requestId = context?.awsRequestId ?? event?.requestContext?.requestId ?? 'unknown';
    let request: InjectOptions;
    try {
      request = toInjectOptions(event, context);
    } catch (err) {
      if (!(err instanceof UnsupportedEventError)) throw err;
      console.error(JSON.stringify({ level: 'error', msg: err.message, requestId }));
      return errorResult(400, 'unsupported_event', err.message, requestId);
    }
    let instance: FastifyInstance;
    try {
      instance = await start();
    } catch (err) {
      logStartFailure(err, requestId);
      return errorResult(503, 'unavailable', 'the service could not start; its log says why', requestId);
    }
    return toLambdaResult(await instance.inject(request));
  };
  return Object.assign(handle, {
    prepare: async () => {
      try {
        await start();
      } catch (err) {
        logStartFailure(err, null);
      }
    },
  });
}

function logStartFailure(err: unknown, requestId: string | null): void {
  // Configuration and bundle errors name variables and paths: logged for the operator, not sent to clients.
  console.error(JSON.stringify({ level: 'fatal', msg: 'the forecast service could not start', error: (err as Error).message, requestId }));
}

/** The handler Lambda calls (`dist/lambda/handler.handler`): configuration from the environment. */
export const handler: LambdaHandler = createHandler(() => buildApp(lambdaAppOptions(loadConfig())));
