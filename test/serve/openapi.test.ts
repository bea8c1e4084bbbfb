/**
 * The OpenAPI document as Swagger UI's "Try it out" uses it, against the demo model `npm start` serves:
 * every operation that takes input documents an example of each input, and sending those examples
 * (path parameters substituted, query parameters and bodies as documented) is answered 2xx, also the
 * second time; every keyed operation documents the shared error response for its 4xx and 5xx answers.
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/serve/app.js';
import { errorSchema } from '../../src/serve/schemas.js';
import { ensureDemoBundle } from '../../src/training/demo.js';
import { ADMIN_KEY, KEY, tempDir } from './helpers/http.js';

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;
const ERROR_REF = '#/components/schemas/ErrorResponse';

interface Parameter {
  in: string;
  name: string;
  required?: boolean;
  example?: unknown;
}

interface Operation {
  security?: Record<string, unknown>[];
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { example?: unknown; examples?: Record<string, { value: unknown }> }> };
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
}

/** The example bodies of an operation: its media `example`, or each of its `examples`. */
function bodyExamples(op: Operation): unknown[] {
  const media = op.requestBody?.content['application/json'];
  if (!media) return [];
  if (media.example !== undefined) return [media.example];
  return Object.values(media.examples ?? {}).map((e) => e.value);
}

describe('OpenAPI examples', () => {
  const tmp = tempDir('forecast-openapi-');
  let app: FastifyInstance;
  let doc: { paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>; components: { schemas: Record<string, unknown> } };
  const operations: { method: (typeof METHODS)[number]; path: string; op: Operation }[] = [];

  beforeAll(async () => {
    const demo = await ensureDemoBundle(join(tmp.dir, 'demo'));
    app = await buildApp({ apiKeys: [KEY], adminApiKeys: [ADMIN_KEY], bundles: [demo], sqlitePath: join(tmp.dir, 'history.sqlite'), logger: false });
    const r = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(r.statusCode).toBe(200);
    doc = r.json();
    for (const [path, item] of Object.entries(doc.paths))
      for (const method of METHODS) {
        const op = item[method];
        if (op) operations.push({ method, path, op });
      }
  });
  afterAll(async () => {
    await app?.close();
    tmp.cleanup();
  });

  it('documents the one error shape as the ErrorResponse component', () => {
    expect(doc.components.schemas.ErrorResponse).toMatchObject({ type: 'object', required: [...errorSchema.required] });
  });

  it('documents the error response of every keyed operation, for its 4xx and 5xx answers', () => {
    const keyed = operations.filter(({ op }) => (op.security ?? []).length > 0);
    // The keyed routes of routes.ts and the three protocols, so an empty document cannot pass.
    expect(keyed.length).toBeGreaterThanOrEqual(14);
    for (const { method, path, op } of keyed)
      for (const status of ['4XX', '5XX']) expect(op.responses[status]?.content?.['application/json']?.schema?.$ref, `${method} ${path} ${status}`).toBe(ERROR_REF);
  });

  it('has an example for every input of every operation', () => {
    for (const { method, path, op } of operations) {
      for (const p of op.parameters ?? []) expect(p.example, `${method} ${path}: ${p.in} parameter ${p.name}`).toBeDefined();
      if (op.requestBody) expect(bodyExamples(op).length, `${method} ${path}: request body`).toBeGreaterThan(0);
    }
  });

  it('answers every documented example 2xx, twice (the second time the bar is unchanged)', async () => {
    const sent: string[] = [];
    let posted = 0;
    // Deletions last: the deletion example deletes the bar every other example sends.
    const ordered = [...operations.filter((o) => o.method !== 'delete'), ...operations.filter((o) => o.method === 'delete')];
    for (const { method, path, op } of ordered) {
      const params = op.parameters ?? [];
      const bodies = bodyExamples(op);
      if (params.length === 0 && bodies.length === 0) continue;
      let url = path;
      const query = new URLSearchParams();
      for (const p of params) {
        if (p.in === 'path') url = url.replace(`{${p.name}}`, encodeURIComponent(String(p.example)));
        else if (p.in === 'query') query.set(p.name, String(p.example));
      }
      if (query.size) url += `?${query}`;
      const schemes = (op.security ?? []).flatMap((s) => Object.keys(s));
      const headers: Record<string, string> = schemes.includes('adminKey') ? { 'x-api-key': ADMIN_KEY } : schemes.includes('apiKey') ? { 'x-api-key': KEY } : {};
      for (const body of bodies.length ? bodies : [undefined])
        for (const attempt of [1, 2]) {
          const r = await app.inject({ method: method.toUpperCase() as 'GET', url, headers, ...(body === undefined ? {} : { payload: body as object }) });
          const label = `${method} ${url} (attempt ${attempt}): ${r.body}`;
          if (method === 'delete' && attempt === 2) {
            // Deleted by the first attempt: the second finds nothing to delete.
            expect(r.statusCode, label).toBe(404);
            continue;
          }
          expect(r.statusCode, label).toBeGreaterThanOrEqual(200);
          expect(r.statusCode, label).toBeLessThan(300);
          if (body === undefined) continue;
          // Every example sends the same bar: only the first of all adds it, every later one finds it unchanged.
          const history = (r.json() as { history?: { added: number; unchanged: number } }).history;
          if (history) expect(history, label).toMatchObject(posted === 0 ? { added: 1, unchanged: 0 } : { added: 0, unchanged: 1 });
          posted++;
        }
      sent.push(`${method} ${path}`);
    }
    // Each protocol's forecast is among them, so a document without examples cannot pass.
    for (const op of ['post /forecast', 'post /models/{name}/forecast', 'post /models/{name}/versions/{version}/forecast', 'post /invocations', 'post /v2/models/{name}/infer', 'post /v2/models/{name}/versions/{version}/infer', 'get /models/{name}', 'get /models/{name}/history', 'delete /admin/models/{name}/history/{date}'])
      expect(sent).toContain(op);
  });

  it("answers a model's readiness 503 in its own shape, not the error shape", async () => {
    const state = app.forecastService.state;
    state.shuttingDown = true;
    try {
      const r = await app.inject({ method: 'GET', url: '/v2/models/demo/ready', headers: { 'x-api-key': KEY } });
      expect(r.statusCode).toBe(503);
      expect(r.json()).toEqual({ name: 'demo', version: '1', ready: false });
    } finally {
      state.shuttingDown = false;
    }
  });

  it('still validates requests: a body unlike the example is a 400 in the documented error shape', async () => {
    const r = await app.inject({ method: 'POST', url: '/forecast', headers: { 'x-api-key': KEY }, payload: { columns: ['date'] } });
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({ error: { code: expect.any(String), message: expect.any(String), request_id: expect.any(String) } });
  });
});
