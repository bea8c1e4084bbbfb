/**
 * Generated requests: a fast-check arbitrary of *recipes* (which endpoint, which bars, how they are
 * laid out, which mutations, which headers), and `renderRequest`, which turns a recipe into exact
 * bytes against the current expected history. Bars are chosen relative to that history (a date
 * after the newest stored bar, a stored bar resent as stored or with other values, a date between
 * two stored ones), so that valid requests keep adding, replacing and resending bars however the
 * history has grown, and a shrunk recipe still means the same kind of request.
 */
import fc from 'fast-check';
import type { Bar } from '../../src/data/bars.js';
import { J, clone, fromValue, render, slots, type JNode, type Spacing } from './json-tree.js';
import { BAR_FIELDS, DEFAULT_MODEL, LONG_MODEL, MODELS, type ExpectedHistory } from './oracle.js';

export const KEY = 'test-key-0123456789abcdef';
export const ADMIN_KEY = 'admin-key-0123456789abcdef';
const WRONG_KEY = 'wrong-key-0123456789abcdef';
export const MAX_BODY = 1024 * 1024;
const DAY = 86_400_000;

// ---------------------------------------------------------------------------------------------
// Recipes

export type BarKind = 'after' | 'before' | 'gap' | 'same' | 'near' | 'diff';
export interface BarPick {
  kind: BarKind;
  k: number;
  base: number;
  down: number;
  up: number;
  open: number;
  close: number;
  volume: number;
  /** Valid but extreme values (tiny or huge prices, zero volume, high == low). */
  exotic: number;
}

export interface QueryPair {
  key: string;
  /** null: the key alone, without `=`. */
  value: string | null;
  /** Written as is, not percent-encoded (malformed escapes, `+`, brackets). */
  raw: boolean;
}

export type Target =
  | { kind: 'split'; route: 'default' | 'named' | 'versioned'; name: number; version: number; query: QueryPair[] }
  | { kind: 'mlflow'; query: QueryPair[] }
  | { kind: 'oip'; route: 'named' | 'versioned'; name: number; version: number; query: QueryPair[]; replace: number }
  | { kind: 'get'; path: number; name: number; version: number; query: QueryPair[] }
  | { kind: 'admin'; query: QueryPair[]; body: number };

export interface Layout {
  perm: number;
  nameStyle: number;
  dateStyle: number;
  numStyle: number;
  index: number;
  mlflowForm: number;
  oipForm: number;
  oipDateType: number;
  oipValueType: number;
  oipColumnsParam: boolean;
  outputs: number;
  id: boolean;
  spacing: Spacing;
  timeOfDay: number;
}

export type TreeOp =
  | 'confuse'
  | 'protoKey'
  | 'protoRename'
  | 'dupKey'
  | 'dropKey'
  | 'addKey'
  | 'wrapDeep'
  | 'replaceNode'
  | 'dropItem'
  | 'dupItem'
  | 'swapItems'
  | 'hugeString'
  | 'manyMembers'
  | 'manyItems'
  | 'topLevel'
  | 'emptyContainer';
export interface TreeMut {
  op: TreeOp;
  at: number;
  v: number;
  json: unknown;
}

export type TextOp =
  | 'truncate'
  | 'flip'
  | 'insertBad'
  | 'insertInString'
  | 'bomPrefix'
  | 'utf16'
  | 'latin1'
  | 'deepOpen'
  | 'deepClosed'
  | 'pad'
  | 'garbage'
  | 'empty'
  | 'whitespaceOnly'
  | 'trailing'
  | 'jsLiteral';
export interface TextMut {
  op: TextOp;
  at: number;
  v: number;
  bytes: Uint8Array;
}

export interface Transport {
  method: number;
  key: number;
  contentType: number;
  encoding: number;
  requestId: number;
  extra: number[];
  contentLength: number;
}

export interface Recipe {
  target: Target;
  picks: BarPick[];
  layout: Layout;
  tree: TreeMut[];
  text: TextMut[];
  transport: Transport;
}

// ---------------------------------------------------------------------------------------------
// Choice lists (index 0 is the ordinary choice; fast-check shrinks indices towards it)

/** Path segments naming a model: as written in the URL, and what the service should read (null: not a valid URL). */
export const NAMES: readonly { seg: string; value: string | null }[] = [
  { seg: 'acme', value: 'acme' },
  { seg: 'beta', value: 'beta' },
  { seg: LONG_MODEL, value: LONG_MODEL },
  { seg: '%61cme', value: 'acme' },
  { seg: 'ACME', value: 'ACME' },
  { seg: 'nope', value: 'nope' },
  { seg: 'acme%20', value: 'acme ' },
  { seg: '__proto__', value: '__proto__' },
  { seg: 'constructor', value: 'constructor' },
  { seg: 'toString', value: 'toString' },
  { seg: 'hasOwnProperty', value: 'hasOwnProperty' },
  { seg: 'a'.repeat(128), value: 'a'.repeat(128) },
  { seg: 'a'.repeat(129), value: 'a'.repeat(129) },
  { seg: 'a'.repeat(5000), value: 'a'.repeat(5000) },
  { seg: '%FF', value: null },
  { seg: '%E0%A4%A', value: null },
  { seg: '%', value: null },
  { seg: 'caf%C3%A9', value: 'café' },
  { seg: '%00', value: '\u0000' },
  { seg: 'acme%2F1', value: 'acme/1' },
  { seg: 'acme;v=1', value: 'acme;v=1' },
  { seg: '%F0%9F%92%A5', value: '💥' },
];

export const VERSIONS: readonly { seg: string; value: string | null }[] = [
  { seg: '1', value: '1' },
  { seg: '2', value: '2' },
  { seg: '3', value: '3' },
  { seg: '01', value: '01' },
  { seg: '1.0', value: '1.0' },
  { seg: '__proto__', value: '__proto__' },
  { seg: 'constructor', value: 'constructor' },
  { seg: '%FF', value: null },
  { seg: '0', value: '0' },
  { seg: '-1', value: '-1' },
  { seg: '%201', value: ' 1' },
  { seg: 'x'.repeat(129), value: 'x'.repeat(129) },
];

