import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '../../src/config.js';
import { buildApp } from '../../src/serve/app.js';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import type { LoadedBundle } from '../../src/bundle/index.js';
import { tinyBundle, tinySeries, type TinySpec } from './helpers/bundles.js';
import { call, KEY, OTHER_KEY, startTestServer, tempDir, type TestServer } from './helpers/http.js';

const SPEC: TinySpec = { name: 'acme', version: '1', seed: 3 };
const tmp = tempDir();
let bundle: LoadedBundle;

beforeAll(async () => {
  bundle = await tinyBundle(join(tmp.dir, 'models'), SPEC);
});
afterAll(() => tmp.cleanup());

describe('API keys', () => {
  let srv: TestServer;
  const history = tinySeries(SPEC);
  const n = history.date.length;
  const body = seriesToSplitJson(history, { start: n - 1, end: n });

  beforeAll(async () => {
    srv = await startTestServer({ bundles: [bundle], sqlitePath: join(tmp.dir, 'h.sqlite'), apiKeys: [KEY, OTHER_KEY] });
  });
  afterAll(async () => {
    await srv.close();
  });

  const secured: [string, string, unknown?][] = [
    ['GET', '/'],
    ['POST', '/forecast', body],
    ['POST', '/models/acme/forecast', body],
    ['POST', '/models/acme/versions/1/forecast', body],
    ['GET', '/models'],
    ['GET', '/models/acme'],
    ['GET', '/models/acme/versions/1'],
    ['POST', '/admin/reload', {}],
    ['POST', '/invocations', { dataframe_split: body }],
    ['GET', '/v2/models/acme'],
    ['GET', '/v2/models/acme/ready'],
    ['POST', '/v2/models/acme/infer', { inputs: [] }],
  ];

  for (const [method, path, b] of secured) {
    it(`${method} ${path} needs a valid key`, async () => {
      const none = await call(srv.url, path, { method, body: b, key: null });
      expect(none.status).toBe(401);
      expect(none.body.error).toMatchObject({ code: 'unauthorized', message: expect.stringContaining('missing') });
      const wrong = await call(srv.url, path, { method, body: b, key: KEY.slice(0, -1) + 'X' });
      expect(wrong.status).toBe(401);
      expect(wrong.body.error.code).toBe('unauthorized');
      const longer = await call(srv.url, path, { method, body: b, key: KEY + 'X' });
      expect(longer.status).toBe(401);
    });
  }

  it('accepts every configured key, and Authorization: Bearer', async () => {
    expect((await call(srv.url, '/', { key: KEY })).status).toBe(200);
    expect((await call(srv.url, '/', { key: OTHER_KEY })).status).toBe(200);
    expect((await call(srv.url, '/', { key: null, headers: { authorization: `Bearer ${OTHER_KEY}` } })).status).toBe(200);
  });

  it('reads the Authorization scheme case-insensitively (RFC 9110 §11.1), with extra spaces; Basic is not a key', async () => {
    for (const authorization of [`bearer ${KEY}`, `BEARER ${KEY}`, `Bearer   ${KEY}`, `bEaReR ${KEY}  `]) {
      const r = await call(srv.url, '/forecast', { key: null, body, headers: { authorization } });
      expect(r.status, authorization).toBe(200);
    }
    for (const authorization of [`Basic ${Buffer.from(`user:${KEY}`).toString('base64')}`, `Basic ${KEY}`, `Bearer${KEY}`, `${KEY}`, `Bearer ${'x'.repeat(8000)}`]) {
      const r = await call(srv.url, '/forecast', { key: null, body, headers: { authorization } });
      expect(r.status, authorization.slice(0, 40)).toBe(401);
      expect(r.body.error.code).toBe('unauthorized');
    }
  });

  it('leaves health, metrics and docs open', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/ping', '/v2/health/live', '/v2/health/ready', '/v2']) {
      const r = await call(srv.url, path, { key: null });
      expect(r.status, path).toBe(200);
    }
    const docs = await fetch(`${srv.url}/docs`, { redirect: 'follow' });
    expect(docs.status).toBe(200);
    expect(await docs.text()).toMatch(/swagger/i);
  });

  it('checks the key before reading the body', async () => {
    const r = await call(srv.url, '/forecast', { rawBody: 'not json', headers: { 'content-type': 'application/json' }, key: null });
    expect(r.status).toBe(401);
  });
});

describe('key configuration', () => {
  it('refuses to start with no key unless insecureDev', async () => {
    await expect(buildApp({ bundles: [bundle], sqlitePath: ':memory:', logger: false })).rejects.toThrow(ConfigError);
    const app = await buildApp({ bundles: [bundle], sqlitePath: ':memory:', logger: false, insecureDev: true });
    const r = await app.inject({ method: 'GET', url: '/models' });
    expect(r.statusCode).toBe(200);
    await app.close();
  });

  it('reads API_KEYS and API_KEYS_FILE, rejects weak keys', () => {
    const tmp = tempDir();
    const file = join(tmp.dir, 'keys');
    writeFileSync(file, `# service keys\n${OTHER_KEY}\n\n`);
    const cfg = loadConfig({ API_KEYS: `${KEY}, ${KEY}`, API_KEYS_FILE: file });
    expect(cfg.apiKeys).toEqual([KEY, OTHER_KEY]);
    expect(() => loadConfig({ API_KEYS: 'short' })).toThrow(/at least 16/);
    expect(() => loadConfig({ API_KEYS_FILE: join(tmp.dir, 'missing') })).toThrow(/cannot be read/);
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x' })).toThrow(/DATABASE_URL/);
    const d = loadConfig({});
    expect(d).toMatchObject({ port: 8000, host: '0.0.0.0', maxBodyBytes: 1048576, databaseUrl: null });
    expect(d.workers).toBeGreaterThanOrEqual(1);
    expect(loadConfig({ WEB_CONCURRENCY: '3', MAX_BODY_BYTES: '2048' })).toMatchObject({ workers: 3, maxBodyBytes: 2048 });
    tmp.cleanup();
  });

  it('never logs the key', async () => {
    const lines: string[] = [];
    const stream = { write: (s: string) => void lines.push(s) };
    const app = await buildApp({ bundles: [bundle], sqlitePath: ':memory:', apiKeys: [KEY], logger: { stream, level: 'trace' } });
    await app.inject({ method: 'GET', url: '/', headers: { 'x-api-key': KEY } });
    await app.inject({ method: 'GET', url: '/', headers: { 'x-api-key': 'wrong-key-0123456789' } });
    await app.close();
    const all = lines.join('');
    expect(all).toContain('reqId');
    expect(all).not.toContain(KEY);
    expect(all).not.toContain('wrong-key-0123456789');
  });
});
