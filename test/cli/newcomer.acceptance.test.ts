/**
 * Issue 10: the newcomer's steps, run as real processes from a fresh temporary folder, in the order
 * README.md gives them: synth → train → evaluate → serve → verify → predict | head → monitor → stop.
 * Every step is a `forecast` process started as `node --import tsx <repo>/src/cli/index.ts ...` with
 * the temporary folder as its working directory (tsx is named by its resolved file, since a bare
 * `tsx` resolves from the working directory, which has no node_modules).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../docs/session.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(REPO, 'src', 'cli', 'index.ts');
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const KEY = 'newcomer-test-key-0123456789abcdef';
const STEP_TIMEOUT_MS = 90_000;
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** What a newcomer's terminal has: nothing of the test's own environment (keys, DATABASE_URL). */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', ...extra };
}

/** Runs one process to its end, killed (and reported as such) after the step's time-out. */
function run(cmd: string, args: string[], cwd: string, timeoutMs = STEP_TIMEOUT_MS): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: env(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGKILL');
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString() + (timedOut ? `\n(killed after ${timeoutMs} ms)` : '');
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr });
    });
  });
}

const forecastArgs = (...args: string[]): string[] => ['--import', TSX, CLI, ...args];
const forecast = (cwd: string, ...args: string[]): Promise<Result> => run(process.execPath, forecastArgs(...args), cwd);
const shellQuote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function startsWithPng(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(PNG_SIGNATURE.length);
    readSync(fd, head, 0, head.length, 0);
    return head.equals(PNG_SIGNATURE);
  } finally {
    closeSync(fd);
  }
}

/** The metrics table's baseline rows, as train and evaluate print them. */
function expectMetricsTable(text: string): void {
  expect(text).toMatch(/^rows\s+n\s+MAE\s+MSE\s+R2\b/m);
  expect(text).toMatch(/^test \(\d{4}-\d{2}-\d{2} \.\. \d{4}-\d{2}-\d{2}\)\s+\d+\s+[\d.]+\s+[\d.e-]+\s+-?[\d.e-]+/m);
  expect(text).toMatch(/^\s+baseline: persistence \(y = 1\)\s+\d+\s+[\d.]+/m);
  expect(text).toMatch(/^\s+baseline: training mean \(y = [\d.]+\)\s+\d+\s+[\d.]+/m);
}