/** GET (and other) paths; `{n}` and `{v}` are the recipe's name and version. */
export const GET_PATHS: readonly { path: string; keyed: boolean; method: string; query?: 'version' | 'none' | 'any' }[] = [
  { path: '/models', keyed: true, method: 'GET', query: 'any' },
  { path: '/models/{n}', keyed: true, method: 'GET', query: 'version' },
  { path: '/models/{n}/versions/{v}', keyed: true, method: 'GET', query: 'any' },
  { path: '/v2/models/{n}', keyed: true, method: 'GET', query: 'any' },
  { path: '/v2/models/{n}/versions/{v}', keyed: true, method: 'GET', query: 'any' },
  { path: '/v2/models/{n}/ready', keyed: true, method: 'GET', query: 'any' },
  { path: '/v2/models/{n}/versions/{v}/ready', keyed: true, method: 'GET', query: 'any' },
  { path: '/', keyed: true, method: 'GET', query: 'any' },
  { path: '/healthz', keyed: false, method: 'GET', query: 'any' },
  { path: '/readyz', keyed: false, method: 'GET', query: 'any' },
  { path: '/ping', keyed: false, method: 'GET', query: 'any' },
  { path: '/v2', keyed: false, method: 'GET', query: 'any' },
  { path: '/v2/health/live', keyed: false, method: 'GET', query: 'any' },
  { path: '/v2/health/ready', keyed: false, method: 'GET', query: 'any' },
  { path: '/metrics', keyed: false, method: 'GET', query: 'any' },
  { path: '/openapi.json', keyed: false, method: 'GET', query: 'any' },
  { path: '/docs', keyed: false, method: 'GET', query: 'any' },
  // Routes that exist for another method, and routes that do not exist.
  { path: '/forecast', keyed: true, method: 'POST' },
  { path: '/models/{n}/forecast', keyed: true, method: 'POST' },
  { path: '/invocations', keyed: true, method: 'POST' },
  { path: '/v2/models/{n}/infer', keyed: true, method: 'POST' },
  { path: '/admin/reload', keyed: true, method: 'POST' },
  { path: '/nope', keyed: false, method: '' },
  { path: '/models/{n}/versions/{v}/nope', keyed: false, method: '' },
  { path: '/forecast/', keyed: false, method: '' },
  { path: '//forecast', keyed: false, method: '' },
  { path: '/v2/models/{n}/infer/x', keyed: false, method: '' },
];

