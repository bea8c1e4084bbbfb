import { randomUUID } from 'node:crypto';
import { STATUS_CODES as HTTP_STATUS_TEXT, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import FindMyWay from 'find-my-way';
import { ForecastError } from '../errors.js';
import { echoName, noRows } from './bar-table.js';
import { JSON_CONTENT_TYPE } from './json-body.js';

/** The one error shape of every endpoint. */
export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown>; request_id: string };
}

/** What an error is answered with. */
interface Answer {
  status: number;
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/**
 * fastify's errors about a request's body, in the service's words. (Its JSON body errors are not
 * here: the app reads JSON with its own parser, ./json-body.ts, whose errors are ForecastErrors.)
 */
const FASTIFY_CODES: Record<string, (request: FastifyRequest) => Answer> = {
  FST_ERR_CTP_BODY_TOO_LARGE: (request) => {
    // The route's limit as fastify applied it: the app's maxBodyBytes unless a route sets its own.
    const limit = request.routeOptions.bodyLimit;
    return { status: 413, code: 'payload_too_large', message: `the body is larger than the limit of ${limit} bytes (MAX_BODY_BYTES)`, details: { limit_bytes: limit } };
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (request) => {
    const sent = echoName(String(request.headers['content-type'] ?? ''));
    return {
      status: 415,
      code: 'unsupported_media_type',
      message: `content type ${JSON.stringify(sent)} is not accepted: send ${JSON_CONTENT_TYPE} (or no Content-Type)`,
      details: { content_type: sent, accepted: [JSON_CONTENT_TYPE] },
    };
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => ({
    status: 400,
    code: 'invalid_content_length',
    message: 'the body received does not have the length its Content-Length header gives',
  }),
};

const STATUS_CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  408: 'request_timeout',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'invalid_data',
  429: 'too_many_requests',
  503: 'unavailable',
};

interface AjvError {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
  keyword?: string;
  /** The schema holding the failed keyword (ajv's `verbose`, set by ./app.ts): what an object accepts. */
  parentSchema?: { properties?: Record<string, unknown> };
}

/** Bar tables a schema refuses when empty (`minItems`), by where they are in a body: worded as the decoders word them. */
const BAR_TABLES: Record<string, 'data' | 'dataframe_records'> = {
  '/data': 'data',
  '/dataframe_split/data': 'data',
  '/dataframe_records': 'dataframe_records',
};

/** Names the row and field of a JSON-schema error on a split frame (`/data/3/1` → row 3, its column 1). */
function valueAt(body: unknown, path: string): unknown {
  let v: unknown = body;
  for (const part of path.split('/').slice(1)) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function describeValidation(err: FastifyError, body: unknown): Answer & { details: Record<string, unknown> } {
  const first = (err.validation?.[0] ?? {}) as AjvError;
  const context = err.validationContext ?? 'body';
  const path = first.instancePath ?? '';
  const table = context === 'body' && first.keyword === 'minItems' ? BAR_TABLES[path] : undefined;
  if (table) {
    const empty = noRows(table);
    return { status: empty.status, code: empty.code, message: empty.message, details: { location: context, path, ...empty.details } };
  }
  let text = first.message ?? 'is invalid';
  // JSON.parse reads 1e999 as Infinity, which JSON schema does not count as a number: name it.
  const value = context === 'body' ? valueAt(body, path) : undefined;
  const nonFinite = typeof value === 'number' && !Number.isFinite(value);
  if (nonFinite) text = `${value} is not finite`;
  if (first.keyword === 'additionalProperties' && first.params?.additionalProperty !== undefined) {
    // Named so the client sees what it sent, but a hostile 1 MiB name must not come back whole.
    const name = echoName(String(first.params.additionalProperty));
    const accepted = Object.keys(first.parentSchema?.properties ?? {}).sort();
    const list = `(accepted: ${accepted.length ? accepted.join(', ') : 'none'})`;
    // A query is flat: its unknown property is a parameter, named as clients write it.
    if (context === 'querystring')
      return { status: 400, code: 'invalid_request', message: `unknown query parameter '${name}' ${list}`, details: { location: context, parameter: name, accepted } };
    text = `has unknown property '${name}' ${list}`;
  }
  if (first.keyword === 'enum' && Array.isArray(first.params?.allowedValues)) text = `must be one of ${(first.params.allowedValues as unknown[]).join(', ')}`;
  const details: Record<string, unknown> = { location: context, path: path || '/' };
  const m = /\/data\/(\d+)(?:\/(\d+))?/.exec(path);
  let subject = `${context}${path}`;
  if (m) {
    details.row = Number(m[1]);
    subject = `row ${m[1]}`;
    if (m[2] !== undefined) {
      const frame = findFrame(body);
      const col = frame?.columns?.[Number(m[2])];
      details.field = typeof col === 'string' ? col : `column ${m[2]}`;
      subject += `, field '${String(details.field)}'`;
    }
  }
  if (nonFinite) return { status: 422, code: 'non_finite', message: `${subject}: ${text}`, details };
  return { status: 400, code: 'invalid_request', message: `${subject} ${text}`, details };
}

function findFrame(body: unknown): { columns?: unknown[] } | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const b = body as Record<string, unknown>;
  if (Array.isArray(b.columns)) return b as { columns: unknown[] };
  const inner = b.dataframe_split;
  if (inner && typeof inner === 'object' && Array.isArray((inner as Record<string, unknown>).columns)) return inner as { columns: unknown[] };
  return undefined;
}

export function errorBody(request: FastifyRequest, code: string, message: string, details?: Record<string, unknown>): ErrorBody {
  return { error: { code, message, ...(details && Object.keys(details).length ? { details } : {}), request_id: String(request.id) } };
}

/**
 * One handler for every error: typed ForecastErrors, schema errors, fastify's body errors, and the
 * unexpected (500, logged); and for requests no route takes: 405 when the path has routes for other
 * methods, else 404.
 */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | ForecastError | Error, request: FastifyRequest, reply: FastifyReply) => {
    let status = 500;
    let code = 'internal';
    let message = 'internal error';
    let details: Record<string, unknown> | undefined;
    if (err instanceof ForecastError) {
      status = err.status;
      code = err.code;
      message = err.message;
      details = err.details;
    } else if ((err as FastifyError).validation) {
      ({ status, code, message, details } = describeValidation(err as FastifyError, request.body));
    } else {
      const fe = err as FastifyError;
      const known = fe.code ? FASTIFY_CODES[fe.code] : undefined;
      if (known) {
        ({ status, code, message, details } = known(request));
      } else if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
        status = fe.statusCode;
        code = err instanceof SyntaxError || /JSON/.test(fe.message) ? 'invalid_json' : (STATUS_CODES[status] ?? 'bad_request');
        message = fe.message;
      } else if (fe.statusCode === 503) {
        status = 503;
        code = 'unavailable';
        message = fe.message;
      }
    }
    // A store or service that is briefly unavailable: clients and proxies may retry after a second.
    if (status === 503) void reply.header('retry-after', '1');
    if (status >= 500 && status !== 503) request.log.error({ err }, 'request failed');
    else request.log.info({ code, status }, message);
    void reply.status(status).send(errorBody(request, code, message, details));
  });
  const methodsOf = routeMethods(app);
  app.setNotFoundHandler((request, reply) => {
    const path = JSON.stringify(echoName(request.url.split('?')[0]));
    const allow = methodsOf(request.url);
    if (allow.length > 0) {
      const message = `${request.method} is not allowed on ${path}: it is served with ${allow.join(', ')}`;
      void reply.status(405).header('allow', allow.join(', ')).send(errorBody(request, 'method_not_allowed', message, { allow }));
      return;
    }
    void reply.status(404).send(errorBody(request, 'not_found', `no route ${request.method} ${path}`));
  });
}

