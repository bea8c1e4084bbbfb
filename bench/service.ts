/**
 * `forecast serve` in a new process, as an operator starts it (bench/build.ts chooses
 * `node dist/cli/index.js`, tsx, or a compiled scratch copy), timed from the spawn: to the
 * "listening" line, and to the first forecast answered. Loopback only; every process is stopped by
 * the bench (SIGTERM, then SIGKILL after a grace) and killed at exit whatever happened.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import type { CliRunner } from './build.js';
import { ROOT } from './build.js';

export const BENCH_KEY = 'bench-key-0123456789abcdef';
export const JSON_HEADERS = { 'x-api-key': BENCH_KEY, 'content-type': 'application/json' };

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

export interface ServiceProcess {
  child: ChildProcess;
  pid: number;
  url: string;
  /** ms from spawn to the "listening on" line. */
  listeningMs: number;
  /** ms from spawn to the first forecast's answer (when `firstRequest` was given). */
  firstAnswerMs: number;
  firstStatus: number;
  output(): string;
  stop(): Promise<number | null>;
}

export interface StartOptions {
  runner: CliRunner;
  /** `serve` arguments: a bundle folder, or `--models DIR`. */
  serveArgs: string[];
  sqlitePath: string;
  workers?: number;
  /** node options before the script (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  /** Sent as soon as the service listens; its answer ends the cold start. */
  firstRequest?: { path: string; body: string };
  timeoutMs?: number;
  env?: Record<string, string>;
}

/** One request on a fresh connection; resolves with the status once the body has arrived. */
export function post(url: string, path: string, body: string, headers: Record<string, string> = JSON_HEADERS, timeoutMs = 30_000): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, method: 'POST', path, headers: { ...headers, 'content-length': Buffer.byteLength(body), connection: 'close' }, timeout: timeoutMs },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`POST ${path} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Starts `forecast serve` and waits for it to listen (and answer `firstRequest`). */
export async function startService(o: StartOptions): Promise<ServiceProcess> {
  const timeoutMs = o.timeoutMs ?? 180_000;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    API_KEYS: BENCH_KEY,
    HISTORY_DB: o.sqlitePath,
    WEB_CONCURRENCY: String(o.workers ?? 1),
    PORT: '0',
    HOST: '127.0.0.1',
    // Request logs off (info logs two lines per request): the figures are the service's, not pino's.
    LOG_LEVEL: 'warn',
    ...o.env,
  };
  const t0 = performance.now();
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), ...o.runner.args, 'serve', ...o.serveArgs], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let out = '';
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`forecast serve did not listen within ${timeoutMs} ms:\n${out.slice(-2000)}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`forecast serve exited (${code}) before listening:\n${out.slice(-2000)}`));
    });
  });
  const listeningMs = performance.now() - t0;
  let firstAnswerMs = Number.NaN;
  let firstStatus = 0;
  if (o.firstRequest) {
    const r = await post(url, o.firstRequest.path, o.firstRequest.body);
    firstAnswerMs = performance.now() - t0;
    firstStatus = r.status;
    if (r.status !== 200) out += `\nfirst request answered ${r.status}: ${r.body.slice(0, 500)}`;
  }
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<null>((resolve) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 30_000);
    });
    return Promise.race([exited, grace]).finally(() => clearTimeout(timer));
  };
  return { child, pid: child.pid!, url, listeningMs, firstAnswerMs, firstStatus, output: () => out, stop };
}

/** Live child processes of `pid` whose command line matches `re` (cluster workers), from /proc. */
export function childProcesses(pid: number, re: RegExp): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) !== pid || rest[0] === 'Z') continue;
      if (!re.test(readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' '))) continue;
      out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
