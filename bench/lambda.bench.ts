/**
 * Lambda cold start: the packaged handler (`npm run package:lambda`: esbuild bundle, native SQLite
 * addon, bundle in models/) started in a new node process, as a new Lambda container does, with an
 * empty /tmp (the SQLite history is seeded from the bundle). Measured from spawn to the first
 * answer (GET /healthz), with the split inside the process (node start and the handler's import, in
 * which the entry builds the app: loading and self-checking the bundle, seeding the store, building
 * the feature state; then the first event), and a warm forecast event. Compared with Lambda's
 * default function time-out of 3 s.
 *
 * Not measured here: Lambda downloading and unpacking the zip and starting its runtime (the part of a
 * cold start that depends on AWS, roughly proportional to the zip's size), and a slower or
 * throttled CPU (Lambda gives a 1,769 MB function one full vCPU; smaller memory settings get less).
 *
 * Bundles: the demo bundle, and the reference MSFT tree imported from the pickles when
 * ../shared/reference is present (8,163 bars to seed; the deployment this project exists for).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureDemoBundle } from '../src/training/demo.js';
import { DEFAULT_CONFIG } from '../src/config.js';
import { readBarsCsv } from '../src/data/index.js';
import { seriesToSplitJson } from '../src/serve/bar-table.js';
import { HAVE_REFERENCE, writeReferenceBundle } from '../test/helpers/reference.js';
import { HANDLER_FILE, packageLambda, ROOT } from '../scripts/package-lambda.js';
import { results } from './results.js';

export const title = 'AWS Lambda cold start (packaged handler, new node process)';

const KEY = 'bench-key-0123456789abcdef';
const RUNS = 3;
const LAMBDA_DEFAULT_TIMEOUT_MS = 3000;

/** In the new process: import the handler, answer the events, report times since the process started. */
const RUNNER = `
const [handlerPath, eventsJson] = process.argv.slice(1);
const imported = { t: performance.now() };
const { handler } = await import(handlerPath);
imported.t = performance.now();
const events = JSON.parse(eventsJson);
const marks = [];
for (const event of events) {
  const start = performance.now();
  const r = await handler(event, { awsRequestId: 'bench-' + marks.length });
  marks.push({ status: r.statusCode, start, end: performance.now() });
  if (marks.length === 1) process.stdout.write('first\\n');
}
process.stdout.write(JSON.stringify({ imported: imported.t, marks }) + '\\n');
`;

function event(method: string, path: string, body?: unknown): object {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: { host: 'bench.lambda-url.eu-west-1.on.aws', 'x-api-key': KEY, ...(body ? { 'content-type': 'application/json' } : {}) },
    requestContext: { http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'bench' }, requestId: 'bench', stage: '$default' },
    body: body ? JSON.stringify(body) : undefined,
    isBase64Encoded: false,
  };
}

interface ColdStart {
  toFirstAnswer: number;
  nodeAndImport: number;
  firstEvent: number;
  warmForecast: number;
}

