/**
 * Error messages in the service's own words (issue 10, item 5): every invalid JSON body is told
 * where it stops being JSON, a 415 names what was sent and what is accepted, a 413 the limit, a
 * known path asked with another method is a 405 with Allow, an empty bar table and an unknown query
 * parameter are explained instead of the validator's text. All in the one error shape, with the
 * request id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/serve/app.js';
import { barsFromRecords, barsFromSplit, seriesToSplitJson } from '../../src/serve/bar-table.js';
import { findJsonSyntaxProblem } from '../../src/serve/json-body.js';
import { tinyBundle, tinySeries, type TinySpec } from './helpers/bundles.js';
import { KEY, tempDir } from './helpers/http.js';

const SPEC: TinySpec = { name: 'acme', version: '1', seed: 7 };
const COLS = ['date', 'open', 'high', 'low', 'close', 'volume'];
const MAX_BODY = 2048;

/** The one error shape, its request id the x-request-id header; returns the error. */
function expectError(res: LightMyRequestResponse, status: number, code: string) {
  expect(res.statusCode, res.body).toBe(status);
  const body = res.json();
  expect(Object.keys(body)).toEqual(['error']);
  const e = body.error;
  expect(e.code).toBe(code);
  expect(typeof e.message).toBe('string');
  expect(Object.keys(e).every((k) => ['code', 'message', 'details', 'request_id'].includes(k))).toBe(true);
  expect(e.request_id).toBe(res.headers['x-request-id']);
  return e as { code: string; message: string; details?: Record<string, unknown>; request_id: string };
}

