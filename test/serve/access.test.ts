/**
 * Access is decided by where a route is registered: every route of the app is in the public,
 * client or admin context, public routes are exactly the list below, and every keyed route refuses
 * a request without its kind of key before reading the body.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/serve/app.js';
import { tinyBundle, type TinySpec } from './helpers/bundles.js';
import { ADMIN_KEY, KEY, tempDir } from './helpers/http.js';

const SPEC: TinySpec = { name: 'acme', version: '1', seed: 3 };

/** The routes anyone may call: health, metrics, server metadata and the API documents. */
const PUBLIC = [
  /^(GET|HEAD) \/healthz$/,
  /^(GET|HEAD) \/readyz$/,
  /^(GET|HEAD) \/metrics$/,
  /^(GET|HEAD) \/ping$/,
  /^(GET|HEAD) \/v2$/,
  /^(GET|HEAD) \/v2\/health\/(live|ready)$/,
  /^(GET|HEAD) \/openapi\.json$/,
  /^(GET|HEAD) \/docs(\/.*)?$/,
];

function concrete(url: string): string {
  return url.replace(':name', 'acme').replace(':version', '1').replace('*', 'index.html');
}

describe('route access', () => {
  const tmp = tempDir();
  let app: FastifyInstance;
  beforeAll(async () => {
    const bundle = await tinyBundle(join(tmp.dir, 'models'), SPEC);
    app = await buildApp({ bundles: [bundle], sqlitePath: join(tmp.dir, 'h.sqlite'), apiKeys: [KEY], adminApiKeys: [ADMIN_KEY], logger: false });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    tmp.cleanup();
  });

  it('every route is registered in an access context, and the public ones are exactly the public list', () => {
    const { access } = app.forecastService;
    expect(access.unclassified()).toEqual([]);
    const entries = access.entries();
    expect(entries.length).toBeGreaterThan(20);
    for (const [route, level] of entries) {
      const listed = PUBLIC.some((re) => re.test(route));
      expect(level === 'public', `${route} is ${level}`).toBe(listed);
    }
    expect(entries).toContainEqual(['POST /admin/reload', 'admin']);
    expect(entries).toContainEqual(['POST /forecast', 'client']);
  });

  it('every keyed route answers 401 without a key, and admin routes refuse client keys', async () => {
    for (const [route, level] of app.forecastService.access.entries()) {
      if (level === 'public') continue;
      const [method, url] = route.split(' ') as ['GET' | 'POST' | 'HEAD', string];
      const payload = method === 'POST' ? '{not json' : undefined;
      const headers = payload ? { 'content-type': 'application/json' } : {};
      const none = await app.inject({ method, url: concrete(url), headers, payload });
      expect(none.statusCode, `${route} without a key`).toBe(401);
      if (method !== 'HEAD') expect(none.json().error.code).toBe('unauthorized');
      if (level === 'admin') {
        const client = await app.inject({ method, url: concrete(url), headers: { ...headers, 'x-api-key': KEY }, payload });
        expect(client.statusCode, `${route} with a client key`).toBe(403);
        expect(client.json().error.message).toMatch(/admin/);
      } else {
        // An admin key is not a client key.
        const admin = await app.inject({ method, url: concrete(url), headers: { ...headers, 'x-api-key': ADMIN_KEY }, payload });
        expect(admin.statusCode, `${route} with an admin key`).toBe(401);
      }
    }
  });

  it('public routes answer without a key', async () => {
    for (const [route, level] of app.forecastService.access.entries()) {
      if (level !== 'public' || !route.startsWith('GET ') || route.includes('*')) continue;
      const r = await app.inject({ method: 'GET', url: route.slice(4) });
      expect(r.statusCode, route).not.toBe(401);
      expect(r.statusCode, route).toBeLessThan(500);
    }
  });

  it('admin routes are closed when no admin key is configured', async () => {
    const bundle = await tinyBundle(join(tmp.dir, 'models2'), SPEC);
    const other = await buildApp({ bundles: [bundle], sqlitePath: join(tmp.dir, 'h2.sqlite'), apiKeys: [KEY], logger: false });
    try {
      const r = await other.inject({ method: 'POST', url: '/admin/reload', headers: { 'x-api-key': KEY } });
      expect(r.statusCode).toBe(403);
      expect(r.json().error.message).toMatch(/ADMIN_API_KEYS/);
      const ok = await app.inject({ method: 'POST', url: '/admin/reload', headers: { 'x-api-key': ADMIN_KEY } });
      expect(ok.statusCode).toBe(200);
    } finally {
      await other.close();
    }
  });
});
