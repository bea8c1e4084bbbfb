/**
 * The fuzz harness: the real app over real bundles, an expected history per model, one judge for
 * every answer, and a runner that finds every distinct defect in a run and shrinks each one.
 *
 * The judge's properties, for every generated request:
 *  - answered, within ANSWER_BOUND_MS (no hang), never a 5xx;
 *  - every error in the service's shape `{error: {code, message, request_id}}`, its request id the
 *    x-request-id header, and that header never an echo of an ill-formed incoming id;
 *  - a keyed route refuses a request without its kind of key (401/403), whatever the rest of it;
 *  - a path served with another method is a 405 naming that method in Allow, an unknown path a 404;
 *  - a clean request (valid key, JSON content type, well-formed URL) gets exactly what the
 *    documented formats say (oracle.ts): 413 over the size limit, a 4xx when invalid, 409 on a
 *    conflicting bar, else 200;
 *  - a 200 that merged bars merged exactly the bars the request held, with the counts it reports;
 *    nothing else ever changes the stored history: every model's stored version is read after
 *    every request, GET /models is compared periodically, the store's full content at the end,
 *    bar for bar.
 * A defect is recorded by its signature (kind, and the route unless the cause is the framework's,
 * Node's parser's or a logged error's), so that one run reports each distinct defect once.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import type { Bar } from '../../src/data/bars.js';
import { buildApp, type AppOptions } from '../../src/serve/app.js';
import { tinySeries, writeTinyBundle, type TinySpec } from '../serve/helpers/bundles.js';
import { tempDir } from '../serve/helpers/http.js';
import { DEFAULT_MODEL, ExpectedHistory, LONG_MODEL, MODELS, parseBody, readMlflow, readOip, readSplit, type Verdict } from './oracle.js';
import { ADMIN_KEY, GET_PATHS, KEY, MAX_BODY, NAMES, VERSIONS, recipeArb, renderRequest, type Concrete, type Recipe } from './requests.js';

/** Each request must be answered within this (a generous bound: the slowest case takes well under a second). */
export const ANSWER_BOUND_MS = 5000;

export const SPECS: readonly TinySpec[] = [
  { name: 'acme', version: '1', seed: 11, featureSet: 'reference' },
  { name: 'acme', version: '2', seed: 11, featureSet: 'causal', maxDepth: 4 },
  { name: 'beta', version: '1', seed: 5, featureSet: 'reference', maxDepth: 5 },
  { name: LONG_MODEL, version: '1', seed: 5, featureSet: 'causal', maxDepth: 3 },
];

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

export interface Outcome {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  ms: number;
  /** No answer within ANSWER_BOUND_MS. */
  hung: boolean;
  /** The connection closed with no answer at all (raw sockets). */
  noAnswer?: boolean;
  /** ... after the server reset it while the request was still being written. */
  resetWhileWriting?: boolean;
}

export class FuzzFailure extends Error {
  constructor(
    /** What kind of defect, where: requests with the same signature are the same defect. */
    readonly signature: string,
    message: string,
  ) {
    super(message);
  }
}

export interface World {
  app: FastifyInstance;
  histories: Map<string, ExpectedHistory>;
  /** Each model's history as seeded from its bundle. */
  initial: Map<string, Map<string, Bar>>;
  /** Error-level log lines of the app (a 500 is logged with its stack). */
  errorLogs: string[];
  /** Process-level errors seen while fuzzing (uncaught exceptions, unhandled rejections). */
  crashes: unknown[];
  stats: Map<string, number>;
  /** The slowest answers (for the run's summary). */
  slowest: { ms: number; label: string }[];
  writes: number;
  close(): Promise<void>;
}

