/**
 * Property-based fuzz of every endpoint through `app.inject()` (fastify's in-process injection:
 * no sockets, so thousands of requests a run): split frames, MLflow, OIP v2, model cards, admin,
 * health and unknown routes, with valid bars in the mix so that the history keeps changing, and
 * every kind of damage to bodies, headers, URLs and methods (./requests.ts). The properties are
 * the judge's (./harness.ts). Node's HTTP parser is bypassed here: socket.test.ts covers it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEY } from './requests.js';
import { checkService, checkStore, createWorld, formatReport, fuzz, viaInject, type World } from './harness.js';
import { fuzzSettings } from './settings.js';

/** Generated requests per CI run. */
const CI_RUNS = 2500;
const settings = fuzzSettings(CI_RUNS);
const RUNS = settings.runs(CI_RUNS);

describe(`fuzz via inject: ${RUNS} generated requests (seed ${settings.seed})`, () => {
  let world: World;
  beforeAll(async () => {
    world = await createWorld();
  });
  afterAll(async () => {
    await world?.close();
  });

  const get = async (path: string, key: boolean) => {
    const r = await world.app.inject({ method: 'GET', url: path, headers: key ? { 'x-api-key': KEY } : {} });
    return { status: r.statusCode, text: r.body };
  };

  it('never a 5xx, a hang or a crash; errors in the service shape; the history changed only by valid bars', { timeout: Math.max(120_000, RUNS * 100) }, async () => {
    console.log(`fuzz (inject): seed ${settings.seed}, ${RUNS} cases${settings.scaled ? '' : ' (CI)'}; replay with FUZZ_SEED=${settings.seed} FUZZ_RUNS=${RUNS}`);
    const started = performance.now();
    const report = await fuzz({
      world,
      seed: settings.seed,
      runs: RUNS,
      path: settings.path,
      send: (c) => viaInject(world.app, c),
      check: () => checkService(world, get),
      checkEvery: 100,
    });
    const after: string[] = [];
    for (const final of [() => checkService(world, get), () => checkStore(world)]) await final().catch((err: Error) => after.push(err.message));
    const seconds = (performance.now() - started) / 1000;
    const stats = [...world.stats.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k}: ${n}`);
    console.log(
      `fuzz (inject): ${report.cases} cases in ${report.seconds.toFixed(1)} s (${seconds.toFixed(1)} s with shrinking), ${world.writes} writes; answers by kind and status:\n  ${stats.join('\n  ')}`,
    );
    console.log(`slowest answers:\n  ${world.slowest.sort((a, b) => b.ms - a.ms).slice(0, 10).map((x) => `${x.ms.toFixed(0)} ms ${x.label}`).join('\n  ')}`);
    expect(world.crashes, 'uncaught exceptions or unhandled rejections while fuzzing').toEqual([]);
    expect(report.failures.length, `defects found (seed ${settings.seed}):\n\n${formatReport('inject.test.ts', settings.seed, report)}`).toBe(0);
    expect(after, 'the service and the store after the run').toEqual([]);
    // The mix must keep valid requests in it, or the history properties mean nothing.
    expect(world.writes, 'acknowledged writes').toBeGreaterThan(RUNS / 50);
  });
});
