/**
 * End-to-end acceptance of the container contract, without Docker: what the image's runtime stage
 * holds, started the way its CMD starts it, then proved with `forecast verify`.
 *
 *   1. `npm run build` and a production-only install (`npm ci --omit=dev`) of package.json,
 *      package-lock.json and dist/ into a temporary folder: the runtime stage's /app.
 *   2. Bundles laid out name/version in a models folder: the reference MSFT tree imported from the
 *      scikit-learn pickles (or, without ../shared/reference, the demo bundle), and a tampered copy.
 *   3. The service started as the Dockerfile's CMD, with its ENV (PORT, HISTORY_DB, ... moved from
 *      /data to a temporary folder), as the unprivileged user `nobody`.
 *   4. `node dist/cli/index.js verify` (from the production install) passes on every test date of the
 *      bundle; against the service serving the tampered copy it fails, naming the dates.
 *
 * The install skips install scripts and copies the better-sqlite3 addon compiled by this checkout's
 * own `npm ci` (same Node, same machine; its only install script builds that file), which keeps the
 * install to seconds instead of the minutes a compile of SQLite takes.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBundle, pipelineFromManifest, recomputeEvaluation, writeBundle, type BundleManifest, type LoadedBundle } from '../../src/bundle/index.js';
import { ensureDemoBundle } from '../../src/training/demo.js';
import { regressionMetrics } from '../../src/models/metrics.js';
import type { TreeState } from '../../src/models/types.js';
import { runCli } from '../helpers/cli.js';
import { needsReference, referenceFile, tempDir } from '../helpers/reference.js';
import { dockerStartCommand, healthcheckCommand, parseDockerfile, readRepoFile, ROOT } from './helpers.js';

/** Without ../shared/reference the demo bundle stands in; with REQUIRE_REFERENCE=1 it may not. */
const withReference = needsReference('MSFT.csv', 'dtree_model.pkl', 'scaler_ml.pkl');

const run = promisify(execFile);
const KEY = 'container-test-key-0123456789abcdef';
const USER = { uid: 65534, gid: 65534, name: 'nobody', group: 'nogroup' };
/** As root (CI, this machine), the service drops to `nobody` as the image's USER does; otherwise it already runs unprivileged. */
const AS_ROOT = process.getuid?.() === 0;
const SERVICE_UID = AS_ROOT ? USER.uid : process.getuid!();
const RUNTIME = parseDockerfile(readRepoFile('Dockerfile')).stages.at(-1)!;
/** The runtime stage's ENV, as the image sets it. */
const IMAGE_ENV: Record<string, string> = Object.assign({}, ...RUNTIME.instructions.filter((i) => i.keyword === 'ENV').map((i) => i.env));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** Makes a tree readable (and folders traversable) by everyone: the service user reads, never writes. */
function shareReadOnly(path: string): void {
  const s = statSync(path);
  chmodSync(path, s.isDirectory() || (s.mode & 0o111) !== 0 ? 0o755 : 0o644);
  if (s.isDirectory()) for (const entry of readdirSync(path)) shareReadOnly(join(path, entry));
}

/** The next double above x (x > 0). */
function nextUp(x: number): number {
  const f = new Float64Array([x]);
  new BigUint64Array(f.buffer)[0] += 1n;
  return f[0];
}

/**
 * A copy with one leaf of the tree moved by one ulp, its evaluation forecasts, metrics and checksums
 * rewritten to match (the loader requires a bundle to reproduce its own evaluation). The leaf is one
 * that evaluation rows reach and whose value no other leaf holds. Returns the dates that change.
 */
async function writeTamperedCopy(bundle: LoadedBundle, dir: string): Promise<string[]> {
  const m = structuredClone(bundle.manifest) as BundleManifest;
  const tree = m.model as TreeState;
  const leaves = (v: number) => tree.value.flatMap((x, node) => (tree.leftChild[node] === -1 && Object.is(x, v) ? [node] : []));
  const from = m.evaluation.yPred.find((p) => leaves(p).length === 1);
  if (from === undefined) throw new Error('no evaluation forecast comes from a leaf of its own');
  tree.value[leaves(from)[0]] = nextUp(from);
  m.evaluation.yPred = Array.from(recomputeEvaluation({ manifest: m, pipeline: pipelineFromManifest(m), history: bundle.history }));
  m.metrics.test = regressionMetrics(m.evaluation.yTrue, m.evaluation.yPred);
  await writeBundle(dir, m, bundle.history);
  return m.evaluation.dates.filter((_, j) => !Object.is(m.evaluation.yPred[j], bundle.manifest.evaluation.yPred[j]));
}

