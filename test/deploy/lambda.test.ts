/**
 * The AWS Lambda handler, driven with recorded API Gateway HTTP API (payload 2.0) and Function URL
 * events (test/fixtures/lambda/), and the package `npm run package:lambda` builds: a zip under
 * Lambda's limit whose handler, unzipped alone in a folder, answers events in a fresh node process.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { inflateRawSync } from 'node:zlib';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedBundle } from '../../src/bundle/index.js';
import { ensureDemoBundle } from '../../src/training/demo.js';
import { DEFAULT_CONFIG, loadConfig } from '../../src/config.js';
import {
  createHandler,
  LAMBDA_SQLITE_PATH,
  lambdaAppOptions,
  PACKAGED_MODELS_DIR,
  toLambdaResult,
  type HttpApiEvent,
  type HttpApiResult,
  type LambdaHandler,
} from '../../src/lambda/handler.js';
import { buildApp } from '../../src/serve/app.js';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { crc32, HANDLER_FILE, LAMBDA_ZIP_LIMIT_BYTES, packageLambda } from '../../scripts/package-lambda.js';
import { tempDir } from '../helpers/reference.js';

const run = promisify(execFile);
const KEY = 'lambda-test-key-0123456789';
const FIXTURES = fileURLToPath(new URL('../fixtures/lambda/', import.meta.url));

function fixture(name: string): HttpApiEvent {
  return JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as HttpApiEvent;
}

/** The event with another JSON body, encoded as the event encodes its own. */
function withBody(event: HttpApiEvent, body: unknown): HttpApiEvent {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return { ...event, body: event.isBase64Encoded ? Buffer.from(text).toString('base64') : text, headers: { ...event.headers, 'content-length': String(Buffer.byteLength(text)) } };
}

const json = (r: HttpApiResult) => JSON.parse(r.isBase64Encoded ? Buffer.from(r.body, 'base64').toString('utf8') : r.body) as Record<string, unknown> & { error?: { code: string } };

/** The bundle pipeline's forecast for bar i of its history, computed outside the service. */
function expectedForecasts(bundle: LoadedBundle, start: number, end: number): number[] {
  const table = bundle.pipeline.featureSet.computeBatch(bundle.history);
  const k = table.values.cols;
  return Array.from({ length: end - start }, (_, j) => bundle.pipeline.predictFeatures(table.values.data.slice((start + j) * k, (start + j + 1) * k)));
}

