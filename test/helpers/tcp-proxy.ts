/**
 * A TCP proxy a test owns, between the code under test and a real server (PostgreSQL on
 * 127.0.0.1:5432 by default), to stage network faults on demand:
 *
 * - `forward`:   bytes pass both ways (the normal case, and the way back after any fault);
 * - `refuse`:    the listener is closed and live connections are cut, so connects get ECONNREFUSED
 *                (a database that is down); `forward` listens again on the same port;
 * - `blackhole`: connections are accepted and kept open but nothing passes either way, FIN included
 *                (a partition: the peer neither answers nor hangs up);
 * - `kill()`:    destroys every live connection, mode unchanged (a server restart, a reset);
 * - `stall()`:   black-holes the live connections only, new ones are forwarded (one connection's
 *                path lost, e.g. a NAT or load-balancer entry dropped: the pool must not keep it).
 *
 * `spawnTcpProxy` runs the same proxy in a child process, which a test can SIGSTOP (the kernel still
 * accepts connections and buffers bytes that nobody reads: a black hole made by the OS) and SIGCONT.
 * The child dies with its parent (parent-death SIGKILL where `setpriv` exists, IPC disconnect
 * otherwise) and every spawned child is SIGKILLed when the test process exits, stopped or not.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { resolve } from 'node:path';

export type ProxyMode = 'forward' | 'refuse' | 'blackhole';

export interface ProxyOptions {
  /** Where to forward (default 127.0.0.1:5432). */
  targetHost?: string;
  targetPort?: number;
  /** Listening port on 127.0.0.1 (default 0: any free port). */
  port?: number;
}

/** What both the in-process and the child-process proxy offer. */
export interface TcpProxy {
  readonly host: '127.0.0.1';
  readonly port: number;
  forward(): Promise<void>;
  refuse(): Promise<void>;
  blackhole(): Promise<void>;
  /** Destroys every live connection; the mode stays. */
  kill(): Promise<void>;
  /** Nothing passes on the live connections any more (until `forward`); new ones are forwarded. */
  stall(): Promise<void>;
  /** Connections open through the proxy now. */
  connections(): Promise<number>;
  close(): Promise<void>;
  /** `base` (a URL) with its host and port replaced by the proxy's. */
  url(base: string): string;
}

export interface LocalTcpProxy extends TcpProxy {
  readonly mode: ProxyMode;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket | null;
}

function withHostPort(base: string, port: number): string {
  const u = new URL(base);
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
}

/** Starts a proxy in this process, listening on 127.0.0.1, in `forward` mode. */
export async function startTcpProxy(options: ProxyOptions = {}): Promise<LocalTcpProxy> {
  const targetHost = options.targetHost ?? '127.0.0.1';
  const targetPort = options.targetPort ?? 5432;
  const pairs = new Set<Pair>();
  let mode: ProxyMode = 'forward';
  let listening = false;

  const connectUpstream = (pair: Pair): void => {
    const { client } = pair;
    const up = net.connect({ host: targetHost, port: targetPort });
    pair.upstream = up;
    up.on('error', () => client.destroy());
    up.on('close', () => client.destroy());
    // Plain 'data' handlers rather than pipe(): pause() must stop a direction for good, and pipe()
    // would resume its source on the next drain.
    client.on('data', (d: Buffer) => up.write(d));
    up.on('data', (d: Buffer) => client.write(d));
    client.on('end', () => up.end());
    up.on('end', () => client.end());
    client.resume();
  };

  // pauseOnConnect: a connection accepted while black-holed must not even have its FIN read.
  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    const pair: Pair = { client, upstream: null };
    pairs.add(pair);
    client.on('error', () => undefined);
    client.on('close', () => {
      pairs.delete(pair);
      pair.upstream?.destroy();
    });
    if (mode === 'forward') connectUpstream(pair);
  });
  server.on('error', () => undefined);

  const listen = (port: number) =>
    new Promise<number>((resolveListen, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
        server.off('error', onError);
        listening = true;
        resolveListen((server.address() as net.AddressInfo).port);
      });
    });
  const port = await listen(options.port ?? 0);

  const killAll = () => {
    for (const p of pairs) {
      p.client.destroy();
      p.upstream?.destroy();
    }
  };
  const stopListening = () =>
    new Promise<void>((resolveClose) => {
      if (!listening) return resolveClose();
      listening = false;
      // The handle closes at once (new connects are refused from here); the callback waits for live connections.
      server.close(() => resolveClose());
      killAll();
    });

  const proxy: LocalTcpProxy = {
    host: '127.0.0.1',
    port,
    get mode() {
      return mode;
    },
    async forward() {
      if (!listening) await listen(port);
      mode = 'forward';
      for (const p of pairs) {
        if (p.upstream === null) connectUpstream(p);
        else {
          p.client.resume();
          p.upstream.resume();
        }
      }
    },
    async refuse() {
      mode = 'refuse';
      await stopListening();
    },
    async blackhole() {
      if (!listening) await listen(port);
      mode = 'blackhole';
      for (const p of pairs) {
        p.client.pause();
        p.upstream?.pause();
      }
    },
    async kill() {
      killAll();
    },
    async stall() {
      for (const p of pairs) {
        p.client.pause();
        p.upstream?.pause();
      }
    },
    async connections() {
      return pairs.size;
    },
    async close() {
      mode = 'refuse';
      await stopListening();
    },
    url: (base) => withHostPort(base, port),
  };
  return proxy;
}

