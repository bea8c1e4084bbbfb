import { randomUUID } from 'node:crypto';
import { STATUS_CODES as HTTP_STATUS_TEXT, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ForecastError } from '../errors.js';

/** The one error shape of every endpoint. */
export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown>; request_id: string };
}


const FASTIFY_CODES: Record<string, [number, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'payload_too_large'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'invalid_content_length'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'empty_body'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'invalid_json'],
  FST_ERR_CTP_INVALID_TYPE: [400, 'invalid_content_type'],
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
}

/** Names the row and field of a JSON-schema error on a split frame (`/data/3/1` → row 3, its column 1). */
function valueAt(body: unknown, path: string): unknown {
  let v: unknown = body;
  for (const part of path.split('/').slice(1)) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function describeValidation(err: FastifyError, body: unknown): { status: number; code: string; message: string; details: Record<string, unknown> } {
  const first = (err.validation?.[0] ?? {}) as AjvError;
  const context = err.validationContext ?? 'body';
  const path = first.instancePath ?? '';
  let text = first.message ?? 'is invalid';
  // JSON.parse reads 1e999 as Infinity, which JSON schema does not count as a number: name it.
  const value = context === 'body' ? valueAt(body, path) : undefined;
  const nonFinite = typeof value === 'number' && !Number.isFinite(value);
  if (nonFinite) text = `${value} is not finite`;
  if (first.keyword === 'additionalProperties' && first.params?.additionalProperty) {
    // Named so the client sees what it sent, but a hostile 1 MiB name must not come back whole.
    const name = String(first.params.additionalProperty);
    text = `has unknown property '${name.length > 64 ? `${name.slice(0, 64)}...` : name}'`;
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

/** One handler for every error: typed ForecastErrors, schema errors, fastify's body errors, and the unexpected (500, logged). */
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
        [status, code] = known;
        message = fe.message;
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
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send(errorBody(request, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`));
  });
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
  const expect = String(req.headers.expect ?? '');
  const shown = expect.length > 64 ? `${expect.slice(0, 64)}...` : expect;
  const { body } = rawErrorAnswer(417, 'expectation_failed', `Expect: ${JSON.stringify(shown)} is not supported (only 100-continue)`);
  const requestId = (JSON.parse(body) as ErrorBody).error.request_id;
  res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-request-id': requestId, connection: 'close' });
  res.end(body);
}

/** Errors fastify's router raises before a route is chosen: a path that does not decode, a parameter too long. */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const path = request.url.split('?')[0];
  const shown = path.length > 64 ? `${path.slice(0, 64)}...` : path;
  let status = 400;
  let code = 'bad_url';
  let message = `the path ${JSON.stringify(shown)} is not a valid URL (bad percent-encoding)`;
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    status = 414;
    code = 'uri_too_long';
    message = `a segment of the path ${JSON.stringify(shown)} is too long`;
  } else if (err.code !== 'FST_ERR_BAD_URL') {
    status = 400;
    code = 'bad_request';
    message = err.message;
  }
  request.log.info({ code, status }, message);
  void reply.header('x-request-id', request.id).status(status).send(errorBody(request, code, message));
}