describe('the newcomer steps, from a fresh folder', () => {
  let work = '';
  let port = 0;
  let server: { child: ChildProcess; output: string[]; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } | null = null;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'forecast-newcomer-'));
    port = await freePort();
  });

  afterAll(async () => {
    if (server) {
      const { child, exit } = server;
      if (child.exitCode === null && child.signalCode === null) {
        killGroup(child, 'SIGTERM');
        await Promise.race([exit, new Promise((r) => setTimeout(r, 10_000))]);
      }
      killGroup(child, 'SIGKILL'); // the service's workers, if any outlived it
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('synth → train → evaluate → serve → verify → predict | head → monitor → SIGTERM', { timeout: 600_000 }, async () => {
    // 1. synthetic bars
    const synth = await forecast(work, 'synth', '--out', 'bars.csv');
    expect(synth.code, synth.stderr).toBe(0);
    const csv = readFileSync(join(work, 'bars.csv'), 'utf8').trimEnd().split('\n');
    expect(csv[0]).toBe('Date,Open,High,Low,Close,Adj Close,Volume');
    expect(csv).toHaveLength(2521); // the default 2520 bars and the header
    expect(synth.stdout + synth.stderr).toContain('2520 synthetic bars');

    // 2. train acme@1
    const train = await forecast(work, 'train', '--csv', 'bars.csv', '--out', 'models/acme/1');
    expect(train.code, train.stderr).toBe(0);
    expect(train.stdout).toContain('(acme@1)');
    expectMetricsTable(train.stdout);
    const manifest = JSON.parse(readFileSync(join(work, 'models', 'acme', '1', 'manifest.json'), 'utf8')) as Record<string, unknown>;
    expect(JSON.stringify(manifest)).toContain('acme');

    // 3. evaluate: metrics and charts, every chart listed on disk
    const evaluate = await forecast(work, 'evaluate', 'models/acme/1');
    expect(evaluate.code, evaluate.stderr).toBe(0);
    expect(evaluate.stdout).toMatch(/^acme@1: /m);
    expect(evaluate.stdout).toMatch(/evaluation forecasts reproduced from the bundle's history: (\d+) of \1, bit for bit/);
    expectMetricsTable(evaluate.stdout);
    const chartsLine = /^charts: (.+)$/m.exec(evaluate.stdout);
    expect(chartsLine, evaluate.stdout).not.toBeNull();
    const charts = chartsLine![1]!.split(', ').map((s) => s.trim());
    const pngs = charts.filter((c) => c.endsWith('.png'));
    expect(pngs.length).toBeGreaterThan(0);
    expect(charts.some((c) => c.endsWith('.svg'))).toBe(true);
    for (const chart of charts) expect(existsSync(join(work, chart)), chart).toBe(true);
    for (const png of pngs) expect(startsWithPng(join(work, png)), png).toBe(true);

    // 4. serve the models folder, wait for readiness
    const child = spawn(process.execPath, forecastArgs('serve', '--models', 'models', '--port', String(port), '--host', '127.0.0.1'), {
      cwd: work,
      env: env({ API_KEYS: KEY }),
      detached: true, // its own group, so afterAll can stop the workers too
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
    child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    server = { child, output, exit };
    const url = `http://127.0.0.1:${port}`;
    let ready = false;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!ready && Date.now() < deadline && child.exitCode === null) {
      try {
        const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1_000) });
        ready = res.status === 200;
      } catch {
        // not listening yet
      }
      if (!ready) await new Promise((r) => setTimeout(r, 200));
    }
    expect(ready, `GET /readyz not 200 within ${READY_TIMEOUT_MS} ms (exit code ${child.exitCode}); service output:\n${output.join('').slice(-4000)}`).toBe(true);

    // 5. verify: every evaluation date matched, bit for bit
    const verify = await forecast(work, 'verify', 'models/acme/1', '--url', url, '--api-key', KEY);
    expect(verify.code, verify.stderr + verify.stdout).toBe(0);
    expect(verify.stdout).toContain('(served as acme@1)');
    const pass = /^PASS: all (\d+) evaluation forecasts equal the bundle's, bit for bit$/m.exec(verify.stdout);
    expect(pass, verify.stdout).not.toBeNull();
    const evaluated = /reproduced from the bundle's history: (\d+) of/.exec(evaluate.stdout)![1];
    expect(pass![1]).toBe(evaluated);
    const offline = /^offline \(bundle\)\s+(.+)$/m.exec(verify.stdout)?.[1];
    const deployed = /^deployed \(service\)\s+(.+)$/m.exec(verify.stdout)?.[1];
    expect(offline).toBeDefined();
    expect(deployed).toBe(offline);
    expect(verify.stdout).toMatch(/^chart: .*deployment\.png/m);

    // 6. predict through a real pipe into head: the pipeline succeeds, no EPIPE trace
    const pipefail = (await run('sh', ['-c', 'set -o pipefail 2>/dev/null && echo yes'], work, 10_000)).stdout.trim() === 'yes';
    const predictCommand = [process.execPath, ...forecastArgs('predict', 'models/acme/1', '--csv', 'bars.csv')].map(shellQuote).join(' ');
    const pipe = await run('sh', ['-c', `${pipefail ? 'set -o pipefail; ' : ''}${predictCommand} | head -n 3`], work);
    expect(pipe.code, pipe.stderr).toBe(0);
    expect(pipe.stderr).not.toMatch(/EPIPE|Error|\n\s+at /);
    const lines = pipe.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe('date,y_pred');
    for (const line of lines.slice(1)) {
      const m = /^(\d{4}-\d{2}-\d{2}),(\S+)$/.exec(line);
      expect(m, line).not.toBeNull();
      const y = Number(m![2]);
      expect(Number.isFinite(y) && y > 0.5 && y < 1.5, line).toBe(true);
    }

    // 7. monitor the served model
    const monitor = await forecast(work, 'monitor', url, '--model', 'acme', '--api-key', KEY);
    expect(monitor.code, monitor.stderr + monitor.stdout).toBe(0);
    expect(monitor.stdout).toContain('acme@1 (default)');
    expect(monitor.stdout).toMatch(/^state\s+(ok|degraded|insufficient_data)\b/m);

    // 8. a graceful stop: SIGTERM to the service, exit code 0
    child.kill('SIGTERM');
    const stopped = await Promise.race([exit, new Promise<null>((r) => setTimeout(() => r(null), STOP_TIMEOUT_MS))]);
    expect(stopped, `service still running ${STOP_TIMEOUT_MS} ms after SIGTERM`).not.toBeNull();
    expect(stopped, output.join('').slice(-2000)).toEqual({ code: 0, signal: null });
  });
});
