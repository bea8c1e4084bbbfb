/**
 * `forecast verify` against real services on loopback (buildApp listening on port 0): a faithful one
 * passes; one serving a tampered model, one with another history, and a flaky or locked one fail
 * with messages naming what differs. The bundles are small reference-feature trees trained on
 * synthetic bars, so the look-ahead `atr` is part of every check.
 */
import { existsSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBundle, pipelineFromManifest, recomputeEvaluation, writeBundle, type BundleManifest, type LoadedBundle, sha256 } from '../../src/bundle/index.js';
import { sliceSeries } from '../../src/data/bars.js';
import { generateSyntheticBars, writeBarsCsv } from '../../src/data/index.js';
import { regressionMetrics } from '../../src/models/metrics.js';
import type { TreeState } from '../../src/models/types.js';
import { buildApp } from '../../src/serve/app.js';
import { train } from '../../src/training/train.js';
import { MismatchDiagnoser, ServiceRequestError, verifyDeployment } from '../../src/verify/index.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/reference.js';

const KEY = 'verify-test-key-0123456789';

/** A reference-feature tree on synthetic bars: written, then loaded (and self-checked) like any bundle. */
async function trainedBundle(dir: string, seed: number, maxDepth = 6): Promise<LoadedBundle> {
  const series = generateSyntheticBars({ seed, bars: 800, startDate: '2015-01-05' });
  const { manifest } = train({
    series,
    source: { file: `synthetic(seed=${seed})`, sha256: sha256(writeBarsCsv(series)) },
    featureSet: 'reference',
    model: 'tree',
    tree: { maxDepth },
    name: 'acme',
    version: '1',
  });
  await writeBundle(dir, manifest, series);
  return loadBundle(dir);
}

/** The next double above x (x > 0): a difference only bit-for-bit comparison sees. */
function nextUp(x: number): number {
  const f = new Float64Array([x]);
  new BigUint64Array(f.buffer)[0] += 1n;
  return f[0];
}

/**
 * A copy whose tree has one leaf moved by one ulp, with its evaluation forecasts, metrics and
 * checksums rewritten to match, so that it loads (the loader checks a bundle reproduces itself).
 * The leaf is one that evaluation rows reach and whose value no other leaf holds.
 */
async function tamperedCopy(bundle: LoadedBundle, dir: string): Promise<{ from: number; to: number; dates: string[] }> {
  const m = structuredClone(bundle.manifest) as BundleManifest;
  const tree = m.model as TreeState;
  const leaves = (v: number) => tree.value.flatMap((x, node) => (tree.leftChild[node] === -1 && Object.is(x, v) ? [node] : []));
  const from = m.evaluation.yPred.find((p) => leaves(p).length === 1);
  if (from === undefined) throw new Error('no evaluation forecast comes from a leaf of its own');
  const to = nextUp(from);
  tree.value[leaves(from)[0]] = to;
  m.evaluation.yPred = Array.from(recomputeEvaluation({ manifest: m, pipeline: pipelineFromManifest(m), history: bundle.history }));
  m.metrics.test = regressionMetrics(m.evaluation.yTrue, m.evaluation.yPred);
  await writeBundle(dir, m, bundle.history);
  return { from, to, dates: m.evaluation.dates.filter((_, j) => !Object.is(m.evaluation.yPred[j], bundle.manifest.evaluation.yPred[j])) };
}

interface Service {
  app: FastifyInstance;
  url: string;
}

