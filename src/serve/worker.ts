/**
 * Entry of a node:cluster worker (forked by startServer): waits for its configuration from the
 * primary, builds the app and serves the connections the primary hands it (the worker never listens:
 * see server.ts). Metrics requests and reloads go through the primary so that /metrics shows every
 * worker and /admin/reload reaches every worker.
 */
import cluster from 'node:cluster';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import client from 'prom-client';
import { serviceConfig } from '../config.js';
import { ForecastError } from '../errors.js';
import { buildApp, type ClusterHooks } from './app.js';
import { ConnectionTracker, settlesWithin, type ClusterMessage } from './server.js';

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

function send(msg: ClusterMessage): void {
  // The primary may be gone; node:cluster then exits this worker on the disconnect.
  if (process.connected) process.send!(msg, undefined, undefined, () => undefined);
}

let app: FastifyInstance | null = null;
let tracker: ConnectionTracker | null = null;
let draining = false;
/** The grace the primary gave with its stop, once it has asked. */
let stopGraceMs: number | null = null;
let stopping = false;

async function runWorker(msg: Extract<ClusterMessage, { type: 'forecast:start' }>): Promise<void> {
  const config = serviceConfig(msg.config);
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
  const built = await buildApp({ ...config, logger: msg.logger, cluster: hooks });
  const workerId = String(cluster.worker?.id ?? 0);
  built.addHook('onSend', async (_req, reply) => {
    reply.header('x-worker-id', workerId);
  });
  await built.ready();
  // Node's http.Server tracks its connections (the headers and request timeouts, idle detection)
  // from its 'listening' event; this server is handed connections instead of listening.
  built.server.emit('listening');
  tracker = new ConnectionTracker(built.server);
  // Answer the primary's metric collection from this app's registry.
  client.AggregatorRegistry.setRegistries([built.forecastService.metrics.registry]);
  new client.AggregatorRegistry();
  app = built;
  if (draining) built.forecastService.state.shuttingDown = true;
  if (stopGraceMs !== null) return finishStop(stopGraceMs);
  send({ type: 'forecast:ready' });
}

/** A connection from the primary: acknowledged before anything is read from it (see server.ts). */
function accept(id: number, socket: Socket | undefined): void {
  if (!socket) return;
  if (!app || stopping) {
    // Not read: the primary still holds the connection and gives it to another worker.
    send({ type: 'forecast:conn-ack', id, accepted: false });
    socket.destroy();
    return;
  }
  send({ type: 'forecast:conn-ack', id, accepted: true });
  socket.setNoDelay(true);
  app.server.emit('connection', socket);
}

function stop(graceMs: number): void {
  if (stopGraceMs !== null) return;
  stopGraceMs = graceMs;
  // Still starting: runWorker stops once the app is built.
  if (app) void finishStop(graceMs);
}

async function finishStop(graceMs: number): Promise<void> {
  if (stopping || !app || !tracker) return;
  stopping = true;
  app.forecastService.state.shuttingDown = true;
  const deadline = Date.now() + graceMs;
  const drained = await tracker.drain(deadline);
  const closed = await settlesWithin(app.close(), Math.max(1000, deadline - Date.now()));
  process.exit(drained && closed ? 0 : 1);
}

if (cluster.isWorker) {
  // The primary runs the stop (drain delay, then its workers): a SIGTERM or Ctrl-C sent to the whole
  // process group must not cut it short here. Should the primary die, node:cluster exits this worker
  // when the IPC channel closes.
  process.on('SIGTERM', () => undefined);
  process.on('SIGINT', () => undefined);
  process.on('message', (msg: ClusterMessage, handle?: unknown) => {
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'forecast:start':
        runWorker(msg).catch((err: Error) => {
          // The primary logs it, with what it does next.
          const code = err instanceof ForecastError ? err.code : (err as NodeJS.ErrnoException).code;
          if (process.connected) process.send!({ type: 'forecast:failed', message: err.message, code } satisfies ClusterMessage, undefined, undefined, () => process.exit(1));
          else process.exit(1);
        });
        break;
      case 'forecast:conn':
        accept(msg.id, handle as Socket | undefined);
        break;
      case 'forecast:drain':
        draining = true;
        if (app) app.forecastService.state.shuttingDown = true;
        break;
      case 'forecast:stop':
        stop(msg.graceMs);
        break;
      case 'forecast:reload':
        if (!app) break;
        app.forecastService.reloadLocal().then(
          (report) => send({ type: 'forecast:reload-done', id: msg.id, report }),
          (err: Error) => send({ type: 'forecast:reload-done', id: msg.id, error: err.message }),
        );
        break;
      case 'forecast:metrics-res':
      case 'forecast:reload-all-done': {
        const cb = waiting.get(msg.id);
        if (cb) {
          waiting.delete(msg.id);
          cb(msg);
        }
        break;
      }
    }
  });
  send({ type: 'forecast:hello' });
}
