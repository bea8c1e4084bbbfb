import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { request } from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { startServer } from '../../src/serve/server.js';
import { ConfigError } from '../../src/config.js';
import { tinySeries, writeTinyBundle, type TinySpec } from './helpers/bundles.js';
import { KEY, tempDir } from './helpers/http.js';
import { alive, processTree, spawnServer, spawnTracked, until, type ServerProcess } from './helpers/process.js';

const SPEC: TinySpec = { name: 'acme', version: '1', seed: 6 };

describe('startServer in one process', () => {
  const tmp = tempDir();
  let bundleDir: string;
  beforeAll(async () => {
    bundleDir = await writeTinyBundle(join(tmp.dir, 'bundle'), SPEC);
  });
  afterAll(() => tmp.cleanup());

  it('refuses to start without a key', async () => {
    await expect(startServer({ bundleDir, port: 0, host: '127.0.0.1', workers: 1, logger: false, handleSignals: false })).rejects.toThrow(ConfigError);
  });

  it('finishes in-flight requests on close, then refuses new connections and closes the store', async () => {
    const srv = await startServer({
      bundleDir,
      port: 0,
      host: '127.0.0.1',
      workers: 1,
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
    const demo = { demoDir: join(tmp.dir, 'demo'), port: 0, host: '127.0.0.1', workers: 1, sqlitePath: join(tmp.dir, 'demo.sqlite'), logger: false, handleSignals: false } as const;
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

/** A connection opened now, whose request is written when `send()` is called. */
interface Pending {
  connected: Promise<void>;
  send(path?: string): void;
  /** The status line's code, or the way the connection ended without one. */
  answer: Promise<{ status?: number; error?: string }>;
}

function openConnection(port: number): Pending {
  const socket = net.connect({ host: '127.0.0.1', port });
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (text += d));
  const connected = new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  connected.catch(() => undefined);
  const answer = new Promise<{ status?: number; error?: string }>((resolve) => {
    // A client's own limit, so that a connection nobody answers is a failure and not a hung test.
    const t = setTimeout(() => socket.destroy(Object.assign(new Error('no answer'), { code: 'HUNG' })), 30_000);
    const end = (error?: string) => {
      clearTimeout(t);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve(m ? { status: Number(m[1]) } : { error: error ?? 'closed without an answer' });
    };
    socket.once('error', (err: NodeJS.ErrnoException) => end(err.code ?? err.message));
    socket.once('close', () => end());
  });
  return {
    connected,
    send: (path = '/healthz') => socket.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`),
    answer,
  };
}

async function status(url: string, path: string): Promise<number | string> {
  try {
    const res = await fetch(`${url}${path}`, { headers: { connection: 'close' } });
    await res.arrayBuffer();
    return res.status;
  } catch (err) {
    return ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code ?? (err as Error).message;
  }
}

describe('SIGTERM with connections queued (graceful stop, in a child process)', () => {
  const tmp = tempDir();
  let bundleDir: string;
  const servers: ServerProcess[] = [];
  beforeAll(async () => {
    bundleDir = await writeTinyBundle(join(tmp.dir, 'bundle'), SPEC);
  });
  afterAll(async () => {
    await Promise.allSettled(servers.map((s) => s.stop('SIGKILL', 10_000)));
    tmp.cleanup();
  });
  const serve = async (workers: number, drainDelayMs: number) => {
    const srv = await spawnServer({
      port: 0,
      host: '127.0.0.1',
      workers,
      apiKeys: [KEY],
      bundleDir,
      sqlitePath: join(tmp.dir, `drain-${workers}-${drainDelayMs}.sqlite`),
      drainDelayMs,
      logger: false,
    });
    servers.push(srv);
    return srv;
  };

  for (const workers of [1, 2]) {
    it(`drain delay (${workers === 1 ? 'one process' : 'two workers'}): /readyz turns 503 at once, /healthz stays 200, new connections are still served, and every queued one is answered`, async () => {
      const srv = await serve(workers, 1500);
      const conns = Array.from({ length: 50 }, () => openConnection(srv.port));
      await Promise.all(conns.map((c) => c.connected));
      // Half have sent their request when SIGTERM arrives, half send it during the drain delay.
      conns.slice(0, 25).forEach((c) => c.send());
      const exited = srv.stop('SIGTERM', 30_000);
      await new Promise((r) => setTimeout(r, 300));
      conns.slice(25).forEach((c) => c.send());
      expect(await status(srv.url, '/readyz')).toBe(503);
      expect(await status(srv.url, '/healthz')).toBe(200);
      const answers = await Promise.all(conns.map((c) => c.answer));
      expect(answers.filter((a) => a.status !== 200)).toEqual([]);
      expect(await exited).toBe(0);
      expect(await status(srv.url, '/healthz')).toBe('ECONNREFUSED');
    });

    it(`no drain delay (${workers === 1 ? 'one process' : 'two workers'}): connections accepted before SIGTERM are answered, even a request that arrives just after it`, async () => {
      const srv = await serve(workers, 0);
      const conns = Array.from({ length: 50 }, () => openConnection(srv.port));
      await Promise.all(conns.map((c) => c.connected));
      conns.slice(0, 25).forEach((c) => c.send());
      const exited = srv.stop('SIGTERM', 30_000);
      await new Promise((r) => setTimeout(r, 50));
      conns.slice(25).forEach((c) => c.send());
      const answers = await Promise.all(conns.map((c) => c.answer));
      expect(answers.filter((a) => a.status !== 200)).toEqual([]);
      expect(await exited).toBe(0);
    });
  }
});

describe('npm start', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('SIGTERM to the npm process stops the service and every worker', async () => {
    const bundleDir = await writeTinyBundle(join(tmp.dir, 'bundle'), SPEC);
    const npm = spawnTracked('npm', ['start', '--silent'], {
      PORT: '0',
      HOST: '127.0.0.1',
      WEB_CONCURRENCY: '2',
      BUNDLE_DIR: bundleDir,
      API_KEYS: KEY,
      HISTORY_DB: join(tmp.dir, 'history.sqlite'),
      LOG_LEVEL: 'warn',
    });
    let tree: number[] = [];
    try {
      const m = await npm.waitFor(/listening on (http:\/\/\S+) \(2 workers\)/, 90_000);
      expect(await status(m[1], '/healthz')).toBe(200);
      // npm, the service's primary (and whatever sits between), its two workers, and tsx's esbuild helpers.
      tree = processTree(npm.child.pid!);
      expect(tree.length).toBeGreaterThanOrEqual(4);
      npm.child.kill('SIGTERM');
      await until('every process of the tree to exit', () => tree.every((pid) => !alive(pid)), 30_000, 100);
      expect(await status(m[1], '/healthz')).toBe('ECONNREFUSED');
    } finally {
      for (const pid of [...tree, ...processTree(npm.child.pid!)].filter(alive)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
});