describe('error messages', () => {
  const tmp = tempDir();
  let app: FastifyInstance;
  const history = tinySeries(SPEC);
  const n = history.date.length;
  const frame = seriesToSplitJson(history, { start: n - 1, end: n });

  beforeAll(async () => {
    const bundle = await tinyBundle(join(tmp.dir, 'models'), SPEC);
    app = await buildApp({ bundles: [bundle], sqlitePath: join(tmp.dir, 'h.sqlite'), apiKeys: [KEY], logger: false, maxBodyBytes: MAX_BODY });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    tmp.cleanup();
  });

  const post = (url: string, payload: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url, payload, headers: { 'x-api-key': KEY, 'content-type': 'application/json', ...headers } });

  describe('invalid JSON says where', () => {
    it('a truncated body: unexpected end of JSON input at its end', async () => {
      const e = expectError(await post('/forecast', '{"columns": ['), 400, 'invalid_json');
      expect(e.message).toBe("body is not valid JSON: unexpected end of JSON input at line 1, column 14 (character 13), expected a value or ']'");
      expect(e.details).toEqual({ field: 'body', line: 1, column: 14, offset: 13 });
      const lines = '{\n  "columns": ["date"],\n  "data": [[1, 2';
      const m = expectError(await post('/forecast', lines), 400, 'invalid_json');
      expect(m.message).toMatch(/^body is not valid JSON: unexpected end of JSON input at line 3, column 17 \(character 41\), expected ',' or '\]'/);
    });

    it('an unexpected character (where V8 gives no position) is placed by line and column', async () => {
      const e = expectError(await post('/forecast', '{\n "data": x}'), 400, 'invalid_json');
      expect(e.message).toMatch(/^body is not valid JSON: unexpected character 'x' at line 2, column 10 \(character 11\), expected a value/);
      expect(e.details).toMatchObject({ line: 2, column: 10, offset: 11 });
      const word = expectError(await post('/forecast', 'not json'), 400, 'invalid_json');
      expect(word.message).toBe("body is not valid JSON: unexpected character 'o' at line 1, column 2 (character 1), expected 'null'");
    });

    it('every kind of syntax error names its line and column', async () => {
      const bodies = ['NaN', '[1,]', '{"a":1,}', '{"a" 1}', '"a\u0001b"', '"\\x"', '"\\u12G4"', '01', '-', '1e', '1.', 'tru', '\uFEFF{}', '"abc', '{"columns":[]} x', '[1 2]', "{'a':1}"];
      for (const body of bodies) {
        const e = expectError(await post('/forecast', body), 400, 'invalid_json');
        expect(e.message, body).toMatch(/^body is not valid JSON: .+ at line \d+, column \d+ \(character \d+\)/);
        expect(e.message, body).not.toMatch(/JSON at position|is not valid JSON$/);
      }
    });

    it('the scan agrees with JSON.parse, places a truncation at the end and a change no earlier than where it was made', () => {
      fc.assert(
        fc.property(fc.json(), fc.nat(), fc.string({ minLength: 1, maxLength: 1 }), (text, k, ch) => {
          expect(findJsonSyntaxProblem(text)).toBeNull();
          const cut = text.slice(0, k % (text.length + 1));
          let parses = true;
          try {
            JSON.parse(cut);
          } catch {
            parses = false;
          }
          const atEnd = findJsonSyntaxProblem(cut);
          if (parses) expect(atEnd).toBeNull();
          else expect(atEnd?.offset).toBe(cut.length);
          const at = k % text.length;
          const changed = text.slice(0, at) + ch + text.slice(at + 1);
          let changedParses = true;
          try {
            JSON.parse(changed);
          } catch {
            changedParses = false;
          }
          const problem = findJsonSyntaxProblem(changed);
          if (changedParses) expect(problem).toBeNull();
          else expect(problem!.offset).toBeGreaterThanOrEqual(at);
        }),
        { numRuns: 500, seed: 10 },
      );
    });
  });

  it('415 names what was sent (shortened) and the accepted content type', async () => {
    const e = expectError(await post('/forecast', 'date,open', { 'content-type': 'text/csv' }), 415, 'unsupported_media_type');
    expect(e.message).toBe('content type "text/csv" is not accepted: send application/json (or no Content-Type)');
    expect(e.details).toEqual({ content_type: 'text/csv', accepted: ['application/json'] });
    const long = `application/${'x'.repeat(4000)}`;
    const l = expectError(await post('/forecast', '{}', { 'content-type': long }), 415, 'unsupported_media_type');
    expect(l.message.length).toBeLessThan(200);
    expect(l.details?.content_type).toBe(`${long.slice(0, 64)}...`);
  });

  it('413 names the limit in bytes and MAX_BODY_BYTES', async () => {
    const big = JSON.stringify({ columns: COLS, data: Array.from({ length: 100 }, () => frame.data[0]) });
    expect(big.length).toBeGreaterThan(MAX_BODY);
    const e = expectError(await post('/forecast', big), 413, 'payload_too_large');
    expect(e.message).toBe(`the body is larger than the limit of ${MAX_BODY} bytes (MAX_BODY_BYTES)`);
    expect(e.details).toEqual({ limit_bytes: MAX_BODY });
  });

  describe('a known path with another method is a 405 with Allow', () => {
    const cases: [string, string, string][] = [
      ['GET', '/forecast', 'POST'],
      ['HEAD', '/forecast', 'POST'],
      ['OPTIONS', '/forecast', 'POST'],
      ['GET', '/models/acme/forecast', 'POST'],
      ['PUT', '/models/acme/versions/1/forecast', 'POST'],
      ['GET', '/v2/models/acme/versions/1/infer', 'POST'],
      ['POST', '/models/acme', 'GET, HEAD'],
      ['DELETE', '/v2/models/acme/versions/1', 'GET, HEAD'],
      ['POST', '/healthz', 'GET, HEAD'],
      ['GET', '/admin/reload', 'POST'],
    ];
    for (const [method, url, allow] of cases) {
      it(`${method} ${url} → 405, Allow: ${allow}`, async () => {
        const res = await app.inject({ method: method as 'GET', url, headers: { 'x-api-key': KEY } });
        expect(res.statusCode).toBe(405);
        expect(res.headers.allow).toBe(allow);
        if (method === 'HEAD') return;
        const e = expectError(res, 405, 'method_not_allowed');
        expect(e.message).toBe(`${method} is not allowed on "${url}": it is served with ${allow}`);
        expect(e.details).toEqual({ allow: allow.split(', ') });
      });
    }

    it('every route registered: its path asked with a method no route has is a 405 naming the route’s methods', async () => {
      const byUrl = new Map<string, Set<string>>();
      for (const [route] of app.forecastService.access.entries()) {
        const [method, url] = route.split(' ');
        byUrl.set(url, (byUrl.get(url) ?? new Set()).add(method));
      }
      expect(byUrl.size).toBeGreaterThan(15);
      for (const [url, methods] of byUrl) {
        const path = url.replace(':name', 'acme').replace(':version', '1').replace('*', 'index.html');
        const res = await app.inject({ method: 'PATCH', url: path, headers: { 'x-api-key': KEY } });
        expect(res.statusCode, `PATCH ${path}`).toBe(405);
        const allow = String(res.headers.allow).split(', ');
        for (const m of methods) expect(allow, `PATCH ${path}`).toContain(m);
      }
    });

    it('a path no route has is still a 404 without Allow, whatever the method', async () => {
      for (const [method, url] of [
        ['GET', '/nope'],
        ['POST', '/models/acme/versions/1/nope'],
        ['GET', '/forecast/'],
        ['DELETE', '/v2/models/acme/infer/x'],
      ]) {
        const res = await app.inject({ method: method as 'GET', url, headers: { 'x-api-key': KEY } });
        const e = expectError(res, 404, 'not_found');
        expect(e.message).toBe(`no route ${method} "${url}"`);
        expect(res.headers.allow).toBeUndefined();
      }
    });
  });

  describe('an empty bar table is explained', () => {
    const noRows = 'data has no rows: send at least one bar (date, open, high, low, close, volume)';
    it('split frame, on every route that takes one', async () => {
      for (const url of ['/forecast', '/models/acme/forecast', '/models/acme/versions/1/forecast']) {
        const e = expectError(await post(url, JSON.stringify({ columns: COLS, data: [] })), 422, 'empty');
        expect(e.message).toBe(noRows);
        expect(e.details).toMatchObject({ field: 'data' });
      }
      const mlflow = expectError(await post('/invocations', JSON.stringify({ dataframe_split: { columns: COLS, data: [] } })), 422, 'empty');
      expect(mlflow.message).toBe(noRows);
    });
    it('MLflow records', async () => {
      const e = expectError(await post('/invocations', JSON.stringify({ dataframe_records: [] })), 422, 'empty');
      expect(e.message).toBe('dataframe_records has no records: send at least one bar (date, open, high, low, close, volume)');
      expect(e.details).toMatchObject({ field: 'dataframe_records' });
    });
    it('in the same words as the decoders, which library callers reach without a schema', async () => {
      await expect(barsFromSplit({ columns: COLS, data: [] })).rejects.toMatchObject({ message: noRows, status: 422, code: 'empty' });
      await expect(barsFromRecords([])).rejects.toMatchObject({ status: 422, code: 'empty', message: expect.stringMatching(/^dataframe_records has no records/) });
    });
  });

  describe('an unknown query parameter is named, with the accepted ones', () => {
    const body = JSON.stringify(frame);
    const cases: [string, string, string, string[]][] = [
      ['POST', '/forecast?x=1', 'x', ['replace', 'version']],
      ['POST', '/models/acme/forecast?replace=true&x=1', 'x', ['replace', 'version']],
      // The version is in the path here: as a query parameter it is unknown.
      ['POST', '/models/acme/versions/1/forecast?version=1', 'version', ['replace']],
      ['POST', '/invocations?x=1', 'x', ['model', 'replace', 'version']],
      ['GET', '/models/acme?x=1', 'x', ['version']],
    ];
    for (const [method, url, name, accepted] of cases) {
      it(`${method} ${url}`, async () => {
        const payload = url.startsWith('/invocations') ? JSON.stringify({ dataframe_split: frame }) : body;
        const res = await app.inject({
          method: method as 'GET',
          url,
          headers: { 'x-api-key': KEY, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
          payload: method === 'POST' ? payload : undefined,
        });
        const e = expectError(res, 400, 'invalid_request');
        expect(e.message).toBe(`unknown query parameter '${name}' (accepted: ${accepted.join(', ')})`);
        expect(e.details).toEqual({ location: 'querystring', parameter: name, accepted });
      });
    }
    it('a long name is shortened', async () => {
      const name = 'q'.repeat(3000);
      const e = expectError(await post(`/forecast?${name}=1`, body), 400, 'invalid_request');
      expect(e.message).toBe(`unknown query parameter '${'q'.repeat(64)}...' (accepted: replace, version)`);
    });
    it('an unknown body property lists the accepted ones too', async () => {
      const e = expectError(await post('/forecast', JSON.stringify({ ...frame, extra: 1 })), 400, 'invalid_request');
      expect(e.message).toBe("body has unknown property 'extra' (accepted: columns, data, index)");
    });
  });
});
