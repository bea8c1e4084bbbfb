import { randomUUID } from 'node:crypto';
import { STATUS_CODES as HTTP_STATUS_TEXT } from 'node:http';
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

/**
 * Answers errors Node's HTTP parser raises before fastify sees a request (a body longer than its
 * Content-Length leaves bytes that do not parse as a request; a header too large; a timeout) in the
 * service's error shape, then closes the connection as Node itself would.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] = CLIENT_ERRORS[err.code ?? ''] ?? [400, 'bad_request', `malformed HTTP request (${err.code ?? 'parse error'})`];
  // A response already being written on this socket cannot be followed by another one.
  const inProgress = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !inProgress?.headersSent) {
    const body = JSON.stringify({ error: { code, message, request_id: randomUUID() } });
    socket.write(
      `HTTP/1.1 ${status} ${HTTP_STATUS_TEXT[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