describe('Lambda handler (API Gateway HTTP API and Function URL events)', () => {
  const tmp = tempDir('forecast-lambda-');
  let bundle: LoadedBundle;
  let handler: LambdaHandler;
  let builds = 0;
  let last3: unknown;
  let expected: number[];

  beforeAll(async () => {
    bundle = await ensureDemoBundle(join(tmp, 'demo'));
    const n = bundle.history.date.length;
    last3 = seriesToSplitJson(bundle.history, { start: n - 3, end: n, dates: 'iso', index: false });
    expected = expectedForecasts(bundle, n - 3, n);
    // The production path: the service configuration, then the Lambda defaults on top.
    const config = loadConfig({ API_KEYS: KEY, BUNDLE_DIR: join(tmp, 'demo'), HISTORY_DB: join(tmp, 'history.sqlite'), LOG_LEVEL: 'silent' });
    handler = createHandler(() => {
      builds++;
      return buildApp(lambdaAppOptions(config));
    });
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('answers GET /healthz without a key, with the Lambda request id', async () => {
    const r = await handler(fixture('apigw-v2-get-healthz.json'), { awsRequestId: '8d9a6c1e-2f3b-4a5c-9d7e-1f2a3b4c5d6e' });
    expect(r).toMatchObject({ statusCode: 200, isBase64Encoded: false });
    expect(JSON.parse(r.body)).toEqual({ status: 'ok' });
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.headers['x-request-id']).toBe('8d9a6c1e-2f3b-4a5c-9d7e-1f2a3b4c5d6e');
  });

  it('refuses a data route without a key (401, the service error shape)', async () => {
    const r = await handler(fixture('function-url-get-models-no-key.json'), { awsRequestId: 'req-401' });
    expect(r.statusCode).toBe(401);
    expect(json(r).error).toMatchObject({ code: 'unauthorized', request_id: 'req-401' });
  });

  it('forecasts like the bundle pipeline, bit for bit (API Gateway, x-api-key)', async () => {
    const r = await handler(withBody(fixture('apigw-v2-post-forecast.json'), last3));
    expect(r.statusCode).toBe(200);
    const body = json(r) as { model: string; y_pred: number[] };
    expect(body.model).toBe('demo@1');
    body.y_pred.forEach((y, j) => expect(Object.is(y, expected[j])).toBe(true));
  });

  it('strips a named stage, keeps the query, reads Bearer keys and cookies', async () => {
    const event = withBody(fixture('apigw-v2-stage-post-model-forecast.json'), last3);
    expect(event.rawPath).toBe('/prod/models/demo/forecast');
    const r = await handler(event);
    expect(r.statusCode).toBe(200);
    expect((json(r) as { y_pred: number[] }).y_pred).toEqual(expected);
    // An unknown query parameter reaches the app, which refuses it: the query is passed through.
    const bad = await handler({ ...event, rawQueryString: 'version=1&nonsense=1' });
    expect(bad.statusCode).toBe(400);
  });

  it('decodes a base64 body (Function URL, no content type)', async () => {
    const event = withBody(fixture('function-url-post-forecast-base64.json'), last3);
    expect(event.isBase64Encoded).toBe(true);
    expect(event.headers!['content-type']).toBeUndefined();
    const r = await handler(event);
    expect(r.statusCode).toBe(200);
    expect((json(r) as { y_pred: number[] }).y_pred).toEqual(expected);
  });

  it('answers bad input with a 4xx naming the problem', async () => {
    const post = fixture('apigw-v2-post-forecast.json');
    const notJson = await handler(withBody(post, '{"columns": ['));
    expect(notJson.statusCode).toBe(400);
    expect(json(notJson).error!.code).toBe('invalid_json');
    const n = bundle.history.date.length;
    const bar = ['2023-07-03', 97, 96, 98, 97.5, 1000];
    const inverted = await handler(withBody(post, { columns: ['date', 'open', 'high', 'low', 'close', 'volume'], data: [bar] }));
    expect(inverted.statusCode).toBe(422);
    expect(json(inverted).error).toMatchObject({ code: 'invalid_value', details: { row: 0, field: 'high' } });
    // Nothing was stored: the history still ends at the bundle's last bar.
    const models = await handler({ ...fixture('function-url-get-models-no-key.json'), headers: { 'x-api-key': KEY } });
    expect((json(models) as { models: { history: { bars: number } }[] }).models[0].history.bars).toBe(n);
  });

  it('sends binary responses base64-encoded', async () => {
    const r = await handler({ ...fixture('apigw-v2-get-healthz.json'), rawPath: '/docs/static/favicon-32x32.png' });
    expect(r.statusCode).toBe(200);
    expect(r.isBase64Encoded).toBe(true);
    expect(Buffer.from(r.body, 'base64').subarray(1, 4).toString('latin1')).toBe('PNG');
  });

  it('built the app once for all those events', () => {
    expect(builds).toBe(1);
  });

  it('refuses a REST API (payload 1.0) event with a clear message', async () => {
    const r = await handler({ resource: '/{proxy+}', path: '/healthz', httpMethod: 'GET', requestContext: {} } as unknown as HttpApiEvent);
    expect(r.statusCode).toBe(400);
    expect(json(r).error!.code).toBe('unsupported_event');
  });

  it('builds in the init phase with prepare(); a failed start is logged, answered 503, and retried', async () => {
    let attempts = 0;
    const flaky = createHandler(async () => {
      if (attempts++ < 2) throw new Error('DATABASE_URL unreachable');
      return buildApp({ bundles: [bundle], apiKeys: [KEY], sqlitePath: join(tmp, 'flaky.sqlite'), logger: false });
    });
    const errors: string[] = [];
    const original = console.error;
    console.error = (line: string) => void errors.push(line);
    try {
      await flaky.prepare(); // never throws: the init phase must not crash the container
      const first = await flaky(fixture('apigw-v2-get-healthz.json'), { awsRequestId: 'r1' });
      expect(first.statusCode).toBe(503);
      expect(json(first).error).toMatchObject({ code: 'unavailable', request_id: 'r1' });
      expect(first.body).not.toContain('DATABASE_URL');
      expect(errors).toHaveLength(2);
      expect(errors.join('\n')).toContain('DATABASE_URL unreachable');
    } finally {
      console.error = original;
    }
    expect((await flaky(fixture('apigw-v2-get-healthz.json'))).statusCode).toBe(200);
    expect((await flaky(fixture('apigw-v2-get-healthz.json'))).statusCode).toBe(200);
    expect(attempts).toBe(3);
  });

  it('moves Set-Cookie into cookies and drops hop-by-hop headers', () => {
    const r = toLambdaResult({
      statusCode: 200,
      headers: { 'set-cookie': ['a=1', 'b=2'], connection: 'keep-alive', 'content-type': 'text/plain', 'x-multi': ['x', 'y'] },
      rawPayload: Buffer.from('hi'),
    } as unknown as LightMyRequestResponse);
    expect(r).toEqual({ statusCode: 200, headers: { 'content-type': 'text/plain', 'x-multi': 'x, y' }, cookies: ['a=1', 'b=2'], body: 'hi', isBase64Encoded: false });
  });
});

describe('Lambda configuration', () => {
  it('serves the packaged models/ and keeps SQLite in /tmp unless told otherwise', () => {
    const defaults = lambdaAppOptions(loadConfig({ API_KEYS: KEY }));
    expect(defaults).toMatchObject({ modelsDir: PACKAGED_MODELS_DIR, bundleDir: null, sqlitePath: LAMBDA_SQLITE_PATH, databaseUrl: null, apiKeys: [KEY] });
    expect(DEFAULT_CONFIG.sqlitePath).not.toBe(LAMBDA_SQLITE_PATH);
    expect(lambdaAppOptions(loadConfig({ API_KEYS: KEY, BUNDLE_DIR: '/opt/bundle', HISTORY_DB: '/mnt/efs/h.sqlite' }))).toMatchObject({
      bundleDir: '/opt/bundle',
      modelsDir: null,
      sqlitePath: '/mnt/efs/h.sqlite',
    });
    expect(lambdaAppOptions(loadConfig({ API_KEYS: KEY, MODELS_DIR: '/opt/models', DATABASE_URL: 'postgres://u:p@db/forecast' }))).toMatchObject({
      modelsDir: '/opt/models',
      databaseUrl: 'postgres://u:p@db/forecast',
    });
  });
});

// ---------------------------------------------------------------------------------------------

interface ZipEntry {
  name: string;
  mode: number;
  data: Buffer;
}

/** Reads every entry through the central directory, checking sizes and CRCs. */
function readZip(zip: Buffer): ZipEntry[] {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) throw new Error('no end of central directory');
  const count = zip.readUInt16LE(end + 10);
  let p = zip.readUInt32LE(end + 16);
  const out: ZipEntry[] = [];
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error(`bad central header ${i}`);
    const method = zip.readUInt16LE(p + 10);
    const crc = zip.readUInt32LE(p + 16);
    const size = zip.readUInt32LE(p + 20);
    const usize = zip.readUInt32LE(p + 24);
    const nameLength = zip.readUInt16LE(p + 28);
    const skip = nameLength + zip.readUInt16LE(p + 30) + zip.readUInt16LE(p + 32);
    const mode = zip.readUInt32LE(p + 38) >>> 16;
    const local = zip.readUInt32LE(p + 42);
    const name = zip.subarray(p + 46, p + 46 + nameLength).toString('utf8');
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(start, start + size);
    const data = method === 8 ? inflateRawSync(raw) : Buffer.from(raw);
    if (data.length !== usize || crc32(data) !== crc) throw new Error(`${name}: size or CRC mismatch`);
    out.push({ name, mode, data });
    p += 46 + skip;
  }
  return out;
}