/**
 * Which methods a path is served with, for the not-found handler: a known path asked with another
 * method is a 405 naming them (with Allow), not "no route". fastify's router answers only for the
 * method asked, so the routes are mirrored into a router of their own: the same find-my-way,
 * given the app's routing options and every route as fastify registers it (onRoute sees the HEAD
 * route of every GET route too), so that a path matches here exactly when fastify would route it,
 * parameters included.
 */
function routeMethods(app: FastifyInstance): (url: string) => string[] {
  const router = FindMyWay({ ...app.initialConfig.routerOptions });
  const methods = new Set<FindMyWay.HTTPMethod>();
  const served = () => undefined;
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat() as FindMyWay.HTTPMethod[]) {
      // The same method and path again (under another constraint, which no route here uses) is one entry.
      if (router.hasRoute(method, route.url)) continue;
      router.on(method, route.url, served);
      methods.add(method);
    }
  });
  return (url) => [...methods].filter((m) => router.find(m, url) !== null).sort();
}

/** What Node's HTTP parser reports before a request exists (malformed, oversized headers, timeouts). */
const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request_timeout', 'the request was not received in time (REQUEST_TIMEOUT_MS / HEADERS_TIMEOUT_MS)'],
  HPE_HEADER_OVERFLOW: [431, 'headers_too_large', 'the request headers are too large'],
};

/** A client's own x-request-id, when it sent a well-formed one (the same rule as the app's). */
export const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The x-request-id among the bytes Node's parser saw before it failed, so the client can match the
 * error to its request. Only the head of the packet is looked at (headers come first), the header
 * is found by a plain scan, and the value checked by REQUEST_ID_RE: bounded whatever was sent.
 */