/** Builds the app over freshly written bundles, with an error-log capture and crash listeners. */
export async function createWorld(options: Partial<AppOptions> = {}): Promise<World> {
  const tmp = tempDir('forecast-fuzz-');
  const modelsDir = join(tmp.dir, 'models');
  for (const spec of SPECS) await writeTinyBundle(join(modelsDir, spec.name, spec.version), spec);
  const errorLogs: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) errorLogs.push(line);
      done();
    },
  });
  const app = await buildApp({
    modelsDir,
    sqlitePath: join(tmp.dir, 'history.sqlite'),
    apiKeys: [KEY],
    adminApiKeys: [ADMIN_KEY],
    logger: { level: 'error', stream },
    ...options,
  });
  await app.ready();
  const histories = new Map<string, ExpectedHistory>();
  const initial = new Map<string, Map<string, Bar>>();
  for (const name of Object.keys(MODELS)) {
    // The store is seeded from the newest bundle's history.
    const newest = SPECS.filter((s) => s.name === name).at(-1)!;
    const s = tinySeries(newest);
    const bars: Bar[] = s.date.map((date, i) => ({ date, open: s.open[i], high: s.high[i], low: s.low[i], close: s.close[i], volume: s.volume[i] }));
    const stored = await app.forecastService.store.load(name);
    histories.set(name, new ExpectedHistory(bars, stored.version));
    initial.set(name, new Map(bars.map((b) => [b.date, b])));
  }
  const crashes: unknown[] = [];
  const onCrash = (err: unknown) => crashes.push(err);
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  return {
    app,
    histories,
    initial,
    errorLogs,
    crashes,
    stats: new Map(),
    slowest: [],
    writes: 0,
    async close() {
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onCrash);
      await app.close();
      tmp.cleanup();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Running a request

export async function viaInject(app: FastifyInstance, c: Concrete): Promise<Outcome> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), ANSWER_BOUND_MS)));
  try {
    const res = await Promise.race([
      app.inject({ method: c.method as 'GET', url: c.url, headers: c.headers, ...(c.body !== undefined ? { payload: c.body } : {}) }),
      hang,
    ]);
    const ms = performance.now() - t0;
    if (res === 'hang') return { status: 0, headers: {}, text: '', ms, hung: true };
    // A synchronous block longer than the bound finishes before the timer can fire: measured here.
    return { status: res.statusCode, headers: res.headers as Outcome['headers'], text: res.body, ms, hung: ms > ANSWER_BOUND_MS };
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Reports

function escapeBytes(b: Buffer, max: number): string {
  let s = '';
  for (let i = 0; i < Math.min(b.length, max); i++) {
    const c = b[i];
    s += c === 0x5c ? '\\\\' : c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : c === 0x0a ? '\\n' : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return b.length > max ? `${s}... (${b.length} bytes in all)` : s;
}

function shorten(s: string, max = 300): string {
  return s.length > max ? `${s.slice(0, max)}... (${s.length} characters)` : s;
}

/** The request and its answer, as a failure report gives them; the full request is saved as JSON beside. */
export function describe(c: Concrete, o: Outcome | undefined, world?: World): string {
  const headers = Object.entries(c.headers)
    .map(([k, v]) => `    ${k}: ${Array.isArray(v) ? v.map((x) => shorten(x, 120)).join(' | ') : shorten(v, 200)}`)
    .join('\n');
  const lines = [`  ${c.method} ${shorten(c.url, 400)}`, headers, `  body${c.wire ? ' as the server reads it' : ''}: ${c.body === undefined ? '(none)' : `b"${escapeBytes(c.body, 1500)}"`}`];
  if (c.wire) lines.push(`  on the wire: b"${escapeBytes(c.wire, 2500)}"`);
  if (o) {
    lines.push(`  answer: ${o.hung ? `none within ${ANSWER_BOUND_MS} ms` : o.noAnswer ? 'connection closed without an answer' : `${o.status} in ${o.ms.toFixed(0)} ms: ${shorten(o.text, 600)}`}`);
    const rid = o.headers['x-request-id'];
    if (world && typeof rid === 'string') {
      const logged = world.errorLogs.filter((l) => l.includes(`"reqId":"${rid}"`));
      if (logged.length) lines.push(`  server log:\n${logged.map((l) => `    ${shorten(l, 4000)}`).join('\n')}`);
    }
  }
  return lines.join('\n');
}

/**
 * Writes a failing request where a developer can replay it (body as base64), with what the stored
 * histories held then beyond the bundles' own bars (`storedSince`): a defect may need earlier
 * requests' bars, which a fresh service gets back by one `?replace=true` request per model.
 */
export function saveRepro(signature: string, c: Concrete, world: World): string {
  const dir = join(tmpdir(), 'forecast-fuzz-failures');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${signature.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 120)}.json`);
  const storedSince: Record<string, Bar[]> = {};
  for (const [name, e] of world.histories) {
    const seed = world.initial.get(name)!;
    storedSince[name] = e.sorted().filter((b) => {
      const s = seed.get(b.date);
      return !s || s.open !== b.open || s.high !== b.high || s.low !== b.low || s.close !== b.close || s.volume !== b.volume;
    });
  }
  writeFileSync(file, JSON.stringify({ method: c.method, url: c.url, headers: c.headers, bodyBase64: c.body?.toString('base64') ?? null, wireBase64: c.wire?.toString('base64'), storedSince }, null, 2));
  return file;
}

// ---------------------------------------------------------------------------------------------
// The judge

/** Kinds of defect whose cause is the status and code, whatever the route (the framework's own answers). */
const ROUTE_INDEPENDENT = new Set(['request-id', 'error-shape']);

function fail(kind: string, c: Concrete, o: Outcome | undefined, what: string, world: World): never {
  // Node's parser names its refusal (HPE_ codes, in the message of the clientError answer).
  const hpe = o ? /\((HPE_[A-Z_]+)\)/.exec(String(json(o)?.error?.message ?? ''))?.[1] : undefined;
  const code = hpe ?? (o ? errorCode(o) : '');
  // fastify's own answers (FST_ codes) come from the router or the framework, Node's (HPE_) from its parser, whatever the route.
  const where = ROUTE_INDEPENDENT.has(kind) || code.startsWith('FST_') || code.startsWith('HPE_') ? '' : ` | ${routeLabel(c)}`;
  // The router refusing a request that should have been served is one defect, whatever status was due.
  if ((code.startsWith('FST_') || code.startsWith('HPE_')) && (kind === 'unexpected-status' || kind === 'admin') && c.clean) kind = 'refused-valid';
  // A 500's cause is in the server log: one signature per logged error, whatever the route.
  if (kind === '5xx' && o) {
    const rid = o.headers['x-request-id'];
    const line = world.errorLogs.find((l) => typeof rid === 'string' && l.includes(`"reqId":"${rid}"`));
    const logged = line ? (JSON.parse(line) as { err?: { message?: string } }).err?.message : undefined;
    if (logged) throw new FuzzFailure(`5xx | ${o.status} ${logged.replace(/-?(Infinity|[0-9][0-9.e+-]*)/g, '#').slice(0, 120)}`, `${what}\n${describe(c, o, world)}`);
  }
  // One signature for one cause: here the what, not the status, says which.
  const status = kind === 'request-id' && what.includes('header is missing') ? 'header missing' : `${o?.status ?? '-'}${code ? ` ${code}` : ''}`;
  throw new FuzzFailure(`${kind}${where} | ${status}`, `${what}\n${describe(c, o, world)}`);
}

function routeLabel(c: Concrete): string {
  const t = c.target;
  const method = c.routed ? '' : `${c.method} `;
  switch (t.kind) {
    case 'split':
      return `${method}split:${t.route}`;
    case 'oip':
      return `${method}oip:${t.route}`;
    case 'get':
      return `${method}${GET_PATHS[t.path % GET_PATHS.length].path}`;
    default:
      return `${method}${t.kind}`;
  }
}

function json(o: Outcome): any {
  try {
    return JSON.parse(o.text);
  } catch {
    return undefined;
  }
}

function errorCode(o: Outcome): string {
  const b = json(o);
  // fastify's own error bodies carry their code at the top level.
  return typeof b?.error?.code === 'string' ? b.error.code : typeof b?.code === 'string' ? b.code : '';
}

interface Resolved {
  model: string;
  version: string;
  replace: boolean;
}

/** The query as fastify reads it (fast-querystring): `&`-separated, empty parts skipped, `+` a space, bad escapes kept as written. */
function parseQuery(url: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const q = url.indexOf('?');
  if (q < 0) return out;
  const decode = (x: string) => {
    const plus = x.replace(/\+/g, ' ');
    try {
      return decodeURIComponent(plus);
    } catch {
      return plus;
    }
  };
  for (const part of url.slice(q + 1).split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = decode(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : decode(part.slice(eq + 1));
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return out;
}

/** Which model and version a forecast URL names, and its replace flag, per the routes' schemas. */
function resolveTarget(c: Concrete): Verdict<Resolved> {
  const t = c.target;
  const no = (why: string) => ({ ok: false as const, why });
  const query = parseQuery(c.url);
  const allowed = t.kind === 'split' ? (t.route === 'versioned' ? ['replace'] : ['version', 'replace']) : t.kind === 'mlflow' ? ['version', 'replace', 'model'] : null;
  let replace = false;
  if (allowed) {
    for (const [k, vs] of query) {
      if (!allowed.includes(k)) return no(`query ${k}`);
      if (vs.length !== 1) return no(`query ${k} repeated`);
      const v = vs[0];
      if (k === 'replace' && !['true', 'false', '1', '0'].includes(v)) return no('replace');
      if (k !== 'replace' && ([...v].length < 1 || [...v].length > 128)) return no(`query ${k} length`);
    }
    replace = ['true', '1'].includes(query.get('replace')?.[0] ?? '');
  }
  const pathName = t.kind === 'split' || t.kind === 'oip' ? NAMES[t.name % NAMES.length].value : null;
  const pathVersion = t.kind === 'split' || t.kind === 'oip' ? VERSIONS[t.version % VERSIONS.length].value : null;
  let model: string | null | undefined;
  let version: string | null | undefined;
  if (t.kind === 'split') {
    model = t.route === 'default' ? DEFAULT_MODEL : pathName;
    version = t.route === 'versioned' ? pathVersion : query.get('version')?.[0];
  } else if (t.kind === 'mlflow') {
    model = query.get('model')?.[0] ?? DEFAULT_MODEL;
    version = query.get('version')?.[0];
  } else if (t.kind === 'oip') {
    model = pathName;
    version = t.route === 'versioned' ? pathVersion : undefined;
  } else return no('not a forecast route');
  if (model === null || version === null) return no('bad URL');
  if ([...model].length > 128 || (version !== undefined && [...version].length > 128)) return no('path parameter too long');
  if (!Object.hasOwn(MODELS, model)) return no('unknown model');
  const versions = MODELS[model];
  const v = version ?? versions[versions.length - 1];
  if (!versions.includes(v)) return no('unknown version');
  return { ok: true, value: { model, version: v, replace } };
}

/** The bars a forecast body holds, per its protocol (and OIP's own replace flag). */
function readBody(c: Concrete): Verdict<{ bars: Bar[]; replace: boolean | null }> {
  if (c.body === undefined) return { ok: false, why: 'no body' };
  const parsed = parseBody(c.body);
  if (!parsed.ok) return parsed;
  const t = c.target;
  if (t.kind === 'oip') {
    const r = readOip(parsed.value);
    return r.ok ? { ok: true, value: { bars: r.value.bars, replace: r.value.replace } } : r;
  }
  const r = t.kind === 'mlflow' ? readMlflow(parsed.value) : readSplit(parsed.value);
  return r.ok ? { ok: true, value: { bars: r.value, replace: null } } : r;
}

function count(world: World, key: string): void {
  world.stats.set(key, (world.stats.get(key) ?? 0) + 1);
}

const sameBars = (a: readonly { date: string }[], b: readonly Bar[]) => a.length === b.length && a.every((x, i) => x.date === b[i].date);

/** Judges one answer, updating the expected history with what a 200 merged. */
export function judge(world: World, c: Concrete, o: Outcome): void {
  const t = c.target;
  count(world, `${t.kind} ${o.hung ? 'hung' : o.noAnswer ? 'no answer' : o.status}`);
  world.slowest.push({ ms: o.ms, label: `${c.method} ${c.url.slice(0, 60)} ${c.label} (${c.body?.length ?? 0} B) ${o.status}` });
  if (world.slowest.length > 40) world.slowest.sort((a, b) => b.ms - a.ms).splice(10);
  if (o.hung) fail('hang', c, o, `no answer within ${ANSWER_BOUND_MS} ms`, world);
  if (o.noAnswer) {
    // A server that closes while the client still sends gets its own answer dropped by the client's kernel (TCP reset): counted, not judged.
    if (o.resetWhileWriting) return;
    fail('no-answer', c, o, 'the connection closed without an answer', world);
  }
  if (o.status >= 500) fail('5xx', c, o, `answered ${o.status}`, world);
  if (o.status < 200) fail('status', c, o, `answered ${o.status}`, world);

  // What this request must get comes first: a wrong status is the more specific defect than a wrong error shape.
  judgeStatus(world, c, o);
  judgeShape(world, c, o);
}

/** The answer's request id and, for an error, the service's error shape. */
function judgeShape(world: World, c: Concrete, o: Outcome): void {
  // An error answer to HEAD has no body to read (the same answers to GET are judged in full).
  if (c.method === 'HEAD' && o.status >= 400) return;
  const rid = o.headers['x-request-id'];
  const sent = c.headers['x-request-id'];
  const b = o.status >= 400 ? json(o) : undefined;
  if (o.status >= 400) {
    const e = b?.error;
    if (!e || typeof e.code !== 'string' || !e.code || typeof e.message !== 'string' || typeof e.request_id !== 'string')
      fail('error-shape', c, o, 'the error is not in the service shape {error: {code, message, request_id}}', world);
    if (Object.keys(b).length !== 1) fail('error-shape', c, o, `the error body has keys besides "error": ${Object.keys(b).join(', ')}`, world);
    const ct = o.headers['content-type'];
    if (typeof ct !== 'string' || !ct.startsWith('application/json')) fail('error-shape', c, o, `an error answered with content type ${String(ct)}`, world);
  }
  if (rid === undefined && b) fail('request-id', c, o, 'the error names its request_id, but the x-request-id header is missing', world);
  if (typeof rid !== 'string' || !REQUEST_ID_RE.test(rid)) fail('request-id', c, o, `x-request-id header ${JSON.stringify(rid)} is not a request id`, world);
  if (typeof sent === 'string' && REQUEST_ID_RE.test(sent) && rid !== sent) fail('request-id', c, o, `a well-formed x-request-id ${sent} was not reused (got ${rid})`, world);
  if (b && b.error.request_id !== rid) fail('error-shape', c, o, `error.request_id ${b.error.request_id} is not the x-request-id header ${rid}`, world);
}

/** The status (and for a 200 the content) this request must get, updating the expected history. */
function judgeStatus(world: World, c: Concrete, o: Outcome): void {
  const t = c.target;
  // The router may refuse a URL (too long a parameter, a bad escape) before any route, hence before any key check.
  // ... and Node's parser a malformed request before either (its HPE_ code in the message).
  const parserRefusal = /\(HPE_[A-Z_]+\)/.test(String(json(o)?.error?.message ?? ''));
  const routerRefusal = (o.status === 400 && errorCode(o) === 'bad_url') || (o.status === 414 && errorCode(o) === 'uri_too_long') || ((o.status === 400 || o.status === 414) && c.method === 'HEAD') || parserRefusal;
  if (c.routed && c.keyOk === false) {
    if (o.status !== 401 && o.status !== 403 && !routerRefusal) fail('auth', c, o, 'a keyed route answered without its kind of key', world);
    return;
  }
  if (!c.routed && c.pathOk) {
    // No route for this method and path: never served. A path served with another method is a 405 naming
    // that method in Allow, any other path a 404 (fastify reads a body before its not-found handler, so any
    // 4xx with one).
    const served = servedMethod(t);
    const want = served === '' ? 404 : 405;
    if (c.transportClean && c.body === undefined && !routerRefusal ? o.status !== want : !(o.status >= 400 && o.status < 500))
      fail('unexpected-status', c, o, `no route ${c.method} here${served ? ` (the path is served with ${served})` : ''}, answered ${o.status}, expected ${want}`, world);
    if (o.status === 405 && !String(o.headers.allow ?? '').split(/,\s*/).includes(served))
      fail('unexpected-status', c, o, `a 405 whose Allow header ${JSON.stringify(o.headers.allow)} does not name ${served || 'a method'}`, world);
    return;
  }
  if (t.kind === 'split' || t.kind === 'mlflow' || t.kind === 'oip') return judgeForecast(world, c, o);
  if (t.kind === 'admin') {
    if (!c.clean) return;
    const bodyOk = c.body === undefined || parseBody(c.body).ok;
    const want = c.body !== undefined && c.body.length > MAX_BODY ? 413 : bodyOk ? 200 : 400;
    if (o.status !== want) fail('admin', c, o, `a clean reload answered ${o.status}, expected ${want}`, world);
    if (want === 200) {
      const b = json(o);
      if (!Array.isArray(b?.models) || !Array.isArray(b?.refused) || b.refused.length !== 0 || b.models.length === 0)
        fail('admin', c, o, 'the reload report is not {models, added, removed, kept, refused} with every bundle served', world);
    }
    return;
  }
  judgeGet(world, c, o);
}

/** The method a target's path is served with (requests.ts renders it), '' for a path no route has. */
function servedMethod(t: Concrete['target']): string {
  return t.kind === 'get' ? GET_PATHS[t.path % GET_PATHS.length].method : 'POST';
}

function judgeForecast(world: World, c: Concrete, o: Outcome): void {
  const target = resolveTarget(c);
  const body = readBody(c);
  const replace = body.ok && body.value.replace !== null ? body.value.replace : target.ok ? target.value.replace : false;
  if (o.status === 200) {
    if (!target.ok) fail('accepted-invalid', c, o, `answered 200 to a request whose URL is invalid (${target.why})`, world);
    if (!body.ok) fail('accepted-invalid', c, o, `answered 200 to a body the documented formats refuse (${body.why})`, world);
    const { model, version } = target.value;
    const bars = body.value.bars;
    const history = world.histories.get(model)!;
    const plan = history.plan(bars, replace);
    if (plan === 'conflict') fail('accepted-conflict', c, o, 'answered 200 although a submitted bar differs from the stored one and replace is off', world);
    const counts = history.apply(bars, replace);
    if (counts.added + counts.replaced > 0) world.writes++;
    const b = json(o);
    const expectHistory = { version: history.version, bars: history.bars.size, added: counts.added, replaced: counts.replaced };
    const t = c.target;
    if (t.kind === 'split') {
      if (b?.model !== `${model}@${version}`) fail('answer', c, o, `model ${b?.model}, expected ${model}@${version}`, world);
      if (!Array.isArray(b.forecasts) || !sameBars(b.forecasts, bars) || !Array.isArray(b.y_pred) || b.y_pred.length !== bars.length)
        fail('answer', c, o, 'the forecasts are not one per submitted bar, in submitted order', world);
      const h = b.history;
      const last = history.dates().at(-1);
      if (h?.version !== expectHistory.version || h.bars !== expectHistory.bars || h.added !== counts.added || h.replaced !== counts.replaced || h.unchanged !== counts.unchanged || h.last_date !== last)
        fail('answer', c, o, `history ${JSON.stringify(h)}, expected ${JSON.stringify({ ...expectHistory, unchanged: counts.unchanged, last_date: last })}`, world);
    } else if (t.kind === 'mlflow') {
      if (!Array.isArray(b?.predictions) || b.predictions.length !== bars.length) fail('answer', c, o, 'predictions are not one per submitted bar', world);
    } else {
      const p = b?.parameters;
      if (b?.model_name !== model || b.model_version !== version) fail('answer', c, o, `model ${b?.model_name}@${b?.model_version}, expected ${model}@${version}`, world);
      if (p?.history_version !== expectHistory.version || p.history_bars !== expectHistory.bars || p.added !== counts.added || p.replaced !== counts.replaced)
        fail('answer', c, o, `parameters ${JSON.stringify(p)}, expected ${JSON.stringify(expectHistory)}`, world);
      const dates = b.outputs?.find((x: { name: string }) => x.name === 'date');
      if (!Array.isArray(b.outputs) || (dates && !sameBars(dates.data.map((d: string) => ({ date: d })), bars)))
        fail('answer', c, o, 'the date output is not the submitted dates in order', world);
    }
    return;
  }
  if (!c.clean) return;
  let want: string;
  if (c.body !== undefined && c.body.length > MAX_BODY) want = '413';
  else if (!body.ok || !target.ok) want = '4xx';
  else want = world.histories.get(target.value.model)!.plan(body.value.bars, replace) === 'conflict' ? '409' : '200';
  const got = String(o.status);
  if (want === '4xx' ? !(o.status >= 400 && o.status < 500) : got !== want) {
    const why = !body.ok ? `the body is invalid: ${body.why}` : !target.ok ? `the URL is invalid: ${target.why}` : `the request is valid (${body.value.bars.length} bars)`;
    fail(want === '200' || want === '409' ? 'refused-valid' : 'unexpected-status', c, o, `a clean request answered ${got}, expected ${want}: ${why}`, world);
  }
}

function judgeGet(world: World, c: Concrete, o: Outcome): void {
  const t = c.target;
  if (t.kind !== 'get') return;
  const g = GET_PATHS[t.path % GET_PATHS.length];
  const name = NAMES[t.name % NAMES.length].value;
  const version = VERSIONS[t.version % VERSIONS.length].value;
  if (!c.clean || c.method !== 'GET' || g.method !== 'GET') return;
  const usesName = g.path.includes('{n}');
  const usesVersion = g.path.includes('{v}');
  const query = t.query;
  let valid = true;
  if (usesName && (name === null || !Object.hasOwn(MODELS, name))) valid = false;
  if (usesVersion && (version === null || !Object.hasOwn(MODELS, name ?? '') || !MODELS[name!].includes(version))) valid = false;
  if (g.query === 'version') {
    const versions = query.filter((p) => p.key === 'version');
    if (query.some((p) => p.key !== 'version') || versions.length > 1) valid = false;
    else if (versions.length === 1) {
      const v = versions[0].value ?? '';
      if (v === '' || !Object.hasOwn(MODELS, name ?? '') || !MODELS[name!].includes(v)) valid = false;
    }
  }
  if (valid ? o.status !== 200 : !(o.status >= 400 && o.status < 500))
    fail(valid ? 'refused-valid' : 'unexpected-status', c, o, `a clean GET answered ${o.status}, expected ${valid ? 200 : '4xx'}`, world);
  if (o.status !== 200) return;
  const b = json(o);
  if (g.path === '/models') {
    for (const m of b?.models ?? []) checkHistoryInfo(world, c, o, m.name, m.history);
    if ((b?.models ?? []).length !== Object.keys(MODELS).length) fail('answer', c, o, 'GET /models does not list every model', world);
  } else if (g.path === '/models/{n}' || g.path === '/models/{n}/versions/{v}') checkHistoryInfo(world, c, o, b?.name, b?.history);
}

function checkHistoryInfo(world: World, c: Concrete, o: Outcome, model: string, h: { version?: number; bars?: number; first_date?: string; last_date?: string } | undefined): void {
  const e = world.histories.get(model);
  if (!e) fail('answer', c, o, `unknown model ${model} in the answer`, world);
  const dates = e.dates();
  if (h?.version !== e.version || h.bars !== e.bars.size || h.first_date !== dates[0] || h.last_date !== dates.at(-1))
    fail('history', c, o, `model ${model}: history ${JSON.stringify(h)}, expected version ${e.version}, ${e.bars.size} bars, ${dates[0]} to ${dates.at(-1)}`, world);
}

/**
 * The judge, then the store's version of every model (one indexed read each): a request that did
 * not answer a 200 with what it merged must have left every history as it was.
 */
export async function judgeAndCheckStore(world: World, c: Concrete, o: Outcome): Promise<void> {
  let failure: FuzzFailure | undefined;
  try {
    judge(world, c, o);
  } catch (err) {
    if (!(err instanceof FuzzFailure)) throw err;
    failure = err;
  }
  const moved: string[] = [];
  for (const [name, e] of world.histories) {
    const v = await world.app.forecastService.store.version(name);
    if (v !== e.version) moved.push(`${name}: stored version ${v}, expected ${e.version}`);
  }
  if (failure) {
    if (moved.length) throw new FuzzFailure(failure.signature, `${failure.message}\n  and the request changed the stored history all the same (${moved.join('; ')})`);
    throw failure;
  }
  if (moved.length) fail('history', c, o, `the stored history changed without a 200 that merged it (${moved.join('; ')})`, world);
}

// ---------------------------------------------------------------------------------------------
// Checks between and after cases

/** The service is alive and its model list reports exactly the expected histories. */
export async function checkService(world: World, get: (path: string, key: boolean) => Promise<{ status: number; text: string }>): Promise<void> {
  const health = await get('/healthz', false);
  if (health.status !== 200) throw new Error(`/healthz answered ${health.status} after fuzzing: ${health.text.slice(0, 300)}`);
  const res = await get('/models', true);
  if (res.status !== 200) throw new Error(`GET /models answered ${res.status}: ${res.text.slice(0, 300)}`);
  for (const m of JSON.parse(res.text).models as { name: string; history: { version: number; bars: number; last_date: string } }[]) {
    const e = world.histories.get(m.name)!;
    if (m.history.version !== e.version || m.history.bars !== e.bars.size || m.history.last_date !== e.dates().at(-1))
      throw new FuzzFailure(
        `history | ${m.name}`,
        `the stored history of ${m.name} moved without an acknowledged write: GET /models says ${JSON.stringify(m.history)}, expected version ${e.version}, ${e.bars.size} bars to ${e.dates().at(-1)}`,
      );
  }
}

/**
 * After a defect on a request that may have written, the expected histories are taken from the
 * store again: one defect is reported once, not again by every later request it would confuse.
 */
export async function resync(world: World): Promise<void> {
  for (const [name, e] of world.histories) {
    const { version, bars } = await world.app.forecastService.store.load(name);
    e.bars.clear();
    for (let i = 0; i < bars.date.length; i++)
      e.bars.set(bars.date[i], { date: bars.date[i], open: bars.open[i], high: bars.high[i], low: bars.low[i], close: bars.close[i], volume: bars.volume[i] });
    e.version = version;
  }
}

/** The store holds exactly the expected history of every model, bar for bar. */
export async function checkStore(world: World): Promise<void> {
  for (const [name, e] of world.histories) {
    const { version, bars } = await world.app.forecastService.store.load(name);
    const want = e.sorted();
    const problems: string[] = [];
    if (version !== e.version) problems.push(`version ${version}, expected ${e.version}`);
    if (bars.date.length !== want.length) problems.push(`${bars.date.length} bars, expected ${want.length}`);
    for (let i = 0; i < Math.min(want.length, bars.date.length) && problems.length < 5; i++) {
      const w = want[i];
      const got = { date: bars.date[i], open: bars.open[i], high: bars.high[i], low: bars.low[i], close: bars.close[i], volume: bars.volume[i] };
      if (got.date !== w.date || got.open !== w.open || got.high !== w.high || got.low !== w.low || got.close !== w.close || got.volume !== w.volume)
        problems.push(`bar ${i}: stored ${JSON.stringify(got)}, expected ${JSON.stringify(w)}`);
    }
    if (problems.length) throw new Error(`the store's history of ${name} is not what the acknowledged writes made it:\n  ${problems.join('\n  ')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The runner

export interface RunOptions<T = Recipe> {
  world: World;
  seed: number;
  runs: number;
  path?: string;
  /** Sends one request, answers within ANSWER_BOUND_MS or says it hung. */
  send(c: Concrete, r: T): Promise<Outcome>;
  /** Called every `checkEvery` cases (service alive, histories as expected). */
  check(): Promise<void>;
  checkEvery: number;
  /** Recipes and the request rendered from them (socket fuzzing adds its wire-level choices). */
  arbitrary?: fc.Arbitrary<T>;
  render?(r: T): Concrete;
  /** Bound on shrinking one defect, and on shrinking them all (defects after it are reported as first found). */
  shrinkMs?: number;
  shrinkTotalMs?: number;
}

export interface RunReport {
  cases: number;
  /** Seconds of the run itself, before shrinking. */
  seconds: number;
  failures: { signature: string; occurrences: number; minimal: string; original: string; repro: string; seed: number; path: string | undefined }[];
}

/**
 * Runs every case of the seed, recording each distinct defect (by signature) instead of stopping at
 * the first; then replays each one's first occurrence with fast-check, which shrinks it to a minimal
 * request of the same defect.
 */
export async function fuzz<T = Recipe>(opts: RunOptions<T>): Promise<RunReport> {
  const arb = opts.arbitrary ?? (recipeArb as unknown as fc.Arbitrary<T>);
  const renderOf = opts.render ?? ((r: T) => renderRequest(r as unknown as Recipe, opts.world.histories));
  const seen = new Map<string, { index: number; occurrences: number; original: string; concrete: Concrete }>();
  let index = 0;
  let cases = 0;
  const started = performance.now();
  const run = await fc.check(
    fc.asyncProperty(arb, async (r) => {
      const i = index++;
      cases++;
      const c = renderOf(r);
      // FUZZ_TRACE=1: every case as it is sent, with the heap (to find what a crash or a leak followed).
      if (process.env.FUZZ_TRACE) process.stderr.write(`case ${i} heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB: ${c.method} ${c.url.slice(0, 80)} ${c.label} (${c.body?.length ?? 0} B)\n`);
      try {
        await judgeAndCheckStore(opts.world, c, await opts.send(c, r));
        if (cases % opts.checkEvery === 0) await opts.check();
      } catch (err) {
        if (!(err instanceof FuzzFailure)) throw err;
        await resync(opts.world);
        const s = seen.get(err.signature);
        if (s) s.occurrences++;
        else {
          seen.set(err.signature, { index: i, occurrences: 1, original: err.message, concrete: c });
          saveRepro(`${err.signature} first`, c, opts.world);
        }
      }
      return true;
    }),
    { seed: opts.seed, numRuns: opts.runs, path: opts.path, endOnFailure: true },
  );
  const seconds = (performance.now() - started) / 1000;
  if (run.failed) throw new Error(`the fuzz harness itself failed (seed ${opts.seed}): ${(run.errorInstance as Error)?.stack ?? String(run.errorInstance)}`);

  const failures: RunReport['failures'] = [];
  const shrinkUntil = performance.now() + (opts.shrinkTotalMs ?? 60_000);
  for (const [signature, s] of seen) {
    let minimal: Concrete | undefined;
    let minimalText = s.original;
    if (performance.now() > shrinkUntil) {
      failures.push({ signature, occurrences: s.occurrences, minimal: s.original, original: s.original, repro: saveRepro(signature, s.concrete, opts.world), seed: opts.seed, path: String(s.index) });
      continue;
    }
    const shrink = await fc.check(
      fc.asyncProperty(arb, async (r) => {
        let c: Concrete | undefined;
        try {
          c = renderOf(r);
          const o = await opts.send(c, r);
          await judgeAndCheckStore(opts.world, c, o);
        } catch (err) {
          if (!(err instanceof FuzzFailure)) throw err;
          await resync(opts.world);
          if (err.signature === signature) {
            minimal = c;
            minimalText = err.message;
            throw err;
          }
        }
        return true;
      }),
      { seed: opts.seed, path: opts.path ? `${opts.path}` : String(s.index), numRuns: 1, interruptAfterTimeLimit: opts.shrinkMs ?? 20_000 },
    );
    const c = minimal ?? s.concrete;
    failures.push({
      signature,
      occurrences: s.occurrences,
      minimal: minimalText,
      original: s.original,
      repro: c ? saveRepro(signature, c, opts.world) : '',
      seed: opts.seed,
      path: shrink.counterexamplePath ?? undefined,
    });
  }
  return { cases, seconds, failures };
}

export function formatReport(name: string, seed: number, report: RunReport): string {
  return report.failures
    .map(
      (f, i) =>
        `#${i + 1} ${f.signature} (${f.occurrences} of ${report.cases} cases)\n` +
        `minimal request (replay: FUZZ_SEED=${seed}${f.path ? ` FUZZ_PATH=${f.path}` : ''} npx vitest run test/fuzz/${name}; saved: ${f.repro}):\n${f.minimal}`,
    )
    .join('\n\n');
}
