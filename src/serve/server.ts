/**
 * `startServer`: the listening service. One process, or `workers` processes (node:cluster) sharing
 * the port, each with its own app, history mirror and feature state over the same store. The primary
 * only supervises: it restarts crashed workers, aggregates their metrics, broadcasts reloads and
 * forwards SIGTERM (graceful: in-flight requests finish, stores close).
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import client from 'prom-client';
import { ensureDemoBundle } from '../bundle/index.js';
import { ConfigError, DEFAULT_CONFIG, type ServiceConfig } from '../config.js';
import { openHistoryStore } from '../store/index.js';
import { buildApp, type AppOptions } from './app.js';
import type { ReloadReport } from './registry.js';

export interface ServerOptions extends Partial<ServiceConfig> {
  /** false: no logs; or pino options. */
  logger?: boolean | Record<string, unknown>;
  /** Install SIGTERM / SIGINT handlers that shut down gracefully and exit (default true). */
  handleSignals?: boolean;
}

export interface RunningServer {
  url: string;
  port: number;
  host: string;
  workers: number;
  /** The key generated for a demo start (no bundle named, no key configured). */
  generatedApiKey: string | null;
  /** The app, when serving in this process (workers = 1). */
  app: FastifyInstance | null;
  /** Graceful stop: in-flight requests finish, stores close, workers exit. */
  close(): Promise<void>;
}

/** Messages between the primary and its workers. */
export type ClusterMessage =
  | { type: 'forecast:hello' }
  | { type: 'forecast:start'; options: ServerOptions }
  | { type: 'forecast:metrics-req'; id: number }
  | { type: 'forecast:metrics-res'; id: number; contentType: string; body: string; error?: string }
  | { type: 'forecast:reload-all'; id: number }
  | { type: 'forecast:reload'; id: number }
  | { type: 'forecast:reload-done'; id: number; report?: ReloadReport; error?: string }
  | { type: 'forecast:reload-all-done'; id: number; report?: ReloadReport; error?: string }
  | { type: 'forecast:failed'; message: string };

function hasModels(o: ServerOptions): boolean {
  return Boolean(o.bundleDir || o.modelsDir);
}

/** No bundle named: train (once) and serve the demo bundle, with a generated key if none is set. */
async function prepareDemo(options: ServerOptions): Promise<{ options: ServerOptions; key: string | null }> {
  if (hasModels(options)) return { options, key: null };
  const dir = options.demoDir ?? DEFAULT_CONFIG.demoDir;
  await ensureDemoBundle(dir);
  let key: string | null = null;
  let apiKeys = options.apiKeys ?? [];
  if (apiKeys.length === 0 && !options.insecureDev) {
    key = `demo-${randomBytes(24).toString('base64url')}`;
    apiKeys = [key];
  }
  return { options: { ...options, bundleDir: dir, apiKeys }, key };
}

function appOptions(o: ServerOptions): AppOptions {
  return {
    apiKeys: o.apiKeys,
    insecureDev: o.insecureDev,
    databaseUrl: o.databaseUrl,
    databaseSchema: o.databaseSchema,
    sqlitePath: o.sqlitePath,
    maxBodyBytes: o.maxBodyBytes,
    logLevel: o.logLevel,
    bundleDir: o.bundleDir,
    modelsDir: o.modelsDir,
    defaultModel: o.defaultModel,
    logger: o.logger,
  };
}

function printDemoKey(key: string, port: number): void {
  process.stdout.write(
    `\nDemo start: serving the demo bundle. API key generated for this run (set API_KEYS to choose your own):\n\n  ${key}\n\n` +
      `  curl -H 'x-api-key: ${key}' http://127.0.0.1:${port}/models\n\n`,
  );
}

/** Closes an app within a grace period. */
async function closeWithin(app: FastifyInstance, ms: number): Promise<void> {
  app.forecastService.state.shuttingDown = true;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    app.close(),
    new Promise<void>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`shutdown took longer than ${ms} ms`)), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}

function onSignals(handler: (signal: string) => void): () => void {
  const h = (s: NodeJS.Signals) => handler(s);
  process.once('SIGTERM', h);
  process.once('SIGINT', h);
  return () => {
    process.off('SIGTERM', h);
    process.off('SIGINT', h);
  };
}

