/**
 * The serving shell's own guarantees: Node's parser errors and timeouts in the service's error
 * shape, one frozen configuration, model listings that show the stored history, and catch-up reads
 * shared between concurrent requests without losing read-your-writes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_CONFIG, loadConfig, serviceConfig } from '../../src/config.js';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { openHistoryStore } from '../../src/store/index.js';
import type { HistoryStore } from '../../src/store/types.js';
import { expectedForecast, nextWeekday, tinyBundle, tinySeries, trainTiny, writeTinyBundle, type TinySpec } from './helpers/bundles.js';
import { pipelineFromManifest } from '../../src/bundle/index.js';
import { buildApp } from '../../src/serve/app.js';
import { ADMIN_KEY, call, KEY, startTestServer, tempDir, type TestServer } from './helpers/http.js';
import { spawnServer } from './helpers/process.js';
import { mkdirSync } from 'node:fs';

const SPEC: TinySpec = { name: 'acme', version: '1', seed: 5 };

/** Sends raw bytes on one connection and collects everything the server sends until it closes. */
function rawExchange(port: number, chunks: { data: string; afterMs?: number }[], limitMs = 15_000): Promise<{ text: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const guard = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${limitMs} ms; got: ${text}`));
    }, limitMs);
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(guard);
      resolve({ text, ms: Date.now() - started });
    });
    socket.on('connect', async () => {
      for (const c of chunks) {
        if (c.afterMs) await new Promise((r) => setTimeout(r, c.afterMs));
        if (!socket.destroyed) socket.write(c.data);
      }
    });
  });
}

/** The JSON bodies of every HTTP response in a raw exchange. */
function jsonBodies(text: string): any[] {
  return text
    .split(/HTTP\/1\.1 /)
    .slice(1)
    .map((r) => {
      const body = r.slice(r.indexOf('\r\n\r\n') + 4);
      try {
        return { status: Number(r.slice(0, 3)), body: JSON.parse(body.slice(0, body.lastIndexOf('}') + 1)) };
      } catch {
        return { status: Number(r.slice(0, 3)), body: null };
      }
    });
}

describe('the HTTP shell', () => {
  const tmp = tempDir();
  let srv: TestServer;
  beforeAll(async () => {
    const bundle = await tinyBundle(join(tmp.dir, 'models'), SPEC);
    srv = await startTestServer({ bundles: [bundle], sqlitePath: join(tmp.dir, 'h.sqlite'), requestTimeoutMs: 1500, headersTimeoutMs: 1000 });
  });
  afterAll(async () => {
    await srv?.close();
    tmp.cleanup();
  });
  const port = () => Number(new URL(srv.url).port);

  it("answers Node's own 400 (bytes past Content-Length that are no request) in the service's error shape", async () => {
    const r = await rawExchange(port(), [
      { data: `GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}this is not an HTTP request\r\n\r\n` },
    ]);
    const answers = jsonBodies(r.text);
    expect(answers[0]).toMatchObject({ status: 200 });
    expect(answers[1].status).toBe(400);
    expect(answers[1].body.error).toMatchObject({ code: 'bad_request', message: expect.stringMatching(/malformed HTTP request/) });
    expect(answers[1].body.error.request_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a body that stalls is answered 408 in the error shape once REQUEST_TIMEOUT_MS passes', async () => {
    const r = await rawExchange(port(), [
      { data: `POST /forecast HTTP/1.1\r\nHost: x\r\nx-api-key: ${KEY}\r\ncontent-type: application/json\r\nContent-Length: 1000\r\n\r\n{"columns":` },
    ]);
    const answers = jsonBodies(r.text);
    expect(answers.at(-1)!.status).toBe(408);
    expect(answers.at(-1)!.body.error.code).toBe('request_timeout');
    // Bounded: the connection did not stay open much past the configured limit.
    expect(r.ms).toBeLessThan(10_000);
  });

  it('headers sent a byte at a time (slowloris) are cut off by HEADERS_TIMEOUT_MS', async () => {
    const chunks = Array.from('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', (c) => ({ data: c, afterMs: 100 }));
    const r = await rawExchange(port(), chunks);
    expect(r.ms).toBeLessThan(chunks.length * 100);
    const answers = jsonBodies(r.text);
    if (answers.length) expect(answers[0].status).toBe(408);
  });
});

describe('configuration', () => {
  it('is built once, validated and frozen; defaults live in one place', () => {
    const c = loadConfig({ API_KEYS: KEY, PG_QUERY_TIMEOUT_MS: '1234', DRAIN_DELAY_MS: '50' });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.database)).toBe(true);
    expect(Object.isFrozen(c.apiKeys)).toBe(true);
    expect(c.database).toEqual({ ...DEFAULT_CONFIG.database, queryTimeoutMs: 1234 });
    expect(c.drainDelayMs).toBe(50);
    // The same default whichever way the configuration is made.
    expect(serviceConfig({}).workers).toBe(loadConfig({}).workers);
    expect(serviceConfig(c)).toEqual(c);
    expect(() => serviceConfig({ database: { queryTimeoutMs: 0 } })).toThrow(/queryTimeoutMs/);
    expect(() => loadConfig({ READY_TIMEOUT_MS: 'soon' })).toThrow(/READY_TIMEOUT_MS/);
    expect(() => loadConfig({ ADMIN_API_KEYS: 'short' })).toThrow(/ADMIN_API_KEYS/);
  });
});

/** A store that counts catch-up reads and can hold them, to see how concurrent requests share them. */
function countingStore(inner: HistoryStore) {
  let reads = 0;
  let hold: Promise<void> | null = null;
  const store: HistoryStore = Object.create(inner);
  store.changesSince = async (model, version) => {
    reads++;
    if (hold) await hold;
    return inner.changesSince(model, version);
  };
  return {
    store,
    reads: () => reads,
    holdReads(): () => void {
      let release!: () => void;
      hold = new Promise((r) => (release = r));
      return () => {
        hold = null;
        release();
      };
    },
  };
}

describe('catch-up reads', () => {
  const tmp = tempDir();
  const history = tinySeries(SPEC);
  const n = history.date.length;
  afterAll(() => tmp.cleanup());

  it('concurrent requests share catch-up reads, and a request never joins a read that began before it', async () => {
    const bundle = await tinyBundle(join(tmp.dir, 'models'), SPEC);
    const sqlitePath = join(tmp.dir, 'shared.sqlite');
    const counting = countingStore(await openHistoryStore({ sqlitePath }));
    const reader = await buildApp({ bundles: [bundle], store: counting.store, apiKeys: [KEY], logger: false });
    const writer = await buildApp({ bundles: [bundle], sqlitePath, apiKeys: [KEY], logger: false });
    try {
      const body = seriesToSplitJson(history, { start: n - 1, end: n });
      const forecast = (app: typeof reader, b: unknown) =>
        app.inject({ method: 'POST', url: '/forecast', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, payload: JSON.stringify(b) });
      await forecast(reader, body);
      const before = counting.reads();
      const release = counting.holdReads();
      // A read starts and is held; 20 requests arrive while it is in flight.
      const first = forecast(reader, body);
      await new Promise((r) => setImmediate(r));
      // Meanwhile another process writes a new bar (acknowledged before the 20 requests are sent).
      const date = nextWeekday(history.date[n - 1]);
      const added = await forecast(writer, { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [[date, 100, 101, 99, 100.5, 1000]] });
      expect(added.statusCode).toBe(200);
      const many = Array.from({ length: 20 }, () => reader.inject({ method: 'GET', url: '/models/acme', headers: { 'x-api-key': KEY } }));
      release();
      const answers = await Promise.all(many);
      expect((await first).statusCode).toBe(200);
      // One held read plus one shared by all 20 (not 21 reads).
      expect(counting.reads() - before).toBe(2);
      for (const a of answers) {
        expect(a.statusCode).toBe(200);
        // Read-your-writes: every one of them sees the bar acknowledged before it was sent.
        expect(a.json().history).toMatchObject({ bars: n + 1, last_date: date });
      }
    } finally {
      await reader.close();
      await writer.close();
    }
  });

  it('GET /models and model cards report the stored history, not this process’s last view of it', async () => {
    const bundle = await tinyBundle(join(tmp.dir, 'models3'), SPEC);
    const sqlitePath = join(tmp.dir, 'cards.sqlite');
    const a = await startTestServer({ bundles: [bundle], sqlitePath });
    const b = await startTestServer({ bundles: [bundle], sqlitePath });
    try {
      const date = nextWeekday(history.date[n - 1]);
      const r = await call(a.url, '/forecast', { body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [[date, 100, 101, 99, 100.5, 1000]] } });
      expect(r.status).toBe(200);
      // b has served no forecast since a wrote.
      const models = await call(b.url, '/models');
      expect(models.body.models[0].history).toMatchObject({ bars: n + 1, last_date: date, version: r.body.history.version });
      const card = await call(b.url, '/models/acme');
      expect(card.body.history).toMatchObject({ bars: n + 1, last_date: date });
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('an empty models folder (the image as committed: deploy/models/ holds no bundle)', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('the service starts, /healthz 200, /readyz 503 no_models, and serves bundles once reloaded', async () => {
    const models = join(tmp.dir, 'models');
    mkdirSync(models);
    // As the image's CMD runs it: `serve --models /models`, in its own process.
    const srv = await spawnServer({ host: '127.0.0.1', port: 0, workers: 1, apiKeys: [KEY], adminApiKeys: [ADMIN_KEY], modelsDir: models, sqlitePath: join(tmp.dir, 'h.sqlite'), logger: false });
    try {
      expect((await call(srv.url, '/healthz', { key: null })).status).toBe(200);
      const ready = await call(srv.url, '/readyz', { key: null });
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({ status: 'no_models', models: 0 });
      const f = await call(srv.url, '/forecast', { body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [['2024-01-02', 1, 1, 1, 1, 1]] } });
      expect(f.status).toBe(503);
      expect(f.body.error.code).toBe('no_models');
      await writeTinyBundle(join(models, 'acme', '1'), SPEC);
      const reload = await call(srv.url, '/admin/reload', { body: {}, key: ADMIN_KEY });
      expect(reload.status).toBe(200);
      expect(reload.body.added).toEqual(['acme@1']);
      expect((await call(srv.url, '/readyz', { key: null })).body).toMatchObject({ status: 'ready', models: 1 });
      const history = tinySeries(SPEC);
      const n = history.date.length;
      expect((await call(srv.url, '/forecast', { body: seriesToSplitJson(history, { start: n - 1, end: n }) })).status).toBe(200);
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  });
});

describe('forecasts of final bars are made once', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('a bar forecast again answers the same; after an older bar is replaced it is computed anew', async () => {
    const bundle = await tinyBundle(join(tmp.dir, 'models'), SPEC);
    const srv = await startTestServer({ bundles: [bundle], sqlitePath: join(tmp.dir, 'h.sqlite') });
    try {
      const history = tinySeries(SPEC);
      const pipeline = pipelineFromManifest(trainTiny(SPEC).manifest);
      const i = history.date.length - 20;
      const body = seriesToSplitJson(history, { start: i, end: i + 1 });
      const first = await call(srv.url, '/forecast', { body });
      expect(first.body.y_pred[0]).toBe(expectedForecast(pipeline, history, i));
      expect((await call(srv.url, '/forecast', { body })).body.y_pred[0]).toBe(first.body.y_pred[0]);
      // Replace an earlier bar with values that move bar i's forecast.
      let changed: typeof history | null = null;
      for (const factor of [1.5, 0.6, 2, 0.4, 3]) {
        const c = { ...history, close: Float64Array.from(history.close), high: Float64Array.from(history.high), low: Float64Array.from(history.low) };
        c.close[i - 3] *= factor;
        c.high[i - 3] = Math.max(c.high[i - 3], c.close[i - 3]);
        c.low[i - 3] = Math.min(c.low[i - 3], c.close[i - 3]);
        if (expectedForecast(pipeline, c, i) !== first.body.y_pred[0]) {
          changed = c;
          break;
        }
      }
      expect(changed, 'a replacement that moves the forecast').not.toBeNull();
      const replaced = await call(srv.url, '/forecast?replace=true', { body: seriesToSplitJson(changed!, { start: i - 3, end: i - 2 }) });
      expect(replaced.status).toBe(200);
      expect(replaced.body.history.replaced).toBe(1);
      const again = await call(srv.url, '/forecast', { body: seriesToSplitJson(changed!, { start: i, end: i + 1 }) });
      expect(again.body.y_pred[0]).toBe(expectedForecast(pipeline, changed!, i));
    } finally {
      await srv.close();
    }
  });
});