/** Imports a handler in a fresh node process and answers events with it; what a cold container does. */
const RUNNER = `
const [handlerPath, eventsJson] = process.argv.slice(1);
const { handler } = await import(handlerPath);
const out = [];
for (const event of JSON.parse(eventsJson)) out.push(await handler(event, { awsRequestId: 'cold-' + out.length }));
process.stdout.write(JSON.stringify(out));
`;

describe('npm run package:lambda', () => {
  const tmp = tempDir('forecast-lambda-zip-');
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('writes a zip under the 50 MB limit with the handler, the bundle and the native addon; the unzipped handler answers', async () => {
    const bundle = await ensureDemoBundle(join(tmp, 'demo'));
    const lines: string[] = [];
    const result = await packageLambda({ bundleDirs: [join(tmp, 'demo')], outFile: join(tmp, 'out', 'lambda.zip'), log: (l) => lines.push(l) });
    expect(existsSync(result.zipFile)).toBe(true);
    expect(result.bytes).toBeLessThan(LAMBDA_ZIP_LIMIT_BYTES);
    expect(result.models).toEqual(['demo@1']);
    expect(lines.join('\n')).toMatch(/wrote .*lambda\.zip: [\d.]+ MB \(\d+ bytes; limit 50\.0 MB\)/);

    const zip = readFileSync(result.zipFile);
    expect(zip.length).toBe(result.bytes);
    const entries = readZip(zip);
    const names = entries.map((e) => e.name);
    for (const name of [
      HANDLER_FILE,
      'package.json',
      'models/demo/1/manifest.json',
      'models/demo/1/history.csv',
      'models/demo/1/checksums.json',
      'node_modules/better-sqlite3/build/Release/better_sqlite3.node',
      'node_modules/better-sqlite3/lib/index.js',
      'node_modules/bindings/bindings.js',
      'node_modules/file-uri-to-path/index.js',
      'node_modules/@fastify/swagger-ui/static/index.html',
    ])
      expect(names).toContain(name);
    // Nothing that only builds or tests: no sources of the addon, no TypeScript, no dev tools.
    expect(names.filter((n) => /better-sqlite3\/(src|deps)\/|^src\/|node_modules\/(typescript|esbuild|vitest|prebuild-install)\//.test(n))).toEqual([]);
    // Readable by the Lambda runtime user.
    for (const e of entries) expect(e.mode & 0o444).toBe(0o444);
    // Byte-identical bundle files.
    expect(entries.find((e) => e.name === 'models/demo/1/history.csv')!.data.equals(readFileSync(join(tmp, 'demo', 'history.csv')))).toBe(true);

    // Cross-check the archive with Info-ZIP where it is installed.
    const unzip = await run('unzip', ['-tq', result.zipFile]).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : Promise.reject(err)));
    if (unzip) expect(unzip.stdout).toContain('No errors detected');

    // Unzipped alone (nothing of this repository's node_modules reachable), in a fresh process.
    const root = join(tmp, 'unzipped');
    for (const e of entries) {
      mkdirSync(dirname(join(root, e.name)), { recursive: true });
      writeFileSync(join(root, e.name), e.data);
    }
    const n = bundle.history.date.length;
    const frame = seriesToSplitJson(bundle.history, { start: n - 3, end: n, dates: 'iso', index: false });
    const events = [fixture('apigw-v2-get-healthz.json'), withBody(fixture('function-url-post-forecast-base64.json'), frame)];
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', RUNNER, join(root, HANDLER_FILE), JSON.stringify(events)], {
      cwd: root,
      env: { PATH: process.env.PATH, API_KEYS: KEY, HISTORY_DB: join(tmp, 'cold.sqlite'), LOG_LEVEL: 'warn' },
    });
    const [health, forecast] = JSON.parse(stdout) as HttpApiResult[];
    expect(health.statusCode).toBe(200);
    expect(forecast.statusCode).toBe(200);
    expect((json(forecast) as { model: string; y_pred: number[] }).y_pred).toEqual(expectedForecasts(bundle, n - 3, n));
  });
});

