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

  it('answers to parser errors carry an x-request-id header matching the body', async () => {
    const r = await rawExchange(port(), [{ data: `GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}not a request\r\n\r\n` }]);
    const second = r.text.slice(r.text.indexOf('HTTP/1.1 400'));
    const id = /\r\nX-Request-Id: ([0-9a-f-]{36})\r\n/i.exec(second)?.[1];
    expect(id).toBeDefined();
    expect(jsonBodies(second)[0].body.error.request_id).toBe(id);
  });

  it('bytes after a request that asked to close the connection are ignored: its answer is sent, no 400 over it', async () => {
    const history = tinySeries(SPEC);
    const date = nextWeekday(history.date[history.date.length - 1], 3);
    const body = JSON.stringify({ columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [[date, 100, 101, 99, 100.5, 1000]] });
    const r = await rawExchange(port(), [
      {
        data:
          `POST /forecast HTTP/1.1\r\nHost: x\r\nx-api-key: ${KEY}\r\ncontent-type: application/json\r\nConnection: close\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`,
      },
    ]);
    const answers = jsonBodies(r.text);
    expect(answers.map((a) => a.status)).toEqual([200]);
    expect(answers[0].body.history.added).toBe(1);
  });

  it('a chunked body with a bad chunk size is answered 400 at once, not left waiting for a body that never comes', async () => {
    const r = await rawExchange(port(), [
      { data: `POST /forecast HTTP/1.1\r\nHost: x\r\nx-api-key: ${KEY}\r\ncontent-type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n` },
    ], 5000);
    expect(jsonBodies(r.text).map((a) => a.status)).toEqual([400]);
    expect(r.ms).toBeLessThan(1000);
  });

  it("a parser error answer reuses the client's well-formed x-request-id", async () => {
    const r = await rawExchange(port(), [{ data: `POST /invocations HTTP/1.1\r\nHost: x\r\nx-request-id: mine-42\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\n` }]);
    const [answer] = jsonBodies(r.text);
    expect(answer.status).toBe(400);
    expect(answer.body.error.request_id).toBe('mine-42');
    expect(r.text).toMatch(/\r\nX-Request-Id: mine-42\r\n/);
  });

  it('a request with a bad pipelined request behind it gets its own answer before the 400', async () => {
    const r = await rawExchange(port(), [{ data: `GET /models/acme HTTP/1.1\r\nHost: x\r\nx-api-key: ${KEY}\r\n\r\nNOT HTTP AT ALL\r\n\r\n` }]);
    expect(jsonBodies(r.text).map((a) => a.status)).toEqual([200, 400]);
  });

  it('a request without Host is a 400 in the error shape, not Node’s bare 400', async () => {
    const r = await rawExchange(port(), [{ data: `GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n` }]);
    const [answer] = jsonBodies(r.text);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'missing_host', message: expect.stringMatching(/Host/) });
    // HTTP/1.0 has no Host requirement.
    const old = await rawExchange(port(), [{ data: `GET /healthz HTTP/1.0\r\n\r\n` }]);
    expect(jsonBodies(old.text)[0].status).toBe(200);
  });

  it('an Expect other than 100-continue is a 417 in the error shape; 100-continue is honoured', async () => {
    const r = await rawExchange(port(), [{ data: `GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n` }]);
    const [answer] = jsonBodies(r.text);
    expect(answer.status).toBe(417);
    expect(answer.body.error).toMatchObject({ code: 'expectation_failed', message: expect.stringMatching(/teapot/) });
    expect(r.text).toMatch(/\r\nx-request-id: [0-9a-f-]{36}\r\n/i);
    const ok = await rawExchange(port(), [{ data: `GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n` }]);
    expect(ok.text).toMatch(/^HTTP\/1\.1 100 Continue/);
    expect(ok.text).toMatch(/HTTP\/1\.1 200 OK/);
  });

  it('router errors (a path that does not decode, a parameter too long) come in the error shape with a request id', async () => {
    const bad = await call(srv.url, '/models/%E0%A4%A');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'bad_url' });
    expect(bad.headers.get('x-request-id')).toBe(bad.body.error.request_id);
    // A model name over its 128 characters is refused by the schema, naming the field.
    const long = await call(srv.url, `/models/${'a'.repeat(129)}`);
    expect(long.status).toBe(400);
    expect(long.body.error.message).toMatch(/params\/name/);
    // Valid names up to the limit are routed (unknown here: 404 naming the model).
    const max = await call(srv.url, `/models/${'a'.repeat(128)}`);
    expect(max.status).toBe(404);
    const huge = await call(srv.url, `/models/${'a'.repeat(600)}`);
    expect(huge.status).toBe(414);
    expect(huge.body.error).toMatchObject({ code: 'uri_too_long' });
    expect(huge.headers.get('x-request-id')).toBe(huge.body.error.request_id);
  });

  it('a bar whose features leave float32 once scaled is stored and answered with a null forecast and the reason, not a 500', async () => {
    const history = tinySeries(SPEC);
    const date = nextWeekday(history.date[history.date.length - 1], 10);
    const r = await call(srv.url, '/forecast', { body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [[date, 1e40, 1e40, 1e40, 1e40, 1000]] } });
    expect(r.status).toBe(200);
    expect(r.body.history.added).toBe(1);
    expect(r.body.forecasts[0]).toMatchObject({ date, y_pred: null, reason: expect.stringMatching(/outside the model's range/) });
    // Asked again (now a stored bar): the same answer.
    const again = await call(srv.url, '/forecast', { body: { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [[date, 1e40, 1e40, 1e40, 1e40, 1000]] } });
    expect(again.body.forecasts[0]).toEqual(r.body.forecasts[0]);
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