interface Service {
  child: ChildProcess;
  url: string;
  port: number;
  log: () => string;
}

/** Starts the image's CMD with its ENV, as `nobody`, serving `modelsDir`; resolves once /readyz is 200. */
async function startService(app: string, modelsDir: string, dataDir: string): Promise<Service> {
  const port = await freePort();
  const [command, ...args] = dockerStartCommand().map((a) => (a === '/models' ? modelsDir : a));
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dataDir };
  for (const [k, v] of Object.entries(IMAGE_ENV)) env[k] = v.replace(/^\/data(?=\/|$)/, dataDir);
  Object.assign(env, { PORT: String(port), API_KEYS: KEY, LOG_LEVEL: 'warn' });
  const argv = AS_ROOT ? ['setpriv', `--reuid=${USER.name}`, `--regid=${USER.group}`, '--clear-groups', command, ...args] : [command, ...args];
  const child = spawn(argv[0], argv.slice(1), { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode}:\n${output}`);
    const ready = await fetch(`${url}/readyz`).then((r) => r.status === 200, () => false);
    if (ready) break;
    if (Date.now() > deadline) throw new Error(`the service was not ready within 60 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, url, port, log: () => output };
}

async function stopService(s: Service | undefined): Promise<void> {
  if (!s || s.child.exitCode !== null) return;
  const exited = new Promise((resolve) => s.child.once('exit', resolve));
  s.child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
  if (s.child.exitCode === null) s.child.kill('SIGKILL');
}