export const METHODS = ['', 'GET', 'PUT', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH', 'POST'] as const;

/** Key headers; `client`/`admin`: whether a client or an admin route must accept them. */
/** `null`: the answer depends on the HTTP stack (Node keeps the first of two Authorization headers, inject joins them). */
export const KEYS: readonly { headers: Record<string, string | string[]>; client: boolean | null; admin: boolean | null }[] = [
  { headers: { 'x-api-key': KEY }, client: true, admin: false },
  { headers: { 'x-api-key': ` ${KEY}\t` }, client: true, admin: false },
  { headers: { authorization: `Bearer ${KEY}` }, client: true, admin: false },
  { headers: { authorization: `bearer ${KEY}` }, client: true, admin: false },
  { headers: { authorization: `BEARER   ${KEY}  ` }, client: true, admin: false },
  { headers: { 'x-api-key': ADMIN_KEY }, client: false, admin: true },
  { headers: { authorization: `Bearer ${ADMIN_KEY}` }, client: false, admin: true },
  { headers: { 'x-api-key': WRONG_KEY }, client: false, admin: false },
  { headers: {}, client: false, admin: false },
  { headers: { 'x-api-key': [KEY, KEY] }, client: false, admin: false },
  { headers: { 'x-api-key': 'k'.repeat(5000) }, client: false, admin: false },
  { headers: { authorization: 'Bearer' }, client: false, admin: false },
  { headers: { authorization: `Basic ${KEY}` }, client: false, admin: false },
  { headers: { 'x-api-key': WRONG_KEY, authorization: `Bearer ${KEY}` }, client: false, admin: false },
  { headers: { 'x-api-key': '', authorization: `Bearer ${KEY}` }, client: false, admin: false },
  { headers: { authorization: `Bearer ${' '.repeat(1100)}${KEY}` }, client: false, admin: false },
  { headers: { authorization: `Bearer\t${KEY}` }, client: false, admin: false },
  { headers: { authorization: [`Bearer ${KEY}`, `Bearer ${KEY}`] }, client: null, admin: false },
  { headers: { 'x-api-key': KEY.toUpperCase() }, client: false, admin: false },
  { headers: { 'x-api-key': KEY.slice(0, -1) }, client: false, admin: false },
];

/** Content types; index 0 is `application/json`, `null` sends none. */
export const CONTENT_TYPES: readonly (string | null)[] = [
  'application/json',
  null,
  'application/json; charset=utf-8',
  'application/json; charset=UTF-8',
  'application/json;charset=latin1',
  'application/json; charset=utf-16',
  'APPLICATION/JSON',
  'text/plain',
  'text/plain; charset=utf-8',
  'text/json',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  'application/vnd.api+json',
  'application/problem+json',
  'application/json, text/plain',
  '',
  ' application/json',
  'application/jsonp',
  'application/json; charset="utf-8"',
  '*/*',
  'application/*',
  `application/json; ${'x=y;'.repeat(1000)}`,
  'application/json;',
  'application/json; charset',
  'application/json ; charset=utf-8',
];
const CLEAN_CONTENT_TYPES = new Set<string | null>(['application/json', null, 'application/json; charset=utf-8']);

export const ENCODINGS: readonly (string | null)[] = [null, 'gzip', 'deflate', 'br', 'gzip, deflate', 'identity', 'x-unknown', 'GZIP', 'compress', 'gzip;q=1'];

export const REQUEST_IDS: readonly (string | string[] | null)[] = [
  null,
  'fuzz-request-1',
  'a'.repeat(128),
  'a'.repeat(129),
  'x'.repeat(10_000),
  'bad id with spaces',
  'ümlaut',
  '../../etc/passwd',
  '<script>',
  ['a', 'b'],
  '',
];

/** Headers that must not change the answer, and (after `|`) ones that may. */
export const EXTRA_HEADERS: readonly { name: string; value: string; neutral: boolean }[] = [
  { name: 'accept', value: 'application/xml', neutral: true },
  { name: 'accept', value: '*/*', neutral: true },
  { name: 'accept', value: 'text/html;q=0.9, */*;q=0.1', neutral: true },
  { name: 'accept-encoding', value: 'gzip, deflate, br', neutral: true },
  { name: 'accept-charset', value: 'latin1', neutral: true },
  { name: 'connection', value: 'close', neutral: true },
  { name: 'x-forwarded-for', value: '999.1.1.1, <x>, ::ffff', neutral: true },
  { name: 'user-agent', value: 'u'.repeat(4000), neutral: true },
  { name: 'cookie', value: '__proto__=1; constructor=2', neutral: true },
  { name: 'origin', value: 'http://evil.example', neutral: true },
  { name: 'x-http-method-override', value: 'GET', neutral: true },
  { name: 'range', value: 'bytes=0-1', neutral: true },
  { name: 'if-none-match', value: '*', neutral: true },
  { name: 'te', value: 'trailers', neutral: true },
  { name: '__proto__', value: 'x', neutral: true },
  { name: 'constructor', value: 'x', neutral: true },
  { name: 'expect', value: '100-continue', neutral: false },
  { name: 'transfer-encoding', value: 'chunked', neutral: false },
  { name: 'content-md5', value: 'xx', neutral: true },
];

export const CONTENT_LENGTHS = ['auto', 'smaller', 'bigger', 'garbage', 'negative', 'zero'] as const;

// ---------------------------------------------------------------------------------------------
// Arbitraries

const pick = <T>(arb: fc.Arbitrary<T>, weight: number) => ({ arbitrary: arb, weight });

const natBelow = (n: number) => fc.nat({ max: n - 1 });
/** Mostly 0 (the ordinary choice), sometimes anything in [0, n). */
const usually0 = (n: number, zeroWeight = 6) => fc.oneof(pick(fc.constant(0), zeroWeight), pick(natBelow(n), 1));

const barPickArb: fc.Arbitrary<BarPick> = fc.record({
  kind: fc.oneof(
    pick(fc.constant<BarKind>('after'), 5),
    pick(fc.constant<BarKind>('same'), 3),
    pick(fc.constant<BarKind>('near'), 1),
    pick(fc.constant<BarKind>('diff'), 2),
    pick(fc.constant<BarKind>('gap'), 1),
    pick(fc.constant<BarKind>('before'), 1),
  ),
  k: fc.nat({ max: 40 }),
  base: fc.double({ min: 1, max: 500, noNaN: true }),
  down: fc.double({ min: 0, max: 0.2, noNaN: true }),
  up: fc.double({ min: 0, max: 0.2, noNaN: true }),
  open: fc.double({ min: -0.3, max: 1.3, noNaN: true }),
  close: fc.double({ min: -0.3, max: 1.3, noNaN: true }),
  volume: fc.oneof(fc.nat({ max: 2_000_000_000 }), fc.double({ min: 0, max: 1e9, noNaN: true })),
  exotic: usually0(8, 12),
});

const queryValueArb = fc.oneof(
  fc.constantFrom('true', 'false', '1', '0', 'maybe', '', 'TRUE', '2', '1', 'acme', 'beta', '__proto__'),
  fc.string({ maxLength: 8 }),
  fc.constant('v'.repeat(200)),
);
const queryPairArb: fc.Arbitrary<QueryPair> = fc.oneof(
  pick(
    fc.record({
      key: fc.constantFrom('replace', 'version', 'model', 'unknown', '__proto__', 'constructor', 'Replace', 'replace[]', ''),
      value: fc.oneof(pick(queryValueArb, 8), pick(fc.constant(null), 1)),
      raw: fc.constant(false),
    }),
    10,
  ),
  pick(
    fc.record({
      key: fc.constantFrom('%zz', 'replace%', '+', 'a[b]', '&', '=', '%00', 'replace', '__proto__[x]'),
      value: fc.oneof(fc.constantFrom('%', '%zz', '+true', 'true+', 'a&b', null), fc.string({ maxLength: 4 })),
      raw: fc.constant(true),
    }),
    1,
  ),
);

/** Mostly the clean queries of a forecast route (none, replace, version), sometimes anything. */
function forecastQueryArb(versions: boolean, models: boolean): fc.Arbitrary<QueryPair[]> {
  const clean: fc.Arbitrary<QueryPair[]>[] = [
    fc.constant<never[]>([]),
    fc.constantFrom('true', 'false', '1', '0').map((v) => [{ key: 'replace', value: v, raw: false }]),
  ];
  if (versions) clean.push(fc.constantFrom('1', '2', '3').map((v) => [{ key: 'version', value: v, raw: false }]));
  if (models)
    clean.push(
      fc.tuple(fc.constantFrom('acme', 'beta', 'nope', LONG_MODEL), fc.constantFrom('true', 'false')).map(([m, r]) => [
        { key: 'model', value: m, raw: false },
        { key: 'replace', value: r, raw: false },
      ]),
    );
  return fc.oneof(pick(fc.oneof(...clean), 8), pick(fc.array(queryPairArb, { minLength: 1, maxLength: 4 }), 2));
}

const nameArb = fc.oneof(pick(fc.constantFrom(0, 1), 12), pick(fc.constant(2), 1), pick(natBelow(NAMES.length), 2));
const versionArb = fc.oneof(pick(fc.constantFrom(0, 1), 10), pick(natBelow(VERSIONS.length), 2));

const targetArb: fc.Arbitrary<Target> = fc.oneof(
  pick(
    fc.record({
      kind: fc.constant('split' as const),
      route: fc.constantFrom('default' as const, 'named' as const, 'versioned' as const),
      name: nameArb,
      version: versionArb,
      query: forecastQueryArb(true, false),
    }),
    30,
  ),
  pick(fc.record({ kind: fc.constant('mlflow' as const), query: forecastQueryArb(true, true) }), 20),
  pick(
    fc.record({
      kind: fc.constant('oip' as const),
      route: fc.constantFrom('named' as const, 'versioned' as const),
      name: nameArb,
      version: versionArb,
      query: fc.oneof(pick(fc.constant<never[]>([]), 8), pick(fc.array(queryPairArb, { maxLength: 3 }), 1)),
      replace: usually0(6, 4),
    }),
    25,
  ),
  pick(
    fc.record({
      kind: fc.constant('get' as const),
      path: natBelow(GET_PATHS.length),
      name: nameArb,
      version: versionArb,
      query: fc.oneof(
        pick(fc.constant<never[]>([]), 6),
        pick(fc.constantFrom('1', '2', '3', '').map((v) => [{ key: 'version', value: v, raw: false }]), 2),
        pick(fc.array(queryPairArb, { minLength: 1, maxLength: 3 }), 1),
      ),
    }),
    12,
  ),
  pick(fc.record({ kind: fc.constant('admin' as const), query: fc.oneof(pick(fc.constant<never[]>([]), 4), pick(fc.array(queryPairArb, { maxLength: 2 }), 1)), body: usually0(5, 3) }), 2),
);

const layoutArb: fc.Arbitrary<Layout> = fc.record({
  perm: fc.oneof(pick(fc.constant(0), 3), pick(natBelow(720), 2)),
  nameStyle: usually0(4, 4),
  dateStyle: natBelow(7),
  numStyle: usually0(4, 4),
  index: usually0(3, 3),
  mlflowForm: natBelow(3),
  oipForm: natBelow(6),
  oipDateType: natBelow(3),
  oipValueType: usually0(5, 4),
  oipColumnsParam: fc.boolean(),
  outputs: usually0(8, 3),
  id: fc.boolean(),
  spacing: fc.constantFrom<Spacing>('compact', 'compact', 'spaces', 'pretty', 'tabs'),
  timeOfDay: fc.nat({ max: DAY - 1 }),
});

const TREE_OPS: readonly TreeOp[] = [
  'confuse',
  'confuse',
  'confuse',
  'protoKey',
  'protoKey',
  'protoRename',
  'dupKey',
  'dupKey',
  'dropKey',
  'addKey',
  'wrapDeep',
  'replaceNode',
  'dropItem',
  'dupItem',
  'swapItems',
  'hugeString',
  'manyMembers',
  'manyItems',
  'topLevel',
  'emptyContainer',
];
const treeMutArb: fc.Arbitrary<TreeMut> = fc.record({
  op: fc.constantFrom(...TREE_OPS),
  at: fc.nat(),
  v: fc.nat(),
  json: fc.jsonValue({ maxDepth: 3 }),
});

const TEXT_OPS: readonly TextOp[] = [
  'truncate',
  'truncate',
  'flip',
  'flip',
  'insertBad',
  'insertBad',
  'insertInString',
  'insertInString',
  'bomPrefix',
  'utf16',
  'latin1',
  'deepOpen',
  'deepClosed',
  'pad',
  'garbage',
  'empty',
  'whitespaceOnly',
  'trailing',
  'jsLiteral',
];
const textMutArb: fc.Arbitrary<TextMut> = fc.record({
  op: fc.constantFrom(...TEXT_OPS),
  at: fc.nat(),
  v: fc.nat(),
  bytes: fc.uint8Array({ maxLength: 48 }),
});

const transportArb: fc.Arbitrary<Transport> = fc.record({
  method: usually0(METHODS.length, 24),
  key: fc.oneof(pick(fc.constant(0), 30), pick(natBelow(5), 6), pick(natBelow(KEYS.length), 5)),
  contentType: fc.oneof(pick(fc.constant(0), 20), pick(fc.constantFrom(1, 2), 4), pick(natBelow(CONTENT_TYPES.length), 4)),
  encoding: usually0(ENCODINGS.length, 25),
  requestId: usually0(REQUEST_IDS.length, 8),
  extra: fc.oneof(pick(fc.constant<never[]>([]), 8), pick(fc.array(natBelow(EXTRA_HEADERS.length), { maxLength: 3 }), 2)),
  contentLength: usually0(CONTENT_LENGTHS.length, 40),
});

/** How many bars a request holds: a few usually, sometimes a window of stored bars, rarely the whole history. */
const picksArb = fc.oneof(
  pick(fc.array(barPickArb, { minLength: 1, maxLength: 5 }), 20),
  pick(fc.array(barPickArb, { minLength: 6, maxLength: 40 }), 3),
  pick(
    fc.tuple(fc.integer({ min: 50, max: 1200 }), barPickArb).map(([n, p]) => Array.from({ length: n }, (_, i) => ({ ...p, kind: 'same' as const, k: i }))),
    1,
  ),
);

export const recipeArb: fc.Arbitrary<Recipe> = fc.record({
  target: targetArb,
  picks: picksArb,
  layout: layoutArb,
  tree: fc.oneof(pick(fc.constant<never[]>([]), 10), pick(fc.array(treeMutArb, { minLength: 1, maxLength: 3 }), 6)),
  text: fc.oneof(pick(fc.constant<never[]>([]), 14), pick(fc.array(textMutArb, { minLength: 1, maxLength: 2 }), 4)),
  transport: transportArb,
});

// ---------------------------------------------------------------------------------------------
// Rendering

export interface Concrete {
  method: string;
  url: string;
  headers: Record<string, string | string[]>;
  body: Buffer | undefined;
  /** What the recipe is, for failure reports. */
  label: string;
  target: Target;
  /** A valid key of the route's kind, a JSON content type (or none), no content coding, a clean URL: the oracle's verdict must hold exactly. */
  clean: boolean;
  /** The route exists for this method and the URL decodes: a bad key must be refused (401/403). */
  routed: boolean;
  /** The path's segments are well-formed (a request for no route there must be a 404). */
  pathOk: boolean;
  /** A JSON content type or none, no content coding, the body's own length, no header that may change the answer. */
  transportClean: boolean;
  /** Whether the key is one the route accepts (client key on client routes, admin key on admin ones); null for public routes and keys the HTTP stack decides. */
  keyOk: boolean | null;
  /** The bytes written on the wire, when they are not simply this request (raw sockets). */
  wire?: Buffer;
  /** The bars the body was built from, before mutations (for the report). */
  intended: Bar[];
}

/** Deterministic choice of an element from a recipe number. */
const choose = <T>(xs: readonly T[], n: number): T => xs[n % xs.length];

function permutation(n: number, k: number): number[] {
  // The k-th permutation of [0, n) in lexicographic order (k modulo n!).
  const items = Array.from({ length: n }, (_, i) => i);
  let f = 1;
  for (let i = 2; i <= n; i++) f *= i;
  k %= f;
  const out: number[] = [];
  for (let i = n; i >= 1; i--) {
    f /= i;
    const j = Math.floor(k / f);
    k %= f;
    out.push(items.splice(j, 1)[0]);
  }
  return out;
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const dayMs = (date: string) => Date.parse(`${date}T00:00:00Z`);

/** A valid new bar's values from a pick. */
function valuesOf(p: BarPick): Omit<Bar, 'date'> {
  let base = p.base;
  let volume = p.volume;
  switch (p.exotic) {
    case 1:
      base = 1e-300;
      break;
    case 2:
      base = 1e300;
      break;
    case 3:
      volume = 0;
      break;
    case 4:
      // high == low == open == close: a flat bar (features may be non-finite: y_pred null, never an error).
      return { open: base, high: base, low: base, close: base, volume };
    case 5:
      volume = -0;
      break;
    case 6:
      base = Number.MIN_VALUE * 2 ** 60;
      break;
    case 7:
      volume = 1e308;
      break;
  }
  const low = base * (1 - p.down);
  const high = base * (1 + p.up);
  const within = (x: number) => Math.max(Number.MIN_VALUE, low + (high - low) * x);
  return { open: within(p.open), high, low: low > 0 ? low : Number.MIN_VALUE, close: within(p.close), volume };
}

/** Resolves picks against a history: distinct dates, oldest first. */
export function resolveBars(picks: readonly BarPick[], history: ExpectedHistory): Bar[] {
  const dates = history.dates();
  const first = dates[0];
  const last = dates[dates.length - 1];
  const out = new Map<string, Bar>();
  let after = 0;
  let before = 0;
  for (const p of picks) {
    let bar: Bar | undefined;
    switch (p.kind) {
      case 'after':
        after += 1 + (p.k % 4);
        bar = { date: isoDay(dayMs(last) + after * DAY), ...valuesOf(p) };
        break;
      case 'before':
        before += 1 + (p.k % 4);
        bar = { date: isoDay(dayMs(first) - before * DAY), ...valuesOf(p) };
        break;
      case 'gap': {
        // A date between stored bars (weekends and holidays of the synthetic calendar), searched from a stored bar on.
        const start = dates.length - 1 - (p.k * 7) % dates.length;
        for (let i = Math.max(0, start); i < dates.length - 1 && !bar; i++) {
          const next = isoDay(dayMs(dates[i]) + DAY);
          if (next < dates[i + 1] && !out.has(next)) bar = { date: next, ...valuesOf(p) };
        }
        if (!bar) {
          after += 1;
          bar = { date: isoDay(dayMs(last) + after * DAY), ...valuesOf(p) };
        }
        break;
      }
      case 'same':
      case 'near':
      case 'diff': {
        const stored = history.bars.get(dates[Math.max(0, dates.length - 1 - (p.k % dates.length))])!;
        if (p.kind === 'same') bar = { ...stored };
        else if (p.kind === 'near') {
          // Within the service's 1e-12 relative tolerance: the same bar, stored values kept.
          bar = { ...stored, close: stored.close * (1 + 1e-14), volume: stored.volume === 0 ? 0 : stored.volume * (1 - 1e-14) };
        } else {
          const f = 1 + 1e-6 + p.up;
          bar = { ...stored, close: stored.close * f, high: Math.max(stored.high, stored.close * f), volume: stored.volume + 1 + p.k };
        }
        break;
      }
    }
    if (bar && !out.has(bar.date)) out.set(bar.date, bar);
  }
  return [...out.values()].sort((a, b) => (a.date < b.date ? -1 : 1));
}

const NAME_STYLES = [(s: string) => s, (s: string) => s[0].toUpperCase() + s.slice(1), (s: string) => s.toUpperCase(), (s: string) => ` ${s}\t`];

function numberNode(v: number, style: number): JNode {
  if (Object.is(v, -0)) return J.num(-0, '-0');
  switch (style % 4) {
    case 1:
      return J.num(v, v.toExponential());
    case 2: {
      const s = String(v);
      return J.num(v, s.includes('e') ? s.replace('e', 'E') : s.includes('.') ? `${s}0` : `${s}.0`);
    }
    case 3:
      return J.num(v, v.toExponential().replace('e+', 'e'));
    default:
      return J.num(v);
  }
}

/** A date cell as JSON: epoch milliseconds (where the date allows) or an ISO string of some style. */
function dateNode(date: string, style: number, timeOfDay: number, epochAllowed = true): JNode {
  const ms = dayMs(date);
  const epochOk = epochAllowed && ms >= 1e11;
  switch (style % 7) {
    case 0:
      return epochOk ? J.num(ms) : J.str(date);
    case 1:
      return epochOk ? J.num(ms + timeOfDay) : J.str(`${date}T12:00:00Z`);
    case 2:
      return J.str(date);
    case 3:
      return J.str(`${date}T00:00:00.000Z`);
    case 4:
      return J.str(`${date}T23:30:00-05:00`);
    case 5:
      return J.str(`  ${date}\t`);
    default:
      return J.str(`${date} 09:30:00.123456789+0100`);
  }
}

/** A date as an OIP BYTES cell: ISO text, or epoch milliseconds as digits. */
function bytesDate(date: string, style: number): JNode {
  const ms = dayMs(date);
  if (style % 3 === 1 && ms >= 1e11) return J.str(String(ms));
  if (style % 3 === 2) return J.str(` ${date}T00:00:00Z `);
  return J.str(date);
}

function bytesNumber(v: number, style: number): JNode {
  if (Object.is(v, -0)) return J.str('-0');
  switch (style % 4) {
    case 1:
      return J.str(v.toExponential());
    case 2:
      return J.str(` ${String(v)} `);
    case 3:
      return J.str(v < 0 ? String(v) : `+${String(v)}`);
    default:
      return J.str(String(v));
  }
}

function splitFrame(bars: readonly Bar[], L: Layout): JNode {
  const order = permutation(6, L.perm).map((j) => BAR_FIELDS[j]);
  const style = NAME_STYLES[L.nameStyle % NAME_STYLES.length];
  const datesInIndex = L.index % 3 === 2;
  const cols = datesInIndex ? order.filter((f) => f !== 'date') : order;
  const entries: [string, JNode][] = [['columns', J.arr(cols.map((c) => J.str(style(c))))]];
  if (L.index % 3 === 1) entries.push(['index', J.arr(bars.map((_, i) => J.num(8000 + i)))]);
  if (datesInIndex) entries.push(['index', J.arr(bars.map((b) => dateNode(b.date, L.dateStyle, L.timeOfDay)))]);
  entries.push([
    'data',
    J.arr(bars.map((b) => J.arr(cols.map((c) => (c === 'date' ? dateNode(b.date, L.dateStyle, L.timeOfDay) : numberNode(b[c], L.numStyle)))))),
  ]);
  // Key order varies too: pandas writes columns, index, data, but any order is JSON.
  if (L.perm % 2 === 1) entries.reverse();
  return J.obj(entries);
}

function records(bars: readonly Bar[], L: Layout): JNode {
  const order = permutation(6, L.perm).map((j) => BAR_FIELDS[j]);
  const style = NAME_STYLES[L.nameStyle % NAME_STYLES.length];
  return J.arr(
    bars.map((b) => J.obj(order.map((c) => [style(c), c === 'date' ? dateNode(b.date, L.dateStyle, L.timeOfDay) : numberNode(b[c], L.numStyle)]))),
  );
}

const VALUE_TYPES = ['FP64', 'FP32', 'INT64', 'UINT32', 'FP16'];

function oipBody(bars: readonly Bar[], L: Layout, replace: number): JNode {
  const order = permutation(6, L.perm).map((j) => BAR_FIELDS[j]);
  const style = NAME_STYLES[L.nameStyle % NAME_STYLES.length];
  const n = bars.length;
  const form = L.oipForm % 6;
  const nested = form % 2 === 1;
  let inputs: JNode;
  if (form < 2) {
    const dateType = ['BYTES', 'INT64', 'FP64'][L.oipDateType % 3];
    const epochOk = bars.every((b) => dayMs(b.date) >= 1e11);
    const dt = dateType !== 'BYTES' && !epochOk ? 'BYTES' : dateType;
    inputs = J.arr(
      order.map((c) => {
        const cells = bars.map((b) => (c === 'date' ? (dt === 'BYTES' ? bytesDate(b.date, L.dateStyle) : J.num(dayMs(b.date))) : numberNode(b[c], L.numStyle)));
        return J.obj([
          ['name', J.str(style(c))],
          ['datatype', J.str(c === 'date' ? dt : VALUE_TYPES[L.oipValueType % VALUE_TYPES.length])],
          ['shape', J.arr(nested ? [J.num(n), J.num(1)] : [J.num(n)])],
          ['data', J.arr(nested ? cells.map((x) => J.arr([x])) : cells)],
        ]);
      }),
    );
  } else {
    const bytes = form >= 4;
    const cols = L.oipColumnsParam ? order : [...BAR_FIELDS];
    const cell = (b: Bar, c: (typeof BAR_FIELDS)[number]): JNode =>
      bytes
        ? c === 'date'
          ? bytesDate(b.date, L.dateStyle)
          : bytesNumber(b[c], L.numStyle)
        : c === 'date'
          ? dateNode(b.date, L.dateStyle % 2, L.timeOfDay)
          : numberNode(b[c], L.numStyle);
    const rows = bars.map((b) => cols.map((c) => cell(b, c)));
    const entries: [string, JNode][] = [
      ['name', J.str('bars')],
      ['datatype', J.str(bytes ? 'BYTES' : 'FP64')],
      ['shape', J.arr([J.num(n), J.num(6)])],
      ['data', J.arr(nested ? rows.map((r) => J.arr(r)) : rows.flat())],
    ];
    if (L.oipColumnsParam) entries.push(['parameters', J.obj([['columns', J.arr(cols.map((c) => J.str(style(c))))]])]);
    inputs = J.arr([J.obj(entries)]);
  }
  const body: [string, JNode][] = [];
  if (L.id) body.push(['id', J.str(`fuzz-${L.perm}`)]);
  const rep: (JNode | undefined)[] = [undefined, J.bool(true), J.bool(false), J.str('true'), J.num(1), J.null()];
  const r = rep[replace % rep.length];
  if (r) body.push(['parameters', J.obj([['replace', r]])]);
  body.push(['inputs', inputs]);
  if (L.outputs % 8 !== 0) {
    const names = ['y_pred', 'date', 'reason'].filter((_, i) => (L.outputs >> i) & 1);
    body.push(['outputs', J.arr((L.perm % 2 ? names.reverse() : names).map((x) => J.obj([['name', J.str(x)]])))]);
  }
  return J.obj(body);
}

function mlflowBody(bars: readonly Bar[], L: Layout): JNode {
  switch (L.mlflowForm % 3) {
    case 0:
      return J.obj([['dataframe_split', splitFrame(bars, L)]]);
    case 1:
      return J.obj([['dataframe_records', records(bars, L)]]);
    default:
      return J.obj([
        ['params', J.obj([])],
        ['dataframe_records', records(bars, L)],
      ]);
  }
}

// Tree mutations ---------------------------------------------------------------------------------

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isPrototypeOf'];
const PROTO_VALUES: JNode[] = [J.null(), J.obj([]), J.arr([]), J.str('x'), J.num(1), J.bool(true), J.obj([['polluted', J.bool(true)]]), J.obj([['prototype', J.obj([['x', J.num(1)]])]])];

const CONFUSED: JNode[] = [
  J.str('100'),
  J.str('1e2'),
  J.str('1.5E+3'),
  J.str(' 42 '),
  J.str(''),
  J.str('NaN'),
  J.str('Infinity'),
  J.str('-0'),
  J.num(1e308),
  J.num(-1e308),
  J.num(-0, '-0'),
  J.num(0),
  J.num(-1),
  J.num(5e-324),
  J.num(Infinity, '1e999'),
  J.num(-Infinity, '-1e999'),
  J.num(1e21),
  J.num(2 ** 53 + 2),
  J.num(1.5),
  J.num(1e11 - 1),
  J.num(0, '0e0'),
  J.num(100, '1E2'),
  J.num(1, '1.0'),
  J.num(0, '-0.0e-0'),
  J.num(1e-400, '1e-400'),
  J.num(1e20, '100000000000000000000'),
  J.num(123, '0.000000000000000000000000000000000000000000000000000123e53'),
  J.bool(true),
  J.bool(false),
  J.null(),
  J.obj([]),
  J.arr([]),
  J.arr([J.num(1)]),
  J.obj([['a', J.num(1)]]),
  J.obj([['__proto__', J.obj([])]]),
  J.str('2018-02-30'),
  J.str('2018-13-01'),
  J.str('1799-12-31'),
  J.str('3000-01-01'),
  J.str('2018-07-26T24:00'),
  J.str('2018-07-26T00:00:00+05:00'),
  J.str('20180726'),
  J.str('1532563200000'),
  J.num(1532563200000.5),
  J.num(1532563200),
  J.num(32_503_680_000_000),
  J.str('\u0000'),
  J.rawStr('\\ud800'),
  J.rawStr('\\udfff\\ud800x'),
  J.rawStr('\\u0000date'),
  J.str('💥'),
  J.str('a'.repeat(65)),
  J.str('constructor'),
  J.str('__proto__'),
  J.str('toString'),
  J.str('date'),
  J.str('Adj Close'),
  J.str('CLOSE'),
  J.str('\u00a0close\u2028'),
  J.str('ｃｌｏｓｅ'),
];

/** Applies one tree mutation in place (through the root holder). */
function mutateTree(root: { value: JNode }, m: TreeMut): void {
  const all = slots(root);
  const objs = all.filter((s) => s.node.k === 'obj');
  const arrs = all.filter((s) => s.node.k === 'arr');
  const leaves = all.filter((s) => s.node.k !== 'obj' && s.node.k !== 'arr');
  const anyOf = <T>(xs: T[]): T | undefined => (xs.length ? xs[m.at % xs.length] : undefined);
  switch (m.op) {
    case 'confuse': {
      const s = anyOf(leaves) ?? anyOf(all)!;
      s.set(clone(choose(CONFUSED, m.v)));
      break;
    }
    case 'protoKey': {
      const s = anyOf(objs);
      if (!s || s.node.k !== 'obj') break;
      const pos = m.v % (s.node.e.length + 1);
      s.node.e.splice(pos, 0, [choose(PROTO_KEYS, m.v), clone(choose(PROTO_VALUES, m.v >> 3))]);
      break;
    }
    case 'protoRename': {
      const s = anyOf(objs);
      if (!s || s.node.k !== 'obj' || s.node.e.length === 0) break;
      s.node.e[m.v % s.node.e.length][0] = choose(PROTO_KEYS, m.v >> 2);
      break;
    }
    case 'dupKey': {
      // The same key twice in one object, as raw text: JSON.parse keeps the last.
      const s = anyOf(objs);
      if (!s || s.node.k !== 'obj' || s.node.e.length === 0) break;
      const [key, value] = s.node.e[m.v % s.node.e.length];
      const other = m.v % 3 === 0 ? clone(value) : m.v % 3 === 1 ? fromValue(m.json) : J.arr([]);
      if (m.v % 2 === 0) s.node.e.push([key, other]);
      else s.node.e.unshift([key, other]);
      break;
    }
    case 'dropKey': {
      const s = anyOf(objs);
      if (s && s.node.k === 'obj' && s.node.e.length > 0) s.node.e.splice(m.v % s.node.e.length, 1);
      break;
    }
    case 'addKey': {
      const s = anyOf(objs);
      const keys = ['extra', 'Columns', 'DATA', '', ' ', 'index', 'params', 'inputs', 'instances', 'dataframe_split', 'outputs', 'parameters', 'id', 'x'.repeat(200)];
      if (s && s.node.k === 'obj') s.node.e.push([choose(keys, m.v), fromValue(m.json)]);
      break;
    }
    case 'wrapDeep': {
      const s = anyOf(all)!;
      const depth = choose([1, 2, 5, 30, 31, 32, 33, 100, 1000, 100_000], m.v);
      let n = s.node;
      const asObject = (m.v >> 4) % 2 === 1;
      for (let i = 0; i < depth; i++) n = asObject ? J.obj([['a', n]]) : J.arr([n]);
      s.set(n);
      break;
    }
    case 'replaceNode':
      (anyOf(all) ?? all[0]).set(fromValue(m.json));
      break;
    case 'dropItem': {
      const s = anyOf(arrs);
      if (s && s.node.k === 'arr' && s.node.a.length > 0) s.node.a.splice(m.v % s.node.a.length, 1);
      break;
    }
    case 'dupItem': {
      const s = anyOf(arrs);
      if (s && s.node.k === 'arr' && s.node.a.length > 0) {
        const i = m.v % s.node.a.length;
        s.node.a.splice(i, 0, clone(s.node.a[i]));
      }
      break;
    }
    case 'swapItems': {
      const s = anyOf(arrs);
      if (s && s.node.k === 'arr' && s.node.a.length > 1) {
        const i = m.v % s.node.a.length;
        const j = (i + 1 + ((m.v >> 3) % (s.node.a.length - 1))) % s.node.a.length;
        [s.node.a[i], s.node.a[j]] = [s.node.a[j], s.node.a[i]];
      }
      break;
    }
    case 'hugeString': {
      const s = anyOf(leaves) ?? anyOf(all)!;
      const len = choose([64, 65, 1000, 100_000, 900_000], m.v);
      s.set(J.str(choose(['x', '9', ' ', 'é', '\\'], m.v >> 3).repeat(len)));
      break;
    }
    case 'manyMembers': {
      const s = anyOf(objs);
      if (!s || s.node.k !== 'obj') break;
      const n = choose([1022, 1023, 1024, 1025, 5000], m.v);
      for (let i = 0; i < n; i++) s.node.e.push([`k${i}`, J.num(i)]);
      break;
    }
    case 'manyItems': {
      const s = anyOf(arrs);
      if (!s || s.node.k !== 'arr') break;
      const n = choose([1000, 20_000, 100_000], m.v);
      // A fresh node each: a later mutation of one item must not change them all.
      const item = choose([J.num(0), J.null(), J.arr([]), J.obj([]), J.str('')], m.v >> 2);
      for (let i = 0; i < n; i++) s.node.a.push(clone(item));
      break;
    }
    case 'topLevel': {
      const alts: JNode[] = [J.arr([root.value]), J.str('x'), J.num(1), J.null(), J.bool(true), J.arr([]), J.obj([]), J.obj([['', root.value]])];
      root.value = choose(alts, m.v);
      break;
    }
    case 'emptyContainer': {
      const s = anyOf([...objs, ...arrs]);
      if (s) s.set(s.node.k === 'obj' ? J.obj([]) : J.arr([]));
      break;
    }
  }
}

// Text mutations ---------------------------------------------------------------------------------

const BAD_BYTES: readonly number[][] = [
  [0xff],
  [0xfe],
  [0xc0, 0x80],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0x80],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x92],
  [0x00],
  [0xef, 0xbb, 0xbf],
  [0xff, 0xfe],
  [0x1b, 0x5b, 0x33, 0x31, 0x6d],
  [0x0b, 0x0c],
  [0xc3, 0x28],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
];

