import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { ServerOptions } from '../../../src/serve/server.js';

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  url: string;
  output(): string;
  /**
   * Sends `signal` (default SIGTERM) and waits for the exit; resolves with the exit code. A process
   * still running after `timeoutMs` is killed and the promise rejects (a hung shutdown is a failure,
   * never a hung test run).
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

const MAIN = resolve(import.meta.dirname, 'server-main.ts');

/** Starts startServer(options) in a child process (tsx) and waits for it to listen. */
export async function spawnServer(options: ServerOptions, timeoutMs = 60_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, JSON.stringify(options)], {
    cwd: resolve(import.meta.dirname, '../../..'),
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const port = await new Promise<number>((resolveReady, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start in ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const check = () => {
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolveReady(Number(m[1]));
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`server exited (${code}) before ready:\n${out}`));
    });
  });
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    stop: async (signal = 'SIGTERM', timeoutMs = 20_000) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`server did not exit within ${timeoutMs} ms of ${signal}:\n${out}`));
        }, timeoutMs);
      });
      return Promise.race([exited, timeout]).finally(() => clearTimeout(timer));
    },
  };
}