describe('container contract: production install, non-root, PORT, verify', () => {
  const work = tempDir('forecast-container-');
  const app = join(work, 'app');
  let bundle: LoadedBundle;
  let tamperedDates: string[];
  let service: Service;
  let tamperedService: Service;
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    try {
      return await f();
    } finally {
      timings[name] = Math.round(performance.now() - t);
    }
  };

  beforeAll(async () => {
    mkdirSync(app, { recursive: true });
    for (const f of ['package.json', 'package-lock.json', '.npmrc']) if (existsSync(join(ROOT, f))) copyFileSync(join(ROOT, f), join(app, f));
    const addon = join('node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
    const reuseAddon = existsSync(join(ROOT, addon));
    // allSettled: a failed install must not leave the build writing into a folder being removed.
    const steps = await Promise.allSettled([
      // The Dockerfile's build stage: `npm run build`, here into the folder the runtime stage copies.
      timed('build', () => run('npm', ['run', 'build', '--', '--outDir', join(app, 'dist')], { cwd: ROOT })),
      timed('install', async () => {
        await run('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', ...(reuseAddon ? ['--ignore-scripts'] : [])], { cwd: app });
        if (reuseAddon) {
          mkdirSync(join(app, addon, '..'), { recursive: true });
          copyFileSync(join(ROOT, addon), join(app, addon));
        }
      }),
    ]);
    for (const step of steps) if (step.status === 'rejected') throw step.reason;

    // Bundles, laid out name/version as the image's /models.
    const models = join(work, 'models');
    const tampered = join(work, 'models-tampered');
    await timed('bundles', async () => {
      if (withReference.use()) {
        const made = await runCli(
          'import-sklearn', '--model', referenceFile('dtree_model.pkl'), '--scaler', referenceFile('scaler_ml.pkl'), '--features', 'reference',
          '--csv', referenceFile('MSFT.csv'), '--out', join(models, 'msft', '1'), '--name', 'msft', '--model-version', '1',
        );
        if (made.code !== 0) throw new Error(`import-sklearn failed: ${made.stderr}`);
        bundle = await loadBundle(join(models, 'msft', '1'));
      } else bundle = await ensureDemoBundle(join(models, 'demo', '1'));
      tamperedDates = await writeTamperedCopy(bundle, join(tampered, bundle.manifest.name, bundle.manifest.version));
    });

    // The image's files belong to root and are only readable by the service user; /data is its own.
    shareReadOnly(work);
    const data = [join(work, 'data'), join(work, 'data-tampered')];
    for (const d of data) {
      mkdirSync(d);
      if (AS_ROOT) chownSync(d, USER.uid, USER.gid);
    }
    [service, tamperedService] = await timed('start', () => Promise.all([startService(app, models, data[0]), startService(app, tampered, data[1])]));
  });

  afterAll(async () => {
    await Promise.all([stopService(service), stopService(tamperedService)]);
    console.log(`container test timings (ms): ${JSON.stringify(timings)}`);
    rmSync(work, { recursive: true, force: true });
  });

  it('has only production dependencies installed', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies)) expect(existsSync(join(app, 'node_modules', dep, 'package.json'))).toBe(true);
    // The toolchain stays out (some dev dependencies, e.g. yaml, are also production dependencies' dependencies).
    for (const tool of ['typescript', 'tsx', 'vitest', 'esbuild']) {
      expect(Object.keys(pkg.devDependencies)).toContain(tool);
      expect(existsSync(join(app, 'node_modules', tool))).toBe(false);
    }
    expect(existsSync(join(app, 'dist', 'cli', 'index.js'))).toBe(true);
    expect(existsSync(join(app, 'src'))).toBe(false);
  });

  it('runs as the unprivileged user, on PORT, with /healthz, /readyz and the image HEALTHCHECK passing', async () => {
    const status = readFileSync(`/proc/${service.child.pid}/status`, 'utf8');
    expect(SERVICE_UID).not.toBe(0);
    expect(status).toMatch(new RegExp(`^Uid:\\s+${SERVICE_UID}\\s+${SERVICE_UID}\\s`, 'm'));
    if (AS_ROOT) expect(status).toMatch(new RegExp(`^Gid:\\s+${USER.gid}\\s+${USER.gid}\\s`, 'm'));
    expect(await fetch(`${service.url}/healthz`).then((r) => r.json())).toEqual({ status: 'ok' });
    expect(await fetch(`${service.url}/readyz`).then((r) => r.status)).toBe(200);
    const [node, ...args] = healthcheckCommand(RUNTIME.instructions.find((i) => i.keyword === 'HEALTHCHECK')!);
    const check = await run(node, args, { env: { PATH: process.env.PATH, PORT: String(service.port) } }).then(() => 0, (e: { code: number }) => e.code);
    expect(check).toBe(0);
    // The SQLite history was created where HISTORY_DB points, by the service user.
    expect(statSync(join(work, 'data', 'history.sqlite')).uid).toBe(SERVICE_UID);
  });

  it(`forecast verify passes on every test date${withReference.present ? ' (961 MSFT dates)' : ' of the demo bundle'}`, async () => {
    const dir = join(work, 'models', bundle.manifest.name, bundle.manifest.version);
    const { stdout } = await timed('verify', () =>
      run(process.execPath, [join(app, 'dist', 'cli', 'index.js'), 'verify', dir, '--url', service.url, '--json', '--chart-dir', join(work, 'chart')], {
        cwd: work,
        env: { PATH: process.env.PATH, API_KEY: KEY },
      }),
    );
    const report = JSON.parse(stdout) as { passed: boolean; dates: number; equal: number; servedModel: string; chart: { svg: string; png: string } };
    expect(report).toMatchObject({ passed: true, equal: report.dates, servedModel: bundle.id });
    expect(report.dates).toBe(bundle.manifest.evaluation.dates.length);
    if (withReference.present) expect(report.dates).toBe(961);
    expect(existsSync(report.chart.png)).toBe(true);
  });

  it('forecast verify of the original bundle against the tampered service fails, naming the dates', async () => {
    expect(tamperedDates.length).toBeGreaterThan(0);
    const dir = join(work, 'models', bundle.manifest.name, bundle.manifest.version);
    const failed = await run(process.execPath, [join(app, 'dist', 'cli', 'index.js'), 'verify', dir, '--url', tamperedService.url, '--no-chart'], {
      cwd: work,
      env: { PATH: process.env.PATH, API_KEY: KEY },
    }).then(
      () => null,
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(failed).not.toBeNull();
    expect(failed!.code).toBe(1);
    expect(failed!.stdout).toContain(`FAIL: ${tamperedDates.length} of ${bundle.manifest.evaluation.dates.length} evaluation forecasts differ`);
    for (const date of tamperedDates.slice(0, 10)) expect(failed!.stdout).toMatch(new RegExp(`^${date}\\s+\\S+\\s+\\S+\\s+model\\b`, 'm'));
    expect(failed!.stderr).toContain(`verification failed: the service's forecasts differ from ${bundle.id}'s evaluation on ${tamperedDates.length} of`);
  });
});


