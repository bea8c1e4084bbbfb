import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ServerOptions } from '../../../src/serve/server.js';

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  url: string;
  output(): string;
  /** Resolves once the output matches `re` (rejects after `timeoutMs`, or if the process exits first). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /**
   * Sends `signal` (default SIGTERM) and waits for the exit; resolves with the exit code. A process
   * still running after `timeoutMs` is killed and the promise rejects (a hung shutdown is a failure,
   * never a hung test run).
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
}

export interface LaunchedServer extends Omit<ServerProcess, 'port' | 'url'> {
  /** Resolves with the port once `READY <port>` is printed. */
  ready: Promise<number>;
}

export const REPO = resolve(import.meta.dirname, '../../..');
const MAIN = resolve(import.meta.dirname, 'server-main.ts');

/** Every process a test file started; SIGKILLed when the test process exits, whatever happened. */
const spawned = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of spawned) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Spawns a command with output captured, registered for the kill on exit. */
export function spawnTracked(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Omit<LaunchedServer, 'ready'> {
  const child = spawn(command, args, {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '', ...env },
  });
  spawned.add(child);
  let out = '';
  const watchers = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of watchers) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((r) =>
    child.once('exit', (code) => {
      spawned.delete(child);
      r(code);
    }),
  );
  const waitFor = (re: RegExp, timeoutMs = 60_000) =>
    new Promise<RegExpExecArray>((resolveMatch, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        watchers.delete(check);
        clearTimeout(timer);
      };
      const check = () => {
        const m = re.exec(out);
        if (m) {
          done();
          resolveMatch(m);
        }
      };
      timer = setTimeout(() => {
        done();
        reject(new Error(`no ${re} in the output within ${timeoutMs} ms:\n${out}`));
      }, timeoutMs);
      watchers.add(check);
      void exited.then((code) => {
        if (!watchers.has(check)) return;
        check();
        if (!watchers.has(check)) return;
        done();
        reject(new Error(`process exited (${code}) before ${re}:\n${out}`));
      });
      check();
    });
  return {
    child,
    output: () => out,
    waitFor,
    exited,
    stop: async (signal = 'SIGTERM', timeoutMs = 20_000) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`process did not exit within ${timeoutMs} ms of ${signal}:\n${out}`));
        }, timeoutMs);
      });
      return Promise.race([exited, timeout]).finally(() => clearTimeout(timer));
    },
  };
}

/** Starts startServer(options) in a child process (tsx), without waiting for it to serve. */
export function launchServer(options: ServerOptions, timeoutMs = 60_000): LaunchedServer {
  const p = spawnTracked(process.execPath, ['--import', 'tsx', MAIN, JSON.stringify(options)]);
  const ready = p.waitFor(/READY (\d+)/, timeoutMs).then(
    (m) => Number(m[1]),
    (err: Error) => {
      p.child.kill('SIGKILL');
      throw new Error(`server did not start: ${err.message}`);
    },
  );
  // A test that never awaits `ready` must not see an unhandled rejection.
  ready.catch(() => undefined);
  return { ...p, ready };
}

/** Starts startServer(options) in a child process (tsx) and waits for it to listen. */
export async function spawnServer(options: ServerOptions, timeoutMs = 60_000): Promise<ServerProcess> {
  const p = launchServer(options, timeoutMs);
  const port = await p.ready;
  return { ...p, port, url: `http://127.0.0.1:${port}` };
}

/** Whether a process exists (and is not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * The live (non-zombie) children of `pid`, read from /proc (Linux); with `command`, only those whose
 * command line matches (tsx gives a process an esbuild child of its own).
 */
export function childPids(pid: number, command?: RegExp): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) !== pid || rest[0] === 'Z') continue;
      if (command && !command.test(readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' '))) continue;
      out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The cluster workers of a primary. */
export const WORKER_COMMAND = /serve\/worker\.(ts|js)/;

/** `pid` and all its live descendants. */
export function processTree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...childPids(all[i]));
  return all.filter(alive);
}

/** Polls `check` until it returns a value other than undefined/false; rejects after `timeoutMs`. */
export async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
