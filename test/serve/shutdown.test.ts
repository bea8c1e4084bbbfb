import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { request } from 'node:http';
import { join } from 'node:path';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { startServer } from '../../src/serve/server.js';
import { ConfigError } from '../../src/config.js';
import { tinySeries, writeTinyBundle, type TinySpec } from './helpers/bundles.js';
import { KEY, tempDir } from './helpers/http.js';

const SPEC: TinySpec = { name: 'acme', version: '1', seed: 6 };

describe('startServer in one process', () => {
  const tmp = tempDir();
  let bundleDir: string;
  beforeAll(async () => {
    bundleDir = await writeTinyBundle(join(tmp.dir, 'bundle'), SPEC);
  });
  afterAll(() => tmp.cleanup());

  it('refuses to start without a key', async () => {
    await expect(startServer({ bundleDir, port: 0, host: '127.0.0.1', logger: false, handleSignals: false })).rejects.toThrow(ConfigError);
  });

  it('finishes in-flight requests on close, then refuses new connections and closes the store', async () => {
    const srv = await startServer({
      bundleDir,
      port: 0,
      host: '127.0.0.1',
      apiKeys: [KEY],
      sqlitePath: join(tmp.dir, 'h.sqlite'),
      logger: false,
      handleSignals: false,
    });
    expect(srv.workers).toBe(1);
    expect(srv.app).not.toBeNull();
    const history = tinySeries(SPEC);
    const n = history.date.length;
    const body = JSON.stringify(seriesToSplitJson(history, { start: 0, end: n }));
    // A request in flight: its headers received (the server has started it) and half its body sent
    // when shutdown starts. Waiting for the server's 'request' event, not for a delay, keeps this
    // deterministic on a loaded machine.
    const started = once(srv.app!.server, 'request');
    const u = new URL(srv.url);
    let closing: Promise<void> | undefined;
    const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        { host: u.hostname, port: u.port, path: '/forecast', method: 'POST', headers: { 'x-api-key': KEY, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.write(body.slice(0, 1000));
      started.then(() => {
        closing = srv.close();
        // The rest of the body arrives after close() began.
        setImmediate(() => req.end(body.slice(1000)));
      }, reject);
    });
    const res = await answer;
    expect(closing).toBeDefined();
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).forecasts).toHaveLength(n);
    await closing;
    await expect(fetch(`${srv.url}/healthz`)).rejects.toThrow();
  });

  it('demo start: no bundle named trains the demo bundle, generates a key; a restart reuses the bundle', async () => {
    const writes: string[] = [];
    const orig = process.stdout.write.bind(process.stdout);
    const demo = { demoDir: join(tmp.dir, 'demo'), port: 0, host: '127.0.0.1', sqlitePath: join(tmp.dir, 'demo.sqlite'), logger: false, handleSignals: false } as const;
    process.stdout.write = ((chunk: string) => (writes.push(String(chunk)), true)) as typeof process.stdout.write;
    let srv;
    try {
      srv = await startServer(demo);
    } finally {
      process.stdout.write = orig;
    }
    const key = srv.generatedApiKey!;
    expect(key).toMatch(/^demo-/);
    expect(writes.join('')).toContain(key);
    const card = await fetch(`${srv.url}/models/demo`, { headers: { 'x-api-key': key } });
    expect(card.status).toBe(200);
    const first = (await card.json()) as { origin: string; created_at: string; feature_set: { name: string } };
    expect(first).toMatchObject({ origin: 'train', feature_set: { name: 'causal' } });
    expect((await fetch(`${srv.url}/models/demo`)).status).toBe(401);
    await srv.close();

    // Started again on the same folder: the trained bundle is loaded, not retrained.
    const again = await startServer({ ...demo, apiKeys: [KEY] });
    expect(again.generatedApiKey).toBeNull();
    const card2 = (await (await fetch(`${again.url}/models/demo`, { headers: { 'x-api-key': KEY } })).json()) as { created_at: string };
    expect(card2.created_at).toBe(first.created_at);
    await again.close();
  });
});
