/**
 * Entry of a node:cluster worker (forked by startServer): waits for its options from the primary,
 * builds the app and listens on the shared port. Metrics requests and reloads go through the primary
 * so that /metrics shows every worker and /admin/reload reaches every worker.
 */
import cluster from 'node:cluster';
import client from 'prom-client';
import { ForecastError } from '../errors.js';
import { buildApp, type ClusterHooks } from './app.js';
import type { ClusterMessage, ServerOptions } from './server.js';

let nextId = 1;
const waiting = new Map<number, (m: ClusterMessage) => void>();

function ask<T extends ClusterMessage>(msg: ClusterMessage & { id: number }, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      waiting.delete(msg.id);
      reject(new Error(`no answer from the primary for ${msg.type}`));
    }, timeoutMs);
    waiting.set(msg.id, (m) => {
      clearTimeout(t);
      resolve(m as T);
    });
    process.send!(msg);
  });
}

async function runWorker(options: ServerOptions): Promise<void> {
  const hooks: ClusterHooks = {
    async reloadAll() {
      const res = await ask<Extract<ClusterMessage, { type: 'forecast:reload-all-done' }>>({ type: 'forecast:reload-all', id: nextId++ }, 120_000);
      if (res.error || !res.report) throw new ForecastError(`reload failed: ${res.error ?? 'no report'}`, 422, 'reload_failed');
      return res.report;
    },
    async metricsText() {
      const res = await ask<Extract<ClusterMessage, { type: 'forecast:metrics-res' }>>({ type: 'forecast:metrics-req', id: nextId++ }, 10_000);
      if (res.error) throw new Error(res.error);
      return { contentType: res.contentType, body: res.body };
    },
  };
  const app = await buildApp({
    apiKeys: options.apiKeys,
    insecureDev: options.insecureDev,
    databaseUrl: options.databaseUrl,
    databaseSchema: options.databaseSchema,
    sqlitePath: options.sqlitePath,
    maxBodyBytes: options.maxBodyBytes,
    logLevel: options.logLevel,
    bundleDir: options.bundleDir,
    modelsDir: options.modelsDir,
    defaultModel: options.defaultModel,
    logger: options.logger,
    cluster: hooks,
  });
  const workerId = String(cluster.worker?.id ?? 0);
  app.addHook('onSend', async (_req, reply) => {
    reply.header('x-worker-id', workerId);
  });
  // Answer the primary's metric collection from this app's registry.
  client.AggregatorRegistry.setRegistries([app.forecastService.metrics.registry]);
  new client.AggregatorRegistry();
  process.on('message', (msg: ClusterMessage) => {
    if (msg?.type === 'forecast:reload') {
      app.forecastService.reloadLocal().then(
        (report) => process.send!({ type: 'forecast:reload-done', id: msg.id, report } satisfies ClusterMessage),
        (err: Error) => process.send!({ type: 'forecast:reload-done', id: msg.id, error: err.message } satisfies ClusterMessage),
      );
    }
  });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    app.forecastService.state.shuttingDown = true;
    const t = setTimeout(() => process.exit(1), options.shutdownTimeoutMs ?? 10_000);
    t.unref();
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', () => undefined); // the primary decides (Ctrl-C reaches the whole group)
  await app.listen({ port: options.port ?? 8000, host: options.host ?? '0.0.0.0' });
}

if (cluster.isWorker) {
  process.on('message', (msg: ClusterMessage) => {
    if (msg?.type === 'forecast:start') {
      runWorker(msg.options).catch((err: Error) => {
        process.stderr.write(`${JSON.stringify({ level: 60, time: Date.now(), pid: process.pid, msg: `worker failed to start: ${err.message}` })}\n`);
        process.send!({ type: 'forecast:failed', message: err.message } satisfies ClusterMessage, () => process.exit(1));
      });
    } else if (msg && (msg.type === 'forecast:metrics-res' || msg.type === 'forecast:reload-all-done')) {
      const cb = waiting.get(msg.id);
      if (cb) {
        waiting.delete(msg.id);
        cb(msg);
      }
    }
  });
  process.send!({ type: 'forecast:hello' } satisfies ClusterMessage);
}