async function serve(bundleDir: string, dbDir: string): Promise<Service> {
  const app = await buildApp({ bundleDir, apiKeys: [KEY], sqlitePath: join(dbDir, 'history.sqlite'), logger: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
}

/** A proxy in front of a service whose `misbehave` answers some requests itself (null: pass on). */
async function proxy(target: string, misbehave: (n: number, res: import('node:http').ServerResponse) => boolean): Promise<{ url: string; server: Server; seen: () => number }> {
  let n = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (misbehave(n++, res)) return;
      const headers: Record<string, string> = {};
      for (const h of ['x-api-key', 'content-type', 'accept']) if (typeof req.headers[h] === 'string') headers[h] = req.headers[h];
      fetch(target + req.url, { method: req.method, headers, body: req.method === 'GET' ? undefined : Buffer.concat(chunks) })
        .then(async (r) => {
          res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
          res.end(Buffer.from(await r.arrayBuffer()));
        })
        .catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, seen: () => n };
}

describe('forecast verify', () => {
  const tmp = tempDir('forecast-verify-');
  let bundle: LoadedBundle;
  let tamper: { from: number; to: number; dates: string[] };
  let good: Service;
  let tampered: Service;
  let other: Service;
  let deeper: Service;
  const servers: Server[] = [];

  beforeAll(async () => {
    bundle = await trainedBundle(join(tmp, 'acme'), 7);
    tamper = await tamperedCopy(bundle, join(tmp, 'acme-tampered'));
    await trainedBundle(join(tmp, 'other'), 8);
    await trainedBundle(join(tmp, 'deeper'), 7, 9);
    [good, tampered, other, deeper] = await Promise.all([
      serve(join(tmp, 'acme'), join(tmp, 'db-good')),
      serve(join(tmp, 'acme-tampered'), join(tmp, 'db-tampered')),
      serve(join(tmp, 'other'), join(tmp, 'db-other')),
      serve(join(tmp, 'deeper'), join(tmp, 'db-deeper')),
    ]);
  });
  afterAll(async () => {
    await Promise.all([good, tampered, other, deeper].map((s) => s?.app.close()));
    for (const s of servers) s.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('passes on a service serving the bundle: every evaluation forecast equal bit for bit', async () => {
    const r = await verifyDeployment(bundle, { url: good.url, apiKey: KEY, batch: 300 });
    const n = bundle.history.date.length;
    const dates = bundle.manifest.evaluation.dates.length;
    expect(r).toMatchObject({ passed: true, dates, equal: dates, differing: 0, servedModel: 'acme@1', differences: [], card: null });
    // History in batches of 300, then the evaluation bars again.
    expect(r.requests).toBe(Math.ceil(n / 300) + Math.ceil(dates / 300));
    expect(r.history).toMatchObject({ barsSent: n, serviceBars: n, added: 0 });
    expect(r.metrics.deployed).toEqual(r.metrics.offline);
    expect(r.metrics.offline).toEqual(bundle.manifest.metrics.test);
  });

  it('adds missing bars to an empty history before reading forecasts (look-ahead final)', async () => {
    // The service seeded with only the first half of the history: verify must send the rest first,
    // or the last bar of each batch would be forecast with a provisional atr.
    const half = sliceSeries(bundle.history, 0, 400);
    // The store is seeded from the served bundle's history: here, its first 400 bars.
    const app = await buildApp({ bundles: [{ ...bundle, history: half }], apiKeys: [KEY], sqlitePath: join(tmp, 'db-half', 'h.sqlite'), logger: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const r = await verifyDeployment(bundle, { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, apiKey: KEY, batch: 97 });
      expect(r.passed).toBe(true);
      expect(r.history.added).toBe(bundle.history.date.length - 400);
    } finally {
      await app.close();
    }
  });

  it('fails on a tampered model, naming the dates, both values and the cause', async () => {
    const r = await verifyDeployment(bundle, { url: tampered.url, apiKey: KEY });
    expect(r.passed).toBe(false);
    expect(r.differing).toBe(tamper.dates.length);
    expect(r.differences.map((d) => d.date)).toEqual(tamper.dates.slice(0, 10));
    for (const d of r.differences) {
      expect(d.offline).toBe(tamper.from);
      expect(d.deployed).toBe(tamper.to);
      expect(d.cause).toBe('model');
      expect(d.explanation).toContain('not a forecast the bundle\'s tree can give');
    }
    // A one-ulp leaf leaves the model card as it was but for (perhaps) the last bits of its test metrics.
    for (const c of r.card!) expect(c.field).toMatch(/^metrics\.test\./);
  });

  it('tells from the model card that the service serves another model of the same history', async () => {
    const r = await verifyDeployment(bundle, { url: deeper.url, apiKey: KEY });
    expect(r.passed).toBe(false);
    expect(r.differences.length).toBeGreaterThan(0);
    const fields = r.card!.map((c) => c.field);
    expect(fields).toEqual(expect.arrayContaining(['model.node_count', 'created_at', 'metrics.test.mae']));
    expect(r.notes.join('\n')).toContain('serves another bundle under acme@1');
  });

  it('CLI: passes with a chart and JSON report; fails with exit 1 naming the first dates', async () => {
    const chartDir = join(tmp, 'charts');
    const ok = await runCli('verify', join(tmp, 'acme'), '--url', good.url, '--api-key', KEY, '--chart-dir', chartDir, '--json');
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout) as { passed: boolean; chart: { svg: string; png: string }; forecasts: unknown[] };
    expect(report.passed).toBe(true);
    expect(report.forecasts).toHaveLength(bundle.manifest.evaluation.dates.length);
    expect(report.chart.svg).toBe(join(chartDir, 'deployment.svg'));
    expect(existsSync(report.chart.svg) && existsSync(report.chart.png)).toBe(true);

    const bad = await runCli('verify', join(tmp, 'acme'), '--url', tampered.url, '--api-key', KEY, '--no-chart');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`FAIL: ${tamper.dates.length} of ${bundle.manifest.evaluation.dates.length}`);
    expect(bad.stdout).toMatch(new RegExp(`${tamper.dates[0]}\\s+${tamper.from}\\s+${tamper.to}\\s+model`));
    expect(bad.stdout).toMatch(/offline \(bundle\)/);
    expect(bad.stdout).toMatch(/deployed \(service\)/);
    expect(bad.stderr).toContain(`verification failed: the service's forecasts differ from acme@1's evaluation on ${tamper.dates.length} of`);
  });

  it('stops on a history conflict, naming the bar, and never replaces stored bars', async () => {
    // `other` serves a different synthetic history on the same dates.
    const err = await verifyDeployment(bundle, { url: other.url, apiKey: KEY }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceRequestError);
    expect((err as ServiceRequestError).serviceCode).toBe('history_conflict');
    expect((err as Error).message).toMatch(/stored history differs from the bundle's: .*2015-01-05/);
    const after = await fetch(`${other.url}/models/acme`, { headers: { 'x-api-key': KEY } }).then((r) => r.json() as Promise<{ history: { version: number } }>);
    expect(after.history.version).toBe(1);
  });

  it('retries 429, 5xx and dropped connections with backoff, honouring Retry-After', async () => {
    const flaky = await proxy(good.url, (n, res) => {
      if (n === 0) res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"code":"unavailable","message":"starting","request_id":"x"}}');
      else if (n === 1) res.writeHead(429, { 'retry-after': '0' }).end();
      else if (n === 4) res.destroy();
      else return false;
      return true;
    });
    servers.push(flaky.server);
    const retries: string[] = [];
    const r = await verifyDeployment(bundle, { url: flaky.url, apiKey: KEY, batch: 300, backoffMs: 1, onRetry: (i) => retries.push(i.cause) });
    expect(r.passed).toBe(true);
    expect(r.retries).toBe(3);
    expect(retries.slice(0, 2)).toEqual(['503', '429']);
  });

  it('times out a request that gets no answer, then gives up after the retries', async () => {
    const silent = await proxy(good.url, () => true);
    servers.push(silent.server);
    const err = await verifyDeployment(bundle, { url: silent.url, apiKey: KEY, timeoutMs: 150, retries: 1, backoffMs: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceRequestError);
    expect((err as ServiceRequestError).serviceCode).toBe('timeout');
    expect((err as Error).message).toMatch(/failed after 2 attempts: no answer within 150 ms/);
    expect(silent.seen()).toBe(2);
  });

  it('explains a refused key, an unknown model and an unreachable service', async () => {
    const wrong = await runCli('verify', join(tmp, 'acme'), '--url', good.url, '--api-key', 'not-the-right-key-0000', '--no-chart');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('answered 401 unauthorized: the API key was refused');
    const none = await verifyDeployment(bundle, { url: good.url }).catch((e: Error) => e.message);
    expect(none).toContain('no API key was sent: pass --api-key KEY or set API_KEY');
    const unknown = await verifyDeployment(bundle, { url: good.url, apiKey: KEY, model: 'nosuch' }).catch((e: Error) => e.message);
    expect(unknown).toMatch(/POST http:\/\/127\.0\.0\.1:\d+\/models\/nosuch\/forecast answered 404 unknown_model/);
    const pinned = await verifyDeployment(bundle, { url: good.url, apiKey: KEY, model: 'acme@1' });
    expect(pinned.endpoint).toBe(`${good.url}/models/acme/versions/1/forecast`);
    expect(pinned.passed).toBe(true);
    const gone = createServer();
    await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
    const port = (gone.address() as AddressInfo).port;
    await new Promise((resolve) => gone.close(resolve));
    const closed = await verifyDeployment(bundle, { url: `http://127.0.0.1:${port}`, apiKey: KEY, retries: 1, backoffMs: 1 }).catch((e: Error) => e.message);
    expect(closed).toMatch(/failed after 2 attempts: fetch failed \(ECONNREFUSED\)/);
    const badUrl = await runCli('verify', join(tmp, 'acme'), '--url', 'localhost:8000', '--api-key', KEY);
    expect(badUrl.stderr).toContain('--url must be http or https');
  });
});

describe('diagnosing a differing forecast', () => {
  const tmp = tempDir('forecast-diagnose-');
  let bundle: LoadedBundle;
  let diagnoser: MismatchDiagnoser;
  beforeAll(async () => {
    bundle = await trainedBundle(join(tmp, 'b'), 7);
    diagnoser = new MismatchDiagnoser(bundle);
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  /** The forecast a service gives when the date's bar is its newest (next bar not yet stored). */
  function provisionalForecast(i: number): number {
    const engine = bundle.pipeline.featureSet.createEngine(sliceSeries(bundle.history, 0, i + 1));
    const row = new Float64Array(bundle.pipeline.featureSet.featureNames.length);
    engine.featuresAt(i, row);
    return bundle.pipeline.predictFeatures(row);
  }

  it('names atr when the service answered before the next bar arrived', () => {
    // A date whose forecast moves when its next bar arrives (the tree reads atr through its splits).
    const { featureSet } = bundle.pipeline;
    const table = featureSet.computeBatch(bundle.history);
    const k = table.values.cols;
    const finalForecast = (i: number) => bundle.pipeline.predictFeatures(table.values.data.slice(i * k, (i + 1) * k));
    let i = featureSet.warmupBars;
    while (i < table.modelRowEnd && Object.is(provisionalForecast(i), finalForecast(i))) i++;
    expect(i).toBeLessThan(table.modelRowEnd);
    const d = diagnoser.diagnose(bundle.history.date[i], provisionalForecast(i));
    expect(d.cause).toBe('lookahead');
    expect(d.features).toEqual(['atr']);
    expect(d.explanation).toContain(`without the bar of ${bundle.history.date[i + 1]} in its history`);
  });

  it('names the split features when another leaf of the same tree answered', () => {
    const tree = bundle.manifest.model as TreeState;
    const { dates, yPred } = bundle.manifest.evaluation;
    const otherLeaf = tree.value.find((v, node) => tree.leftChild[node] === -1 && !Object.is(v, yPred[0]))!;
    const d = diagnoser.diagnose(dates[0], otherLeaf);
    expect(d.cause).toBe('features');
    expect(d.splits!.length).toBeGreaterThan(0);
    expect(d.features.length).toBeGreaterThan(0);
    for (const f of d.features) expect(bundle.manifest.featureSet.featureNames).toContain(f);
    expect(d.splits![0].node).toBe(Math.min(...d.splits!.map((s) => s.node)));
  });

  it('blames the model for a value no leaf holds, and reports a missing forecast', () => {
    const { dates, yPred } = bundle.manifest.evaluation;
    expect(diagnoser.diagnose(dates[1], nextUp(yPred[1])).cause).toBe('model');
    const none = diagnoser.diagnose(dates[1], null, 'insufficient history: rsi=NaN not defined at this bar');
    expect(none.cause).toBe('no_forecast');
    expect(none.explanation).toContain("the service's history lacks earlier bars");
  });
});