function mutateText(body: Buffer, m: TextMut): Buffer {
  const at = body.length === 0 ? 0 : m.at % (body.length + 1);
  switch (m.op) {
    case 'truncate':
      return body.subarray(0, body.length === 0 ? 0 : m.at % body.length);
    case 'flip': {
      if (body.length === 0) return body;
      const b = Buffer.from(body);
      b[m.at % b.length] ^= 1 + (m.v % 255);
      return b;
    }
    case 'insertBad':
      return Buffer.concat([body.subarray(0, at), Buffer.from(choose(BAD_BYTES, m.v)), body.subarray(at)]);
    case 'insertInString': {
      // Just after an opening quote: the JSON stays valid, a name or a date gets bytes that are not UTF-8.
      const quotes: number[] = [];
      for (let i = 0; i < body.length; i++) if (body[i] === 0x22) quotes.push(i);
      if (quotes.length === 0) return body;
      const q = quotes[(m.at % Math.ceil(quotes.length / 2)) * 2] ?? quotes[0];
      return Buffer.concat([body.subarray(0, q + 1), Buffer.from(choose(BAD_BYTES, m.v)), body.subarray(q + 1)]);
    }
    case 'bomPrefix':
      return Buffer.concat([Buffer.from(m.v % 2 ? [0xfe, 0xff] : [0xef, 0xbb, 0xbf]), body]);
    case 'utf16': {
      const le = Buffer.from(body.toString('utf8'), 'utf16le');
      return m.v % 2 ? Buffer.concat([Buffer.from([0xff, 0xfe]), le]) : le;
    }
    case 'latin1':
      return Buffer.from(body.toString('utf8'), 'latin1');
    case 'deepOpen': {
      const n = Math.max(0, Math.min(choose([33, 1000, 100_000, 600_000], m.v), MAX_BODY - body.length));
      return Buffer.concat([Buffer.from((m.v >> 2) % 2 ? '{"a":'.repeat(Math.floor(n / 5)) : '['.repeat(n)), body]);
    }
    case 'deepClosed': {
      const n = Math.max(0, Math.floor(Math.min(choose([33, 1000, 100_000, 400_000], m.v), (MAX_BODY - body.length) / 2)));
      return Buffer.concat([Buffer.from('['.repeat(n)), body, Buffer.from(']'.repeat(n))]);
    }
    case 'pad': {
      // Whitespace around the document: still the same JSON, up to and past the size limit.
      const target = choose([MAX_BODY - 1, MAX_BODY, MAX_BODY + 1, Math.floor(MAX_BODY * 1.5), body.length + 10_000], m.v);
      const n = Math.max(0, target - body.length);
      const ws = Buffer.alloc(n, choose([0x20, 0x0a, 0x09, 0x0d], m.v >> 3));
      return m.v % 2 ? Buffer.concat([ws, body]) : Buffer.concat([body, ws]);
    }
    case 'garbage':
      return Buffer.from(m.bytes);
    case 'empty':
      return Buffer.alloc(0);
    case 'whitespaceOnly':
      return Buffer.from(choose([' ', '\n\t\r ', '\u00a0', '\ufeff'], m.v));
    case 'trailing':
      return Buffer.concat([body, Buffer.from(choose(['}', ']', ',', '{}', ' x', '\u0000', '\n{"columns":[]}'], m.v))]);
    case 'jsLiteral': {
      // What JavaScript reads and JSON does not.
      const lits = ['NaN', 'Infinity', '-Infinity', 'undefined', "'x'", '0x10', '1_000', '.5', '+1', '01', '1.', '// c\n1', '/* c */1'];
      return Buffer.concat([body.subarray(0, at), Buffer.from(choose(lits, m.v)), body.subarray(at)]);
    }
  }
}

