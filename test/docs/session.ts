// Runs the shell examples of one page the way a reader types them into one terminal: aliases and
// variables set by one command hold for the next, a command that starts the service leaves it
// running for the commands after it, and every process started is killed at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** A command that starts the service and keeps running: `npm start`, `forecast serve ...`, with leading VAR=value settings. */
const SERVER_COMMAND = /^(?:[A-Za-z_]\w*=\S+\s+)*(?:npm start|forecast serve)\b/;
/** A command whose only effect is shell state: an alias, an export, or a bare `NAME=value`. */
const STATE_COMMAND = /^(?:alias\s|export\s|[A-Za-z_]\w*=\S*$)/;
/** The docs' placeholder for "the key the service printed": `KEY=...`. */
const PRINTED_KEY_PLACEHOLDER = /^([A-Za-z_]\w*)=\.\.\.$/;
/** How the demo start prints its generated key (src/cli/serve.ts). */
const PRINTED_KEY = /API key generated[^\n]*\n\s*\n\s+(\S+)\n/;
/** The service's error shape: a curl answer of this shape is a failed example even with exit code 0. */
const isServiceError = (value: unknown): boolean => typeof value === 'object' && value !== null && 'error' in value;

export const COMMAND_TIMEOUT_MS = 120_000;
const SERVER_READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

export interface CommandResult {
  command: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A free TCP port on 127.0.0.1, so the examples' `localhost:8000` never collides with anything running. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export class DocSession {
  /** Shell text re-establishing every alias and variable set so far (as `alias -p` / `declare -p` print them). */
  private prelude = '';
  private server: { child: ChildProcess; output: string[]; exited: Promise<void> } | null = null;
  private readonly live = new Set<ChildProcess>();
  lastResult: CommandResult | null = null;

  constructor(
    private readonly cwd: string,
    private readonly port: number,
  ) {}

