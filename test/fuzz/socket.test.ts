/**
 * The same generated requests as inject.test.ts, a smaller sample, written on raw `node:net`
 * sockets to a listening server, with wire-level damage on top (./wire.ts): Node's HTTP parser and
 * the service's clientError handler are in the path here. Same judge (./harness.ts), plus: a
 * request pipelined behind a cleanly framed one is answered too, and a request whose body never
 * completes is answered 408 within the request timeout, not left hanging.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkService, checkStore, createWorld, formatReport, fuzz, FuzzFailure, describe as describeRequest, type World } from './harness.js';
import { KEY, recipeArb, renderRequest, type Concrete, type Recipe } from './requests.js';
import { fuzzSettings } from './settings.js';
import { exchange, outcomeOf, stalls, wireArb, wireBytes, wireClean, type Wire } from './wire.js';

/** Generated requests per CI run (scaled with the inject run's FUZZ_RUNS). */
const CI_RUNS = 300;
const settings = fuzzSettings(2500);
const RUNS = settings.runs(CI_RUNS);
/** Short, so that requests whose body never completes are answered (408) well within the answer bound. */
const REQUEST_TIMEOUT_MS = 800;

interface SocketCase {
  recipe: Recipe;
  wire: Wire;
}

describe(`fuzz via raw sockets: ${RUNS} generated requests (seed ${settings.seed})`, () => {
  let world: World;
  let port = 0;
  beforeAll(async () => {
    world = await createWorld({ requestTimeoutMs: REQUEST_TIMEOUT_MS, headersTimeoutMs: REQUEST_TIMEOUT_MS });
    await world.app.listen({ port: 0, host: '127.0.0.1' });
    const addr = world.app.server.address();
    port = typeof addr === 'object' && addr ? addr.port : 0;
  });
  afterAll(async () => {
    await world?.close();
  });

  const get = async (path: string, key: boolean) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: key ? { 'x-api-key': KEY } : {} });
    return { status: res.status, text: await res.text() };
  };

  /** What was written for each judged request (the judge sees the body as the server reads it). */
  const written = new WeakMap<Concrete, { bytes: Buffer; heads: boolean[]; want: number; wire: Wire; sent: Concrete }>();

  const render = ({ recipe, wire }: SocketCase): Concrete => {
    const sent = renderRequest(recipe, world.histories);
    const { bytes, asRead, expectHead } = wireBytes(sent, wire, port);
    const clean = wireClean(wire);
    // Bytes Node's parser may refuse before any route: then neither the route nor the key decides the answer.
    const judged: Concrete = {
      ...sent,
      body: asRead,
      wire: bytes,
      clean: sent.clean && clean,
      routed: sent.routed && clean,
      pathOk: sent.pathOk && clean,
      label: `${sent.label} wire:${JSON.stringify(wire)}`,
    };
    const pipelined = wire.pipeline && !stalls(wire, sent);
    written.set(judged, { bytes, heads: [expectHead, false], want: pipelined ? 2 : 1, wire, sent });
    return judged;
  };

  const send = async (c: Concrete) => {
    const w = written.get(c)!;
    const x = await exchange(port, w.bytes, w.wire.splits, w.heads, w.want);
    const first = x.responses[0];
    // The request pipelined behind a cleanly framed one must be answered as well (unless the first answer closed the connection).
    if (w.want === 2 && first && !x.hung) {
      const second = x.responses[1];
      const closing = String(first.headers.connection ?? '').toLowerCase() === 'close';
      if (second && second.status >= 500) throw new FuzzFailure(`pipelined-5xx | ${second.status}`, `the pipelined GET /healthz answered ${second.status}\n${describeRequest(c, outcomeOf(x), world)}`);
      if (wireClean(w.wire) && !closing && !x.closed && second?.status !== 200)
        throw new FuzzFailure('pipelined', `the GET /healthz pipelined behind the request was not answered 200 (${second?.status ?? 'no answer'})\n${describeRequest(c, outcomeOf(x), world)}`);
    }
    return outcomeOf(x);
  };

  it('never a 5xx, a hang or a crash through Node’s HTTP parser; the history changed only by valid bars', { timeout: Math.max(120_000, RUNS * 400) }, async () => {
    console.log(`fuzz (sockets): seed ${settings.seed}, ${RUNS} cases${settings.scaled ? '' : ' (CI)'}; replay with FUZZ_SEED=${settings.seed} FUZZ_RUNS=${settings.runs(2500)}`);
    const started = performance.now();
    const report = await fuzz<SocketCase>({
      world,
      seed: settings.seed,
      runs: RUNS,
      path: settings.path,
      arbitrary: fc.record({ recipe: recipeArb, wire: wireArb }),
      render,
      send,
      check: () => checkService(world, get),
      checkEvery: 50,
      shrinkMs: 8_000,
      shrinkTotalMs: 40_000,
    });
    const after: string[] = [];
    for (const final of [() => checkService(world, get), () => checkStore(world)]) await final().catch((err: Error) => after.push(err.message));
    const seconds = (performance.now() - started) / 1000;
    const stats = [...world.stats.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k}: ${n}`);
    console.log(`fuzz (sockets): ${report.cases} cases in ${report.seconds.toFixed(1)} s (${seconds.toFixed(1)} s with shrinking), ${world.writes} writes:\n  ${stats.join('\n  ')}`);
    expect(world.crashes, 'uncaught exceptions or unhandled rejections while fuzzing').toEqual([]);
    expect(report.failures.length, `defects found (seed ${settings.seed}):\n\n${formatReport('socket.test.ts', settings.seed, report)}`).toBe(0);
    expect(after, 'the service and the store after the run').toEqual([]);
    expect(world.writes, 'acknowledged writes').toBeGreaterThan(RUNS / 50);
  });
});