export interface ProcessTcpProxy extends TcpProxy {
  readonly pid: number;
  /** SIGSTOP: the proxy freezes, connections stay open, nothing passes. */
  stop(): void;
  /** SIGCONT: it carries on from where it stopped. */
  cont(): void;
}

const CHILD_MAIN = resolve(import.meta.dirname, 'tcp-proxy-main.ts');
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function hasSetpriv(): boolean {
  if (!existsSync('/usr/bin/setpriv') && !existsSync('/bin/setpriv')) return false;
  return spawnSync('setpriv', ['--pdeathsig', 'KILL', 'true'], { stdio: 'ignore' }).status === 0;
}

/** Starts a proxy in a child process (tsx) and waits for it to listen. */
export async function spawnTcpProxy(options: ProxyOptions = {}, timeoutMs = 30_000): Promise<ProcessTcpProxy> {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // SIGKILL reaches a stopped process too: no proxy outlives the test process, even mid-SIGSTOP.
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  const nodeArgs = ['--import', 'tsx', CHILD_MAIN, JSON.stringify(options)];
  // setpriv execs node in place (same pid) with a parent-death SIGKILL, which also covers the test
  // process being SIGKILLed while the proxy is stopped and cannot read an IPC disconnect.
  const [cmd, args] = hasSetpriv() ? ['setpriv', ['--pdeathsig', 'KILL', process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const child = spawn(cmd, args, {
    cwd: resolve(import.meta.dirname, '../..'),
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  live.add(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  void exited.then(() => live.delete(child));

  let nextId = 1;
  const waiting = new Map<number, (m: { connections: number; error?: string }) => void>();
  child.on('message', (m: { id?: number; connections: number; error?: string }) => {
    if (m.id !== undefined) waiting.get(m.id)?.(m);
  });
  const port = await new Promise<number>((resolveReady, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`proxy child did not start in ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.once('message', (m: { listening?: number }) => {
      clearTimeout(t);
      if (typeof m.listening === 'number') resolveReady(m.listening);
      else reject(new Error(`unexpected first message from proxy child: ${JSON.stringify(m)}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(t);
      reject(new Error(`proxy child exited (${code ?? signal}) before listening:\n${stderr}`));
    });
  });

  const command = (op: 'forward' | 'refuse' | 'blackhole' | 'kill' | 'stall' | 'connections', ms = 10_000) =>
    new Promise<number>((resolveCmd, reject) => {
      const id = nextId++;
      const t = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`proxy child did not answer '${op}' within ${ms} ms (stopped?)`));
      }, ms);
      waiting.set(id, (m) => {
        clearTimeout(t);
        waiting.delete(id);
        if (m.error) reject(new Error(m.error));
        else resolveCmd(m.connections);
      });
      child.send({ id, op });
    });

  return {
    host: '127.0.0.1',
    port,
    pid: child.pid!,
    forward: async () => void (await command('forward')),
    refuse: async () => void (await command('refuse')),
    blackhole: async () => void (await command('blackhole')),
    kill: async () => void (await command('kill')),
    stall: async () => void (await command('stall')),
    connections: () => command('connections'),
    stop: () => void child.kill('SIGSTOP'),
    cont: () => void child.kill('SIGCONT'),
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    url: (base) => withHostPort(base, port),
  };
}
