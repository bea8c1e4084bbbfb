import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { join } from 'node:path';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { startServer } from '../../src/serve/server.js';
import { ConfigError } from '../../src/config.js';
import { freePort, KEY, tempDir } from './helpers/http.js';
import { makeSeries, writeStubBundle } from './helpers/stub-bundle.js';

describe('startServer in one process', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('refuses to start without a key', async () => {
    const bundleDir = writeStubBundle(join(tmp.dir, 'b0'), { name: 'acme', version: '1', bars: 20 });
    await expect(startServer({ bundleDir, port: await freePort(), host: '127.0.0.1', logger: false, handleSignals: false })).rejects.toThrow(ConfigError);
  });

  it('finishes in-flight requests on close, then refuses new connections and closes the store', async () => {
    const bundleDir = writeStubBundle(join(tmp.dir, 'b1'), { name: 'acme', version: '1', bars: 300 });
    const loaderPath = join(import.meta.dirname, 'helpers/stub-bundle.ts');
    const srv = await startServer({
      bundleDir,
      bundleLoaderModule: loaderPath,
      port: await freePort(),
      host: '127.0.0.1',
      apiKeys: [KEY],
      sqlitePath: join(tmp.dir, 'h.sqlite'),
      logger: false,
      handleSignals: false,
    });
    expect(srv.workers).toBe(1);
    expect(srv.app).not.toBeNull();
    const body = JSON.stringify(seriesToSplitJson(makeSeries(300), { start: 0, end: 300 }));
    // A request in flight: headers and half the body received when shutdown starts.
    const u = new URL(srv.url);
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
      setTimeout(() => {
        closing = srv.close();
        setTimeout(() => req.end(body.slice(1000)), 100);
      }, 100);
    });
    let closing: Promise<void> | undefined;
    const res = await answer;
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).forecasts).toHaveLength(300);
    await closing;
    await expect(fetch(`${srv.url}/healthz`)).rejects.toThrow();
  });

  it('demo start: no bundle named trains (here: stubs) the demo bundle and generates a key', async () => {
    const helpers = join(import.meta.dirname, 'helpers');
    const writes: string[] = [];
    const orig = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => (writes.push(String(chunk)), true)) as typeof process.stdout.write;
    let srv;
    try {
      srv = await startServer({
        demoDir: join(tmp.dir, 'demo'),
        demoModule: join(helpers, 'demo-module.ts'),
        bundleLoaderModule: join(helpers, 'stub-bundle.ts'),
        port: 0,
        host: '127.0.0.1',
        sqlitePath: join(tmp.dir, 'demo.sqlite'),
        logger: false,
        handleSignals: false,
      });
    } finally {
      process.stdout.write = orig;
    }
    const key = srv.generatedApiKey!;
    expect(key).toMatch(/^demo-/);
    expect(writes.join('')).toContain(key);
    expect((await fetch(`${srv.url}/models/demo`, { headers: { 'x-api-key': key } })).status).toBe(200);
    expect((await fetch(`${srv.url}/models/demo`)).status).toBe(401);
    await srv.close();
  });

  it('demo start without a demo bundle module says what to pass', async () => {
    await expect(startServer({ demoModule: join(tmp.dir, 'nope.ts'), port: 0, logger: false, handleSignals: false })).rejects.toThrow(/pass a bundle folder/);
  });
});