function coldStart(handler: string, events: object[], historyDb: string): Promise<ColdStart> {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    let firstAt = 0;
    let out = '';
    const child = spawn(process.execPath, ['--input-type=module', '-e', RUNNER, handler, JSON.stringify(events)], {
      env: { PATH: process.env.PATH, API_KEYS: KEY, HISTORY_DB: historyDb, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.stdout.on('data', (chunk: Buffer) => {
      if (!firstAt && chunk.toString().startsWith('first')) firstAt = performance.now();
      out += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`the handler process exited with ${code}: ${out}`));
      const report = JSON.parse(out.split('\n').filter(Boolean).at(-1)!) as { imported: number; marks: { status: number; start: number; end: number }[] };
      if (report.marks.some((m) => m.status !== 200)) return reject(new Error(`an event was not answered 200: ${out}`));
      resolvePromise({
        toFirstAnswer: firstAt - started,
        nodeAndImport: report.imported,
        firstEvent: report.marks[0].end - report.marks[0].start,
        warmForecast: report.marks[1].end - report.marks[1].start,
      });
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number) => `${Math.round(x)} ms`;

export default async function run(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'forecast-lambda-bench-'));
  try {
    const bundles: { id: string; label: string; dir: string }[] = [{ id: 'demo', label: 'demo (3,000 synthetic bars)', dir: resolve(ROOT, DEFAULT_CONFIG.demoDir) }];
    await ensureDemoBundle(bundles[0].dir);
    if (HAVE_REFERENCE) {
      await writeReferenceBundle(join(work, 'msft'));
      bundles.push({ id: 'msft', label: 'MSFT reference (8,163 bars)', dir: join(work, 'msft') });
    } else console.log('  (../shared/reference is absent: the MSFT reference bundle is not measured)');

    for (const [b, { id, label, dir }] of bundles.entries()) {
      const stage = join(work, `stage-${b}`);
      const packaged = await packageLambda({ bundleDirs: [dir], outFile: join(work, `lambda-${b}.zip`), stageDir: stage });
      const history = JSON.parse(readFileSync(join(stage, 'models', packaged.models[0].split('@')[0], packaged.models[0].split('@')[1], 'manifest.json'), 'utf8')) as {
        evaluation: { dates: string[] };
      };
      const lastEval = history.evaluation.dates.at(-1)!;
      // One already-stored bar: the warm forecast path without a write.
      const series = readBarsCsv(readFileSync(join(dir, 'history.csv'), 'utf8'), { numberParsing: 'exact', sourceName: 'history.csv' });
      const i = series.date.indexOf(lastEval);
      const events = [event('GET', '/healthz'), event('POST', '/forecast', seriesToSplitJson(series, { start: i, end: i + 1, dates: 'iso', index: false }))];
      const runs: ColdStart[] = [];
      for (let r = 0; r < RUNS; r++) runs.push(await coldStart(join(stage, HANDLER_FILE), events, join(work, `history-${b}-${r}.sqlite`)));
      const first = runs.map((r) => r.toFirstAnswer);
      const worst = Math.max(...first);
      console.log(`  ${label}: zip ${(packaged.bytes / 1024 / 1024).toFixed(1)} MB, ${RUNS} cold starts`);
      console.log(`    spawn to first answer      ${ms(median(first))} median (${ms(Math.min(...first))} .. ${ms(worst)})`);
      console.log(`      init: node + import      ${ms(median(runs.map((r) => r.nodeAndImport)))}  (the entry builds the app: load + self-check the bundle, seed SQLite, feature state)`);
      console.log(`      first event              ${ms(median(runs.map((r) => r.firstEvent)))}`);
      console.log(`    warm 1-bar forecast        ${median(runs.map((r) => r.warmForecast)).toFixed(2)} ms`);
      console.log(
        `    vs Lambda's default 3 s time-out: ${worst < LAMBDA_DEFAULT_TIMEOUT_MS ? `fits whole, ${ms(LAMBDA_DEFAULT_TIMEOUT_MS - worst)} to spare in the worst run` : `the whole cold start EXCEEDS it`}` +
          ' (Lambda counts only the event against the time-out; the init phase has its own 10 s; its own start and unpacking come on top)',
      );
      const notes = `${label}; zip ${(packaged.bytes / 1024 / 1024).toFixed(1)} MB; median of ${RUNS} cold starts (${first.map((x) => x.toFixed(0)).join(', ')} ms); AWS's download, unpack and runtime start not included`;
      results.figure({ id: `${id}.cold-start`, label: `Lambda cold start, spawn to first answer: ${label}`, value: median(first), unit: 'ms', notes });
      results.figure({
        id: `${id}.cold-start.worst`,
        label: `Lambda cold start, worst of ${RUNS}: ${label}`,
        value: worst,
        unit: 'ms',
        target: { op: '<', value: LAMBDA_DEFAULT_TIMEOUT_MS, unit: 'ms' },
        notes: "against Lambda's default 3 s function time-out",
      });
      results.figure({ id: `${id}.init`, label: `Lambda init (node start + handler import: load, self-check, seed, features): ${label}`, value: median(runs.map((r) => r.nodeAndImport)), unit: 'ms' });
      results.figure({ id: `${id}.warm-forecast`, label: `Lambda warm 1-bar forecast event: ${label}`, value: median(runs.map((r) => r.warmForecast)), unit: 'ms' });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