  /** The environment of every command: nothing of the test's own (keys, DATABASE_URL), the service on this session's port and 127.0.0.1 only. */
  private env(): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', PORT: String(this.port), HOST: '127.0.0.1' };
  }

  /** The page's command as run here: its service address is this session's port, and `npm ci` already ran (the test runs in an installed tree). */
  private localise(command: string): string {
    return command.replace(/^npm ci && /, '').replaceAll('localhost:8000', `127.0.0.1:${this.port}`);
  }

  async run(pageCommand: string): Promise<CommandResult> {
    const command = this.localise(pageCommand);
    if (SERVER_COMMAND.test(command)) return this.startServer(command);
    if (STATE_COMMAND.test(command)) return this.setState(command);
    const result = await this.bash(`${this.prelude}\n${command}`, COMMAND_TIMEOUT_MS, command);
    if (result.code === 0 && /\bcurl\b/.test(command)) {
      const answer = parseJson(result.stdout);
      if (isServiceError(answer)) result.code = -1;
    }
    this.lastResult = result;
    return result;
  }

  private async setState(command: string): Promise<CommandResult> {
    const placeholder = PRINTED_KEY_PLACEHOLDER.exec(command);
    const effective = placeholder ? `${placeholder[1]}=${shellQuote(await this.printedKey())}` : command;
    // The variables it sets, to carry over; an alias is carried over by `alias -p` alone.
    const names = /^alias\s/.test(effective) ? [] : [...effective.matchAll(/(?:^|\s)(?:export\s+)?([A-Za-z_]\w*)=/g)].map((m) => m[1]!);
    const stateFile = join(this.cwd, '.doc-session-state');
    const dump = `{ alias -p; ${names.length > 0 ? `declare -p ${names.join(' ')};` : ''} } > ${shellQuote(stateFile)}`;
    const result = await this.bash(`${this.prelude}\n${effective}\n${dump}`, COMMAND_TIMEOUT_MS, command);
    if (result.code === 0) this.prelude = readFileSync(stateFile, 'utf8');
    this.lastResult = result;
    return result;
  }

  /** The key the running demo service printed (it prints it once its workers listen). */
  private async printedKey(): Promise<string> {
    const deadline = Date.now() + SERVER_READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const match = PRINTED_KEY.exec(this.server?.output.join('') ?? '');
      if (match) return match[1]!;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no printed API key in the service's output:\n${this.server?.output.join('') ?? '(no service running)'}`);
  }

  /** Starts the service in the background, as the reader's terminal would hold it, after stopping the one before (same port). */
  private async startServer(command: string): Promise<CommandResult> {
    await this.stopServer();
    const child = this.spawnBash(`${this.prelude}\n${command}`);
    const output: string[] = [];
    child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
    child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
    let exitCode: number | null | undefined;
    const exited = new Promise<void>((resolve) => child.once('exit', (code) => ((exitCode = code), resolve())));
    this.server = { child, output, exited };
    const deadline = Date.now() + SERVER_READY_TIMEOUT_MS;
    while (Date.now() < deadline && exitCode === undefined) {
      if (await this.healthy()) {
        this.lastResult = { command, code: 0, stdout: output.join(''), stderr: '' };
        return this.lastResult;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const reason = exitCode === undefined ? `not answering /healthz after ${SERVER_READY_TIMEOUT_MS} ms` : `exited with code ${exitCode}`;
    this.lastResult = { command, code: exitCode ?? -1, stdout: output.join(''), stderr: `service ${reason}` };
    return this.lastResult;
  }

  private async healthy(): Promise<boolean> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.port}/healthz`, { signal: AbortSignal.timeout(1_000) });
      return res.status === 200;
    } catch {
      return false;
    }
  }

  async stopServer(): Promise<void> {
    if (!this.server) return;
    const { child, exited } = this.server;
    this.server = null;
    await stopGroup(child, exited);
  }

  /** Stops the service and anything a timed-out command left behind. */
  async close(): Promise<void> {
    await this.stopServer();
    for (const child of this.live) killGroup(child, 'SIGKILL');
    this.live.clear();
  }

  private spawnBash(script: string): ChildProcess {
    // Its own process group, so the service's npm, tsx and node processes are stopped together.
    const child = spawn('bash', ['-O', 'expand_aliases', '-e', '-o', 'pipefail', '-c', script], {
      cwd: this.cwd,
      env: this.env(),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.live.add(child);
    child.once('exit', () => this.live.delete(child));
    return child;
  }

  private bash(script: string, timeoutMs: number, command: string): Promise<CommandResult> {
    return new Promise((resolve) => {
      const child = this.spawnBash(script);
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout!.on('data', (d: Buffer) => stdout.push(d));
      child.stderr!.on('data', (d: Buffer) => stderr.push(d));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup(child, 'SIGKILL');
      }, timeoutMs);
      child.once('close', (code) => {
        clearTimeout(timer);
        const err = Buffer.concat(stderr).toString() + (timedOut ? `\n(killed after ${timeoutMs} ms)` : '');
        resolve({ command, code: timedOut ? -1 : code, stdout: Buffer.concat(stdout).toString(), stderr: err });
      });
    });
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}

/** SIGTERM to the whole group (the service's own graceful stop), SIGKILL to what is left after the grace. */
async function stopGroup(child: ChildProcess, exited: Promise<void>): Promise<void> {
  killGroup(child, 'SIGTERM');
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  await Promise.race([exited, new Promise((r) => setTimeout(r, STOP_TIMEOUT_MS))]);
  // bash exits at once; the service's node processes in its group take their drain time.
  while (Date.now() < deadline && groupAlive(child)) await new Promise((r) => setTimeout(r, 100));
  killGroup(child, 'SIGKILL');
}

function groupAlive(child: ChildProcess): boolean {
  try {
    if (child.pid === undefined) return false;
    process.kill(-child.pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
