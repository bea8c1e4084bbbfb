/**
 * `startServer`: the listening service. One process, or a node:cluster primary supervising
 * `workers` processes, each with its own app, history mirror and feature state over the same store.
 *
 * Under node:cluster the primary owns the listening socket and hands each accepted connection to a
 * worker itself (`ConnectionRouter`), instead of letting workers listen through node:cluster. Node's
 * own round robin passes a connection to a worker and only closes its copy when the worker
 * acknowledges it: a worker killed with a connection in flight leaves that connection open in the
 * primary, unanswered, until the client gives up. Owning the socket, the primary keeps its copy until
 * the worker acknowledges, so a connection a dying worker never took is given to another worker; it
 * also keeps the port open while every worker restarts (connections wait for one), and stops
 * accepting at a moment it chooses, without resetting connections queued in the kernel.
 *
 * The primary restarts each worker slot with exponential backoff, forever while it serves, whether the
 * worker crashed or failed to start (a database down, a bundle being replaced); it gives up, exiting
 * non-zero, only on what cannot heal: the port cannot be bound, or the configuration is refused.
 *
 * Stopping (SIGTERM / SIGINT, or `close()`), in both modes: readiness turns 503 and answers carry
 * `connection: close`; the listener keeps accepting for `drainDelayMs` (load balancers without a
 * preStop hook stop routing here meanwhile); then it stops accepting, every connection already
 * accepted is answered within `shutdownTimeoutMs`, stores close and the process exits 0.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import net, { type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { AggregatorRegistry, PrometheusContentType } from 'prom-client';
import { ConfigError, serviceConfig, type ConfigInput, type ServiceConfig } from '../config.js';
import { ForecastError } from '../errors.js';
import { openHistoryStore } from '../store/index.js';
import type { ReloadReport } from './registry.js';

export type ServerOptions = ConfigInput & {
  /** false: no logs; or pino options. */
  logger?: boolean | Record<string, unknown>;
  /** Install SIGTERM / SIGINT handlers that shut down gracefully and exit (default true). */
  handleSignals?: boolean;
};

export interface RunningServer {
  url: string;
  port: number;
  host: string;
  workers: number;
  /** The key generated for a demo start (no bundle named, no key configured). */
  generatedApiKey: string | null;
  /** The app, when serving in this process (workers = 1). */
  app: FastifyInstance | null;
  /** Graceful stop: drain delay, then in-flight requests finish, stores close, workers exit. */
  close(): Promise<void>;
}

/** Messages between the primary and its workers. */
export type ClusterMessage =
  | { type: 'forecast:hello' }
  | { type: 'forecast:start'; config: ServiceConfig; logger?: boolean | Record<string, unknown> }
  | { type: 'forecast:ready' }
  | { type: 'forecast:failed'; message: string; code?: string }
  /** Sent with a connection's socket; answered by `conn-ack`. */
  | { type: 'forecast:conn'; id: number }
  | { type: 'forecast:conn-ack'; id: number; accepted: boolean }
  | { type: 'forecast:drain' }
  | { type: 'forecast:stop'; graceMs: number }
  | { type: 'forecast:metrics-req'; id: number }
  | { type: 'forecast:metrics-res'; id: number; contentType: string; body: string; error?: string }
  | { type: 'forecast:reload-all'; id: number }
  | { type: 'forecast:reload'; id: number }
  | { type: 'forecast:reload-done'; id: number; report?: ReloadReport; error?: string }
  | { type: 'forecast:reload-all-done'; id: number; report?: ReloadReport; error?: string };

/** First restart delay of a worker slot; doubled after each failure in a row. */
export const RESTART_BASE_MS = 100;
/** Longest delay between two restarts of a slot. */
export const RESTART_MAX_MS = 10_000;
/** A worker that served this long before exiting restarts its slot's backoff from the start. */
export const STABLE_AFTER_MS = 30_000;
/** A worker not serving this long after its fork is killed (and restarted like a failed start). */
export const WORKER_START_TIMEOUT_MS = 120_000;
/**
 * While stopping, a connection that has sent no request this long after the stop began is taken
 * for an idle pre-opened one and closed, rather than holding the stop for the whole grace period.
 */