export async function startServer(input: ServerOptions = {}): Promise<RunningServer> {
  const { options, key } = await prepareDemo(input);
  const port = options.port ?? DEFAULT_CONFIG.port;
  const host = options.host ?? DEFAULT_CONFIG.host;
  const workers = options.workers ?? 1;
  const grace = options.shutdownTimeoutMs ?? DEFAULT_CONFIG.shutdownTimeoutMs;
  if ((options.apiKeys ?? []).length === 0 && !options.insecureDev)
    throw new ConfigError('no API key configured: set API_KEYS or API_KEYS_FILE (or use --insecure-dev for local development only)');
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;

  if (workers <= 1) {
    const app = await buildApp(appOptions(options));
    await app.listen({ port, host });
    const addr = app.server.address();
    const bound = typeof addr === 'object' && addr ? addr.port : port;
    if (key) printDemoKey(key, bound);
    let closing: Promise<void> | null = null;
    let off = () => undefined as void;
    const close = () => (closing ??= closeWithin(app, grace).finally(() => off()));
    if (options.handleSignals !== false) {
      off = onSignals((signal) => {
        app.log.info({ signal }, 'shutting down');
        close().then(
          () => process.exit(0),
          (err) => {
            app.log.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      });
    }
    return { url: `http://${shownHost}:${bound}`, port: bound, host, workers: 1, generatedApiKey: key, app, close };
  }
  return startCluster({ ...options, port, host, workers }, key, grace, shownHost);
}

async function startCluster(options: ServerOptions & { port: number; host: string; workers: number }, key: string | null, grace: number, shownHost: string): Promise<RunningServer> {
  if (!cluster.isPrimary) throw new Error('startServer with several workers must run in the primary process');
  // Create the store (schema, WAL file) once, so workers do not race to create it.
  const store = await openHistoryStore({ databaseUrl: options.databaseUrl, databaseSchema: options.databaseSchema, sqlitePath: options.sqlitePath });
  await store.close();

  const here = fileURLToPath(import.meta.url);
  const ts = here.endsWith('.ts');
  cluster.setupPrimary({
    exec: join(dirname(here), ts ? 'worker.ts' : 'worker.js'),
    // Running from source: workers load TypeScript through tsx, like the primary.
    execArgv: ts ? ['--import', 'tsx'] : process.execArgv,
    args: [],
  });
  const aggregator = new client.AggregatorRegistry();
  const log = (msg: string) => {
    if (options.logger !== false) process.stderr.write(`${JSON.stringify({ level: 30, time: Date.now(), pid: process.pid, msg })}\n`);
  };
  const workerOptions: ServerOptions = { ...options, handleSignals: true };
  let shuttingDown = false;
  const live = new Set<Worker>();
  const reloadWaits = new Map<number, { pending: number; report?: ReloadReport; error?: string; asker: Worker; askerId: number }>();
  let nextId = 1;
  let boundPort = options.port;

  const onMessage = (worker: Worker, msg: ClusterMessage) => {
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'forecast:metrics-req') {
      aggregator.clusterMetrics().then(
        (body) => worker.send({ type: 'forecast:metrics-res', id: msg.id, contentType: aggregator.contentType, body } satisfies ClusterMessage),
        (err: Error) => worker.send({ type: 'forecast:metrics-res', id: msg.id, contentType: 'text/plain', body: '', error: err.message } satisfies ClusterMessage),
      );
    } else if (msg.type === 'forecast:reload-all') {
      const id = nextId++;
      const targets = [...live];
      reloadWaits.set(id, { pending: targets.length, asker: worker, askerId: msg.id });
      for (const w of targets) w.send({ type: 'forecast:reload', id } satisfies ClusterMessage);
    } else if (msg.type === 'forecast:reload-done') {
      const wait = reloadWaits.get(msg.id);
      if (!wait) return;
      if (msg.error) wait.error ??= msg.error;
      if (worker === wait.asker) wait.report = msg.report;
      if (--wait.pending === 0) {
        reloadWaits.delete(msg.id);
        wait.asker.send({ type: 'forecast:reload-all-done', id: wait.askerId, report: wait.report, error: wait.error } satisfies ClusterMessage);
      }
    }
  };
  cluster.on('message', onMessage);

  const fork = (): Promise<Worker> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork();
      let failure: string | null = null;
      w.on('message', (m: ClusterMessage) => {
        if (m?.type === 'forecast:failed') failure = m.message;
        // Sent once the worker's module has loaded and listens for messages (earlier ones would be lost).
        else if (m?.type === 'forecast:hello') w.send({ type: 'forecast:start', options: workerOptions } satisfies ClusterMessage);
      });
      w.once('listening', (address) => {
        // listen(0) in workers: they share the one port the primary picked.
        if (address.port) boundPort = address.port;
        live.add(w);
        resolve(w);
      });
      w.once('exit', (code, signal) => {
        const wasLive = live.delete(w);
        for (const [id, wait] of reloadWaits) {
          if (--wait.pending === 0) {
            reloadWaits.delete(id);
            if (wait.asker !== w) wait.asker.send({ type: 'forecast:reload-all-done', id: wait.askerId, report: wait.report, error: wait.error ?? 'a worker exited during reload' } satisfies ClusterMessage);
          }
        }
        if (!wasLive) {
          reject(new Error(failure ?? `worker ${w.process.pid} exited (${signal ?? code}) before listening`));
          return;
        }
        if (!shuttingDown) {
          log(`worker ${w.process.pid} exited (${signal ?? code}); starting a new one`);
          setTimeout(() => fork().catch((err: Error) => log(`restart failed: ${err.message}`)), 500).unref();
        }
      });
    });

  const stopAll = async (): Promise<void> => {
    shuttingDown = true;
    const exits = [...Object.values(cluster.workers ?? {})].filter((w): w is Worker => Boolean(w) && !w!.isDead()).map(
      (w) =>
        new Promise<void>((resolve) => {
          const t = setTimeout(() => w.process.kill('SIGKILL'), grace + 2000);
          w.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          w.process.kill('SIGTERM');
        }),
    );
    await Promise.all(exits);
    cluster.off('message', onMessage);
  };

  try {
    await Promise.all(Array.from({ length: options.workers }, fork));
  } catch (err) {
    await stopAll();
    throw err;
  }
  if (key) printDemoKey(key, boundPort);
  log(`${options.workers} workers listening on ${options.host}:${boundPort}`);
  let closing: Promise<void> | null = null;
  const close = () => (closing ??= stopAll());
  if (options.handleSignals !== false) {
    onSignals((signal) => {
      log(`${signal}: stopping workers`);
      close().then(() => process.exit(0));
    });
  }
  return { url: `http://${shownHost}:${boundPort}`, port: boundPort, host: options.host, workers: options.workers, generatedApiKey: key, app: null, close };
}