// Requests ---------------------------------------------------------------------------------------

function queryString(pairs: readonly QueryPair[]): string {
  if (pairs.length === 0) return '';
  const enc = (s: string, raw: boolean) => (raw ? s : encodeURIComponent(s));
  return `?${pairs.map((p) => (p.value === null ? enc(p.key, p.raw) : `${enc(p.key, p.raw)}=${enc(p.value, p.raw)}`)).join('&')}`;
}

/** A recipe's model for bar selection: the model it names when that is a served one, else the default model. */
export function historyModel(t: Target): string {
  if (t.kind === 'split' && t.route !== 'default') {
    const v = NAMES[t.name % NAMES.length].value;
    if (v !== null && Object.hasOwn(MODELS, v)) return v;
  }
  if (t.kind === 'oip') {
    const v = NAMES[t.name % NAMES.length].value;
    if (v !== null && Object.hasOwn(MODELS, v)) return v;
  }
  if (t.kind === 'mlflow') {
    const m = t.query.find((p) => p.key === 'model' && !p.raw);
    if (m?.value && Object.hasOwn(MODELS, m.value)) return m.value;
  }
  return DEFAULT_MODEL;
}

const ADMIN_BODIES: readonly (string | undefined)[] = [undefined, '{}', 'null', '{"models":["x"]}', '{not json', '[1,2]'];