export const FIRST_REQUEST_GRACE_MS = 2000;
/** Connections a worker may have been sent but not yet acknowledged; the rest wait in the primary. */
const UNACKED_PER_WORKER = 2;

/** Worker exits before loading, in a row and before anything served, that end the start (see spawn). */
const UNLOADABLE_WORKERS = 3;

export function restartDelay(failuresInARow: number): number {
  return Math.min(RESTART_BASE_MS * 2 ** Math.min(failuresInARow, 20), RESTART_MAX_MS);
}

/** A start failure that a restart cannot heal: the configuration is refused. */
function unhealable(code: string | undefined): boolean {
  return code === 'invalid_config';
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** Whether `work` settled within `ms`: a store that hangs on close must not hang the exit. */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), Math.max(0, ms))));
  try {
    return await Promise.race([work.then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** JSON log lines of the process that has no app (the primary), in pino's shape. */
type Log = (level: 'info' | 'warn' | 'error' | 'fatal', msg: string, extra?: Record<string, unknown>) => void;
const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

function primaryLog(config: Readonly<ServiceConfig>, logger: ServerOptions['logger']): Log {
  if (logger === false) return () => undefined;
  const wanted = typeof logger === 'object' && typeof logger.level === 'string' ? logger.level : config.logLevel;
  const min = LEVELS[wanted] ?? 30;
  return (level, msg, extra) => {
    if (LEVELS[level] < min) return;
    process.stderr.write(`${JSON.stringify({ level: LEVELS[level], time: Date.now(), pid: process.pid, ...extra, msg })}\n`);
  };
}

/**
 * V8's young generation grows to 16 MiB per semi-space under load by default, which a worker
 * answering small requests fills with short-lived garbage and keeps: 4 MiB cuts a worker's RSS by
 * about a quarter (115 -> 87 MiB at 8 connections, one 10,000-bar model) for a few per cent of
 * throughput (`npm run bench scale`). A `--max-semi-space-size` of the operator's (on the command
 * line or in NODE_OPTIONS) wins.
 */
export const WORKER_SEMI_SPACE_MB = 4;

export function workerExecArgv(base: readonly string[], nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const given = [...base, nodeOptions].some((a) => a.includes('--max-semi-space-size'));
  return given ? [...base] : [...base, `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`];
}

/** No bundle named: train (once) and serve the demo bundle, with a generated key if none is set. */
async function prepareDemo(config: Readonly<ServiceConfig>): Promise<{ config: Readonly<ServiceConfig>; key: string | null }> {
  if (config.bundleDir || config.modelsDir) return { config, key: null };
  // Training code is loaded only for the demo start (a bundle-serving process never needs it).
  const { ensureDemoBundle } = await import('../training/demo.js');
  await ensureDemoBundle(config.demoDir);
  let key: string | null = null;
  let apiKeys = config.apiKeys;
  if (apiKeys.length === 0 && !config.insecureDev) {
    key = `demo-${randomBytes(24).toString('base64url')}`;
    apiKeys = [key];
  }
  return { config: serviceConfig({ ...config, bundleDir: config.demoDir, apiKeys }), key };
}

function printDemoKey(key: string, port: number): void {
  process.stdout.write(
    `\nDemo start: serving the demo bundle. API key generated for this run (set API_KEYS to choose your own):\n\n  ${key}\n\n` +
      `  curl -H 'x-api-key: ${key}' http://127.0.0.1:${port}/models\n\n`,
  );
}

/** A listen failure, as one clear line: a port in use or not permitted will not free itself. */
function listenError(err: NodeJS.ErrnoException, host: string, port: number): ForecastError {
  const why: Record<string, string> = {
    EADDRINUSE: 'the address is already in use',
    EACCES: 'permission denied (ports below 1024 need privileges)',
    EADDRNOTAVAIL: 'the address is not one of this machine',
  };
  return new ForecastError(`cannot listen on ${host}:${port}: ${why[err.code ?? ''] ?? err.message} (${err.code ?? 'error'})`, 500, 'listen_failed');
}

function onSignals(handler: (signal: string) => void): () => void {
  const h = (s: NodeJS.Signals) => handler(s);
  process.on('SIGTERM', h);
  process.on('SIGINT', h);
  return () => {
    process.off('SIGTERM', h);
    process.off('SIGINT', h);
  };
}

/**
 * Lets the poll phase accept what the kernel has already accepted: closing a listening socket resets
 * the connections still in its backlog, and libuv accepts them all (until EAGAIN) once per turn.
 */
async function acceptPending(server: net.Server): Promise<void> {
  let accepted = 0;
  const count = () => accepted++;
  server.on('connection', count);
  try {
    let seen = -1;
    for (let turn = 0; turn < 50 && accepted !== seen; turn++) {
      seen = accepted;
      await new Promise<void>((r) => setImmediate(r));
    }
  } finally {
    server.off('connection', count);
  }
}

/**
 * An HTTP server's connections and whether each is inside a request, so that a stop answers what
 * was accepted instead of cutting it: Node's `server.close()` closes every connection that is not
 * inside a request, including one whose request is still on its way.
 */
export class ConnectionTracker {
  private readonly sockets = new Map<Socket, { requests: number; active: number }>();

  constructor(server: HttpServer) {
    server.on('connection', (socket: Socket) => {
      this.sockets.set(socket, { requests: 0, active: 0 });
      socket.once('close', () => this.sockets.delete(socket));
    });
    server.on('request', (req, res) => {
      const s = this.sockets.get(req.socket);
      if (!s) return;
      s.requests++;
      s.active++;
      res.once('close', () => s.active--);
    });
  }

  get size(): number {
    return this.sockets.size;
  }

  /**
   * Resolves once every connection has closed. Answers sent while shutting down carry
   * `connection: close`, so busy connections close after their answer; kept-alive idle ones are
   * closed now; one that has sent nothing gets {@link FIRST_REQUEST_GRACE_MS} for its request. At
   * `deadline` whatever is left is destroyed, and the result is false.
   */
  async drain(deadline: number): Promise<boolean> {
    const started = Date.now();
    while (this.sockets.size > 0) {
      const now = Date.now();
      if (now >= deadline) {
        for (const socket of this.sockets.keys()) socket.destroy();
        return false;
      }
      for (const [socket, s] of this.sockets) {
        if (s.active > 0 || socket.writableLength > 0) continue;
        if (s.requests > 0 || now - started >= FIRST_REQUEST_GRACE_MS) socket.destroy();
      }
      await sleep(Math.min(20, deadline - now));
    }
    return true;
  }
}

export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const { logger, handleSignals, ...input } = options;
  // Validated first, so a bad configuration is refused before anything is trained or opened.
  const given = serviceConfig(input);
  if (given.apiKeys.length === 0 && !given.insecureDev && (given.bundleDir || given.modelsDir))
    throw new ConfigError('no API key configured: set API_KEYS or API_KEYS_FILE (or use --insecure-dev for local development only)');
  const { config, key } = await prepareDemo(given);
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  if (config.workers <= 1) return startSingle(config, key, shownHost, logger, handleSignals !== false);
  return startCluster(config, key, shownHost, logger, handleSignals !== false);
}

async function startSingle(
  config: Readonly<ServiceConfig>,
  key: string | null,
  shownHost: string,
  logger: ServerOptions['logger'],
  handleSignals: boolean,
): Promise<RunningServer> {
  // Loaded here: a cluster primary serves no request and never needs fastify (~150 ms, ~15 MiB).
  const { buildApp } = await import('./app.js');
  const app = await buildApp({ ...config, logger });
  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw listenError(err as NodeJS.ErrnoException, config.host, config.port);
  }
  const tracker = new ConnectionTracker(app.server);
  const addr = app.server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : config.port;
  if (key) printDemoKey(key, bound);

  const stop = async (): Promise<boolean> => {
    app.forecastService.state.shuttingDown = true;
    await sleep(config.drainDelayMs);
    await acceptPending(app.server);
    // The listening socket only: http.Server#close would also close connections whose request has
    // not arrived yet.
    net.Server.prototype.close.call(app.server);
    const deadline = Date.now() + config.shutdownTimeoutMs;
    const drained = await tracker.drain(deadline);
    const closed = await settlesWithin(app.close(), Math.max(1000, deadline - Date.now()));
    return drained && closed;
  };
  let stopping: Promise<boolean> | null = null;
  let off = () => undefined as void;
  const close = () => (stopping ??= stop().finally(() => off()));
  if (handleSignals) {
    off = onSignals((signal) => {
      if (stopping) return;
      app.log.info({ signal, drainDelayMs: config.drainDelayMs }, 'shutting down');
      close().then(
        (clean) => {
          if (!clean) app.log.warn({ shutdownTimeoutMs: config.shutdownTimeoutMs }, 'connections still open at the end of the grace period were closed');
          process.exit(clean ? 0 : 1);
        },
        (err) => {
          app.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
  return { url: `http://${shownHost}:${bound}`, port: bound, host: config.host, workers: 1, generatedApiKey: key, app, close: () => close().then(() => undefined) };
}

/**
 * The primary's side of connection passing. A connection waits here until a worker that serves has
 * room, is sent with the socket kept open here, and is closed here only once the worker acknowledges
 * it; a worker that exits first never read it, so it goes to another worker.
 */
interface Waiting {
  socket: Socket;
  /** When the primary accepted it: the wait is bounded from there, however often it is handed back. */
  since: number;
}

class ConnectionRouter {
  private readonly queue: Waiting[] = [];
  private readonly workers = new Map<Worker, { unacked: Map<number, Waiting> }>();
  private order: Worker[] = [];
  private turn = 0;
  private nextId = 1;
  private sweeper: NodeJS.Timeout | null = null;

  /** `maxWaitMs`: a connection no worker took within this is closed (the headers timeout: nobody read them). */
  constructor(private readonly maxWaitMs: number) {}

  add(socket: Socket): void {
    // The client may reset while it waits here; that is its business, not the primary's crash.
    socket.on('error', () => undefined);
    // Sending a socket that names its server makes node record, on that server, every process the
    // socket goes to (to count connections across processes), for the primary's lifetime: one entry
    // per worker ever started, restarts included. Nothing here uses that count.
    (socket as Socket & { server: unknown }).server = null;
    this.queue.push({ socket, since: Date.now() });
    this.dispatch();
  }

  serve(worker: Worker): void {
    if (this.workers.has(worker)) return;
    this.workers.set(worker, { unacked: new Map() });
    this.order = [...this.workers.keys()];
    this.dispatch();
  }

  /** The worker takes no more connections; the ones it had not acknowledged go back to the queue. */
  withdraw(worker: Worker): void {
    const w = this.workers.get(worker);
    if (!w) return;
    this.workers.delete(worker);
    this.order = [...this.workers.keys()];
    this.queue.unshift(...[...w.unacked.values()].filter((c) => !c.socket.destroyed));
    this.dispatch();
  }

  ack(worker: Worker, id: number, accepted: boolean): void {
    const w = this.workers.get(worker);
    const c = w?.unacked.get(id);
    if (!w || !c) return;
    w.unacked.delete(id);
    // The worker holds its own descriptor: closing this copy leaves the connection open.
    if (accepted) c.socket.destroy();
    else this.queue.unshift(c);
    this.dispatch();
  }

  /** Nothing waiting and nothing unacknowledged. */
  get settled(): boolean {
    if (this.queue.length > 0) return false;
    for (const w of this.workers.values()) if (w.unacked.size > 0) return false;
    return true;
  }

  get serving(): number {
    return this.workers.size;
  }

  closeQueued(): void {
    for (const { socket } of this.queue.splice(0)) socket.destroy();
    this.stopSweeper();
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const worker = this.pick();
      if (!worker) break;
      const c = this.queue.shift()!;
      if (c.socket.destroyed) continue;
      const id = this.nextId++;
      const w = this.workers.get(worker)!;
      w.unacked.set(id, c);
      try {
        worker.send({ type: 'forecast:conn', id } satisfies ClusterMessage, c.socket, { keepOpen: true }, (err) => {
          if (err && w.unacked.delete(id)) {
            this.queue.unshift(c);
            setImmediate(() => this.dispatch());
          }
        });
      } catch {
        w.unacked.delete(id);
        this.queue.unshift(c);
        break;
      }
    }
    if (this.queue.length > 0) this.startSweeper();
    else this.stopSweeper();
  }

  private pick(): Worker | null {
    for (let k = 0; k < this.order.length; k++) {
      const worker = this.order[(this.turn + k) % this.order.length];
      const w = this.workers.get(worker)!;
      if (w.unacked.size < UNACKED_PER_WORKER && worker.isConnected()) {
        this.turn = (this.turn + k + 1) % this.order.length;
        return worker;
      }
    }
    return null;
  }

  private startSweeper(): void {
    this.sweeper ??= setInterval(() => {
      const cutoff = Date.now() - this.maxWaitMs;
      for (let i = this.queue.length - 1; i >= 0; i--) {
        if (this.queue[i].since <= cutoff || this.queue[i].socket.destroyed) this.queue.splice(i, 1)[0].socket.destroy();
      }
      if (this.queue.length === 0) this.stopSweeper();
    }, 250);
  }

  private stopSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }
}

interface Slot {
  index: number;
  worker: Worker | null;
  /** Exits in a row without having served for STABLE_AFTER_MS. */
  failures: number;
  servedOnce: boolean;
  timer: NodeJS.Timeout | null;
}

async function startCluster(
  config: Readonly<ServiceConfig>,
  key: string | null,
  shownHost: string,
  logger: ServerOptions['logger'],
  handleSignals: boolean,
): Promise<RunningServer> {
  if (!cluster.isPrimary) throw new Error('startServer with several workers must run in the primary process');
  const log = primaryLog(config, logger);

  const listener = net.createServer({ pauseOnConnect: true, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    const refused = (err: Error) => reject(listenError(err as NodeJS.ErrnoException, config.host, config.port));
    listener.once('error', refused);
    listener.listen({ port: config.port, host: config.host }, () => {
      listener.off('error', refused);
      resolve();
    });
  });
  // After listening, an error is one failed accept (EMFILE...): the next connection may succeed.
  listener.on('error', (err) => log('error', `accept failed: ${err.message}`));
  const addr = listener.address();
  const boundPort = typeof addr === 'object' && addr ? addr.port : config.port;
  const router = new ConnectionRouter(config.headersTimeoutMs);
  listener.on('connection', (socket) => router.add(socket));

  const here = fileURLToPath(import.meta.url);
  const ts = here.endsWith('.ts');
  cluster.setupPrimary({
    exec: join(dirname(here), ts ? 'worker.ts' : 'worker.js'),
    // Running from source: workers load TypeScript through tsx, like the primary. Resolved from this
    // file: a bare `tsx` is looked up from the working folder, and a service started from any other
    // folder than the clone's would have workers that cannot load.
    execArgv: workerExecArgv(ts ? ['--import', import.meta.resolve('tsx')] : process.execArgv),
    args: [],
  });
  // prom-client is loaded by the first metrics request: a primary starts sooner without it.
  let aggregator: Promise<AggregatorRegistry<PrometheusContentType>> | null = null;
  const metricsAggregator = () => (aggregator ??= import('prom-client').then((m) => new m.default.AggregatorRegistry()));
  const serving = new Set<Worker>();
  const reloadWaits = new Map<number, { pending: number; report?: ReloadReport; error?: string; asker: Worker; askerId: number }>();
  let nextId = 1;
  /** running, then draining (readiness 503, still accepting), then stopping (workers told to stop). */
  let phase: 'running' | 'draining' | 'stopping' = 'running';
  let closing: Promise<boolean> | null = null;
  let off = () => undefined as void;
  let wakeStartup = () => undefined as void;
  const stopped = new Promise<void>((r) => (wakeStartup = r));
  let endPause = () => undefined as void;
  /** A wait that a stop cuts short, so that it holds neither the stop nor the event loop. */
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      endPause = () => {
        clearTimeout(t);
        resolve();
      };
    });

  const onMessage = (worker: Worker, msg: ClusterMessage) => {
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'forecast:metrics-req') {
      metricsAggregator().then(async (registry) => ({ body: await registry.clusterMetrics(), contentType: registry.contentType })).then(
        ({ body, contentType }) => worker.send({ type: 'forecast:metrics-res', id: msg.id, contentType, body } satisfies ClusterMessage),
        (err: Error) => worker.send({ type: 'forecast:metrics-res', id: msg.id, contentType: 'text/plain', body: '', error: err.message } satisfies ClusterMessage),
      );
    } else if (msg.type === 'forecast:reload-all') {
      const id = nextId++;
      const targets = [...serving];
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

  const slots: Slot[] = Array.from({ length: config.workers }, (_, index) => ({ index, worker: null, failures: 0, servedOnce: false, timer: null }));
  const allServedOnce = () => slots.every((s) => s.servedOnce);
  let startup: { resolve(): void; reject(err: Error): void } = { resolve: () => undefined, reject: () => undefined };
  const started = new Promise<void>((resolve, reject) => (startup = { resolve, reject }));
  // Observed by the caller only while starting; no unhandled rejection afterwards.
  started.catch(() => undefined);

  // Workers that exited before their module even loaded, in a row, before any worker ever served.
  let unloadable = 0;
  const spawn = (slot: Slot): void => {
    const w = cluster.fork();
    slot.worker = w;
    let loaded = false;
    let servingSince: number | null = null;
    let failure: { message: string; code?: string } | null = null;
    const startTimer = setTimeout(() => {
      failure ??= { message: `not serving ${WORKER_START_TIMEOUT_MS} ms after its start` };
      w.process.kill('SIGKILL');
    }, WORKER_START_TIMEOUT_MS);
    // A send to a worker that has just died fails; its exit is handled below.
    w.on('error', () => undefined);
    w.on('message', (m: ClusterMessage) => {
      if (!m || typeof m !== 'object') return;
      if (m.type === 'forecast:hello') {
        loaded = true;
        unloadable = 0;
        // Sent once the worker's module has loaded and listens for messages.
        w.send({ type: 'forecast:start', config, logger } satisfies ClusterMessage);
      } else if (m.type === 'forecast:ready') {
        clearTimeout(startTimer);
        if (phase === 'stopping') return;
        servingSince = Date.now();
        serving.add(w);
        router.serve(w);
        if (phase === 'draining') w.send({ type: 'forecast:drain' } satisfies ClusterMessage);
        log('info', `worker ${w.process.pid} serving`, { slot: slot.index });
        if (!slot.servedOnce) {
          slot.servedOnce = true;
          if (allServedOnce()) startup.resolve();
        }
      } else if (m.type === 'forecast:failed') {
        failure = { message: m.message, code: m.code };
      } else if (m.type === 'forecast:conn-ack') {
        router.ack(w, m.id, m.accepted);
      }
    });
    w.once('exit', (code, signal) => {
      clearTimeout(startTimer);
      serving.delete(w);
      router.withdraw(w);
      if (slot.worker === w) slot.worker = null;
      for (const [id, wait] of reloadWaits) {
        if (--wait.pending === 0) {
          reloadWaits.delete(id);
          if (wait.asker !== w) wait.asker.send({ type: 'forecast:reload-all-done', id: wait.askerId, report: wait.report, error: wait.error ?? 'a worker exited during reload' } satisfies ClusterMessage);
        }
      }
      if (phase !== 'running') return;
      if (failure && unhealable(failure.code)) {
        log('fatal', `cannot serve: worker ${w.process.pid} refused the configuration: ${failure.message}`);
        const err = new ConfigError(failure.message);
        if (!allServedOnce()) startup.reject(err);
        else if (handleSignals) void close().then(() => process.exit(1));
        else void close();
        return;
      }
      // A worker whose code cannot load (a missing module, a broken install) will not load the next
      // time either: before anything has served, a few such exits in a row stop the start with one
      // line, rather than a restart loop that never serves and never says why (its error is above).
      if (!loaded && !slots.some((s) => s.servedOnce) && ++unloadable >= UNLOADABLE_WORKERS) {
        const message = `workers cannot load their code: ${unloadable} exited (${signal ?? `code ${code}`}) before loading, each with the error printed above`;
        log('fatal', `cannot serve: ${message}`);
        startup.reject(new Error(message));
        return;
      }
      const servedMs = servingSince === null ? 0 : Date.now() - servingSince;
      if (servedMs >= STABLE_AFTER_MS) slot.failures = 0;
      const delay = restartDelay(slot.failures++);
      const what =
        servingSince !== null ? `exited (${signal ?? `code ${code}`}) after serving ${servedMs} ms` : failure ? `failed to start: ${failure.message}` : `exited (${signal ?? `code ${code}`}) before serving`;
      log('error', `worker ${w.process.pid} ${what}; starting another in ${delay} ms`, { slot: slot.index, failures: slot.failures });
      slot.timer = setTimeout(() => {
        slot.timer = null;
        if (phase === 'running') spawn(slot);
      }, delay);
    });
  };

  const stop = async (): Promise<boolean> => {
    phase = 'draining';
    wakeStartup();
    endPause();
    for (const s of slots) if (s.timer) clearTimeout(s.timer);
    for (const w of serving) w.send({ type: 'forecast:drain' } satisfies ClusterMessage, undefined, undefined, () => undefined);
    await sleep(config.drainDelayMs);
    await acceptPending(listener);
    listener.close();
    const deadline = Date.now() + config.shutdownTimeoutMs;
    // Connections accepted before the close still go to workers, which answer them before stopping.
    while (!router.settled && router.serving > 0 && Date.now() < deadline) await sleep(10);
    let clean = router.settled;
    phase = 'stopping';
    for (const w of serving) router.withdraw(w);
    router.closeQueued();
    const live = slots.map((s) => s.worker).filter((w): w is Worker => w !== null && !w.isDead());
    const exits = live.map(
      (w) =>
        new Promise<boolean>((resolve) => {
          const kill = setTimeout(() => w.process.kill('SIGKILL'), Math.max(0, deadline - Date.now()) + 2000);
          w.once('exit', (code) => {
            clearTimeout(kill);
            resolve(code === 0);
          });
          w.send({ type: 'forecast:stop', graceMs: Math.max(0, deadline - Date.now()) } satisfies ClusterMessage, undefined, undefined, () => undefined);
        }),
    );
    for (const ok of await Promise.all(exits)) clean &&= ok;
    cluster.off('message', onMessage);
    off();
    return clean;
  };
  const close = () => (closing ??= stop());
  const fail = async (err: unknown): Promise<never> => {
    await close();
    throw err;
  };
  if (handleSignals) {
    off = onSignals((signal) => {
      if (closing) return;
      log('info', `${signal}: stopping`, { drainDelayMs: config.drainDelayMs, shutdownTimeoutMs: config.shutdownTimeoutMs });
      void close().then((clean) => process.exit(clean ? 0 : 1));
    });
  }

  // Create the store (schema, WAL file) once, so workers do not race to create it. A store that is
  // not reachable yet (a database starting) is waited for, as a worker that cannot start is.
  for (let attempt = 0; phase === 'running'; attempt++) {
    try {
      const store = await openHistoryStore(config);
      await store.close();
      break;
    } catch (err) {
      if (err instanceof ConfigError) return fail(err);
      const delay = restartDelay(attempt);
      log('error', `history store unavailable: ${(err as Error).message}; retrying in ${delay} ms`);
      await pause(delay);
    }
  }
  if (phase !== 'running') return fail(new Error('stopped while starting'));
  for (const slot of slots) spawn(slot);
  try {
    await Promise.race([started, stopped.then(() => Promise.reject(new Error('stopped while starting')))]);
  } catch (err) {
    return fail(err);
  }
  if (key) printDemoKey(key, boundPort);
  log('info', `${config.workers} workers listening on ${config.host}:${boundPort}`);
  return {
    url: `http://${shownHost}:${boundPort}`,
    port: boundPort,
    host: config.host,
    workers: config.workers,
    generatedApiKey: key,
    app: null,
    close: () => close().then(() => undefined),
  };
}