function requestIdIn(raw: unknown): string | undefined {
  if (!Buffer.isBuffer(raw)) return undefined;
  const head = raw.subarray(0, 16 * 1024).toString('latin1');
  const at = head.toLowerCase().indexOf('\nx-request-id:');
  if (at < 0) return undefined;
  const end = head.indexOf('\r', at + 1);
  const value = head.slice(at + 14, end < 0 ? undefined : end).trim();
  return REQUEST_ID_RE.test(value) ? value : undefined;
}

/** A raw error answer, for the places that have a socket or a bare response but no fastify reply. */
function rawErrorAnswer(status: number, code: string, message: string, requestId: string = randomUUID()): { head: string; body: string } {
  const body = JSON.stringify({ error: { code, message, request_id: requestId } });
  const head =
    `HTTP/1.1 ${status} ${HTTP_STATUS_TEXT[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n`;
  return { head, body };
}

type HttpSocket = Socket & { _httpMessage?: ServerResponse | null };

/** Sockets whose parser error is being answered: the parser reports again on every later chunk. */
const answering = new WeakSet<Socket>();

/**
 * Runs `then` once no response is being written on the socket. Requests parsed before the bad
 * bytes were handed to their routes, which may have stored bars: their answers must reach the
 * client, so the error answer waits for them (each is bounded by REQUEST_TIMEOUT_MS).
 */
function afterResponses(socket: HttpSocket, then: () => void, turns = 0): void {
  const current = socket._httpMessage;
  if (!current || socket.destroyed) return then();
  // A finished response is detached on a later tick; look again then (bounded, in case it never is).
  if (current.writableFinished || current.destroyed) {
    if (turns > 100) return then();
    setImmediate(() => afterResponses(socket, then, turns + 1));
    return;
  }
  current.once('close', () => setImmediate(() => afterResponses(socket, then, turns)));
}

/**
 * Answers errors Node's HTTP parser raises before fastify sees a request (a body longer than its
 * Content-Length leaves bytes that do not parse as a request; a header too large; a timeout) in the
 * service's error shape, then closes the connection as Node itself would. Answers to requests
 * already parsed on the connection are sent first; bytes after a request that asked to close the
 * connection (HPE_CLOSED_CONNECTION) are ignored, as HTTP says they must be, with no answer of
 * their own.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed || answering.has(socket)) return;
  answering.add(socket);
  const http = socket as HttpSocket;
  const [status, code, message] = CLIENT_ERRORS[err.code ?? ''] ?? [400, 'bad_request', `malformed HTTP request (${err.code ?? 'parse error'})`];
  const answer = () => {
    if (socket.destroyed) return;
    if (err.code === 'HPE_CLOSED_CONNECTION' || !socket.writable || http._httpMessage?.headersSent) return void socket.destroy();
    const { head, body } = rawErrorAnswer(status, code, message, requestIdIn((err as { rawPacket?: unknown }).rawPacket));
    socket.end(head + body);
    // end() flushes the answer; a client that never reads it must not hold the socket.
    socket.setTimeout(5000, () => socket.destroy());
  };
  // A timeout, or bad bytes inside the body of the request in progress: that request never arrives
  // whole, so its route will not answer; this answer is its answer.
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || (http._httpMessage && !http._httpMessage.req.complete)) return answer();
  // Stop reading: whatever follows the bad bytes cannot be framed.
  socket.pause();
  afterResponses(http, answer);
}

/** Expectation values Node leaves to the app (anything but 100-continue): answered 417 in the error shape. */
export function answerExpectation(req: IncomingMessage, res: ServerResponse): void {
  const requestId = randomUUID();
  const { body } = rawErrorAnswer(417, 'expectation_failed', `Expect: ${JSON.stringify(echoName(String(req.headers.expect ?? '')))} is not supported (only 100-continue)`, requestId);
  res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-request-id': requestId, connection: 'close' });
  res.end(body);
}

/** Errors fastify's router raises before a route is chosen: a path that does not decode, a parameter too long. */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const shown = echoName(request.url.split('?')[0]);
  let status = 400;
  let code = 'bad_url';
  let message = `the path ${JSON.stringify(shown)} is not a valid URL (bad percent-encoding)`;
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    status = 414;
    code = 'uri_too_long';
    message = `a segment of the path ${JSON.stringify(shown)} is too long`;
  } else if (err.code !== 'FST_ERR_BAD_URL') {
    code = 'bad_request';
    message = err.message;
  }
  request.log.info({ code, status }, message);
  void reply.header('x-request-id', request.id).status(status).send(errorBody(request, code, message));
}