/** The exact request a recipe stands for, against the current expected histories. */
export function renderRequest(r: Recipe, histories: ReadonlyMap<string, ExpectedHistory>): Concrete {
  const t = r.target;
  const name = NAMES[t.kind === 'split' || t.kind === 'oip' || t.kind === 'get' ? t.name % NAMES.length : 0];
  const version = VERSIONS[t.kind === 'split' || t.kind === 'oip' || t.kind === 'get' ? t.version % VERSIONS.length : 0];
  const intended = t.kind === 'get' || t.kind === 'admin' ? [] : resolveBars(r.picks, histories.get(historyModel(t))!);
  let path: string;
  let routeMethod: string;
  let access: 'public' | 'client' | 'admin' | 'none' = 'client';
  let tree: JNode | undefined;
  switch (t.kind) {
    case 'split':
      path = t.route === 'default' ? '/forecast' : t.route === 'named' ? `/models/${name.seg}/forecast` : `/models/${name.seg}/versions/${version.seg}/forecast`;
      routeMethod = 'POST';
      tree = splitFrame(intended, r.layout);
      break;
    case 'mlflow':
      path = '/invocations';
      routeMethod = 'POST';
      tree = mlflowBody(intended, r.layout);
      break;
    case 'oip':
      path = t.route === 'named' ? `/v2/models/${name.seg}/infer` : `/v2/models/${name.seg}/versions/${version.seg}/infer`;
      routeMethod = 'POST';
      tree = oipBody(intended, r.layout, t.replace);
      break;
    case 'get': {
      const g = GET_PATHS[t.path % GET_PATHS.length];
      path = g.path.replace('{n}', name.seg).replace('{v}', version.seg);
      routeMethod = g.method;
      access = g.method === '' ? 'none' : !g.keyed ? 'public' : g.path === '/admin/reload' ? 'admin' : 'client';
      break;
    }
    case 'admin':
      path = '/admin/reload';
      routeMethod = 'POST';
      access = 'admin';
      break;
  }
  const tr = r.transport;
  const method = METHODS[tr.method % METHODS.length] || routeMethod || 'GET';

  let body: Buffer | undefined;
  if (tree) {
    const holder = { value: tree };
    for (const m of r.tree) mutateTree(holder, m);
    body = Buffer.from(render(holder.value, r.layout.spacing), 'utf8');
    for (const m of r.text) body = mutateText(body, m);
  } else if (t.kind === 'admin') {
    const b = ADMIN_BODIES[t.body % ADMIN_BODIES.length];
    body = b === undefined ? undefined : Buffer.from(b);
  } else if (r.text.length > 0) {
    // A GET with a body: the service must not care.
    body = mutateText(Buffer.from('{}'), r.text[0]);
  }
  if (body !== undefined && (method === 'GET' || method === 'HEAD') && t.kind !== 'get') body = undefined;

  // Admin recipes mostly carry the admin key, so that the reload itself is exercised.
  const key = KEYS[t.kind === 'admin' && tr.key % KEYS.length === 0 ? 5 : tr.key % KEYS.length];
  const headers: Record<string, string | string[]> = { ...key.headers };
  const ct = CONTENT_TYPES[tr.contentType % CONTENT_TYPES.length];
  if (ct !== null && body !== undefined) headers['content-type'] = ct;
  const enc = ENCODINGS[tr.encoding % ENCODINGS.length];
  if (enc !== null) headers['content-encoding'] = enc;
  const rid = REQUEST_IDS[tr.requestId % REQUEST_IDS.length];
  if (rid !== null) headers['x-request-id'] = rid;
  let neutralExtras = true;
  for (const i of tr.extra) {
    const h = EXTRA_HEADERS[i % EXTRA_HEADERS.length];
    headers[h.name] = h.value;
    if (!h.neutral) neutralExtras = false;
  }
  const cl = CONTENT_LENGTHS[tr.contentLength % CONTENT_LENGTHS.length];
  if (body !== undefined && cl !== 'auto') {
    headers['content-length'] = { smaller: String(Math.max(0, body.length - 1)), bigger: String(body.length + 10), garbage: '12abc', negative: '-1', zero: '0' }[cl];
  }

  const url = path + queryString(t.query);
  // Only the segments the path uses.
  const usesName = t.kind === 'split' ? t.route !== 'default' : t.kind === 'oip' || (t.kind === 'get' && GET_PATHS[t.path % GET_PATHS.length].path.includes('{n}'));
  const usesVersion =
    t.kind === 'split' ? t.route === 'versioned' : t.kind === 'oip' ? t.route === 'versioned' : t.kind === 'get' && GET_PATHS[t.path % GET_PATHS.length].path.includes('{v}');
  const pathOk = (!usesName || name.value !== null) && (!usesVersion || version.value !== null);
  const queryOk = t.query.every((p) => !p.raw && p.value !== null);
  // fastify answers HEAD on every GET route, in the same access context.
  const routed = pathOk && routeMethod !== '' && (method === routeMethod || (method === 'HEAD' && routeMethod === 'GET'));
  const keyOk = access === 'public' || access === 'none' ? null : access === 'admin' ? key.admin : key.client;
  const transportClean = CLEAN_CONTENT_TYPES.has(ct) && enc === null && neutralExtras && cl === 'auto';
  const keyKnown = access === 'public' || access === 'none' || keyOk !== null;
  const clean = routed && queryOk && keyKnown && keyOk !== false && transportClean && (method === 'POST' || method === 'GET');
  const mutated = [...r.tree.map((m) => `tree:${m.op}`), ...r.text.map((m) => `text:${m.op}`)];
  const label = `${t.kind}${mutated.length ? ` [${mutated.join(', ')}]` : ''}`;
  return { method, url, headers, body, label, target: t, clean, routed, pathOk, transportClean, keyOk, intended };
}
