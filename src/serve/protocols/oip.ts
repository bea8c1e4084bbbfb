/**
 * Open Inference Protocol v2 (KServe, Triton, MLServer), on the same models and history.
 *
 *   GET  /v2                                   server metadata (no key)
 *   GET  /v2/health/live, /v2/health/ready     (no key)
 *   GET  /v2/models/{name}[/versions/{v}]      model metadata
 *   GET  /v2/models/{name}[/versions/{v}]/ready
 *   POST /v2/models/{name}[/versions/{v}]/infer
 *
 * Inputs, either
 *  - one tensor per bar field, named date, open, high, low, close, volume, each of shape [n] (or [n,1]):
 *    `date` BYTES (ISO-8601 strings) or INT64/FP64 (epoch milliseconds); the others FP64 (INT/UINT and
 *    FP32 are accepted but FP32 cannot carry a price's double exactly);
 *  - or one tensor of shape [n, 6]: FP64 with the date as epoch milliseconds, or BYTES with every cell a
 *    string (ISO date or epoch ms; decimal numbers, read correctly rounded). Columns date, open, high,
 *    low, close, volume unless the input's `parameters.columns` gives another order.
 * Outputs `y_pred` (FP64 [n], null where no forecast), `date` (BYTES [n]) and `reason` (BYTES [n], ""
 * where there is a forecast); request `outputs` to choose. `parameters.replace: true` replaces stored
 * bars whose values differ. Errors use the service's JSON error shape.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Bar } from '../../data/bars.js';
import { DataError, ForecastError } from '../../errors.js';
import { BAR_COLUMNS, barsFromCells, barsFromColumns, describeValue, echoName, MAX_CELL_CHARS } from '../bar-table.js';
import { runForecast, type ProtocolRoutes, type ServiceContext } from '../context.js';
import type { ServedModel } from '../registry.js';
import { apiKeySecurity, errorResponses, EXAMPLE_BAR, nameParams, nameVersionParams } from '../schemas.js';

const DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'] as const;
const NUMERIC = new Set(['UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64']);
const BAR_COLUMN_SET: ReadonlySet<string> = new Set(BAR_COLUMNS);
const OUTPUT_NAMES = ['y_pred', 'date', 'reason'] as const;
type OutputName = (typeof OUTPUT_NAMES)[number];
// A Set, not `name in object`: `constructor`, `__proto__` or `toString` must not name an output.
const OUTPUT_SET: ReadonlySet<string> = new Set(OUTPUT_NAMES);

interface InferInput {
  name: string;
  shape: number[];
  datatype: (typeof DATATYPES)[number];
  data: unknown[];
  parameters?: { columns?: string[] } & Record<string, unknown>;
}

interface InferRequest {
  id?: string;
  parameters?: { replace?: boolean } & Record<string, unknown>;
  inputs: InferInput[];
  outputs?: { name: string; parameters?: Record<string, unknown> }[];
}

const inferBody = {
  type: 'object',
  required: ['inputs'],
  properties: {
    id: { type: 'string', maxLength: 256 },
    parameters: { type: 'object', properties: { replace: { type: 'boolean' } } },
    inputs: {
      type: 'array',
      minItems: 1,
      maxItems: 16,
      items: {
        type: 'object',
        required: ['name', 'shape', 'datatype', 'data'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 64 },
          shape: { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 1, maxItems: 2 },
          datatype: { type: 'string', enum: DATATYPES },
          data: { type: 'array' },
          parameters: {
            type: 'object',
            properties: { columns: { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 64 } } },
          },
        },
      },
    },
    outputs: {
      type: 'array',
      maxItems: 16,
      items: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 64 } } },
    },
  },
  // The one documented bar (see EXAMPLE_BAR), as one tensor per bar field.
  examples: [
    {
      inputs: BAR_COLUMNS.map((c) =>
        c === 'date' ? { name: c, shape: [1], datatype: 'BYTES', data: [EXAMPLE_BAR.date] } : { name: c, shape: [1], datatype: 'FP64', data: [EXAMPLE_BAR[c]] },
      ),
    },
  ],
} as const;

/** What the readiness of a model answers, ready (200) or not (503). */
const modelReadyBody = {
  type: 'object',
  required: ['name', 'version', 'ready'],
  properties: { name: { type: 'string' }, version: { type: 'string' }, ready: { type: 'boolean' } },
} as const;

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Checks a tensor's declared shape against the data actually sent, before anything is sized by the
 * shape (a 117-byte body declaring [20000000, 0] must not allocate 20 million rows), and returns its
 * cells by row and column. Every dimension is a whole number >= 1; the data is flat (exactly
 * rows x width values) or nested as the shape (rows arrays of width values), never deeper: one
 * iterative pass over what was sent, no recursion, so neither the declared sizes nor the nesting
 * depth of the body cost more than its length.
 */
export function tensorCells(input: Pick<InferInput, 'name' | 'shape' | 'data'>): { rows: number; width: number; cell(row: number, column: number): unknown } {
  const { shape, data } = input;
  const name = echoName(input.name);
  const fail = (message: string, status = 422): DataError => new DataError(`input '${name}': ${message}`, { field: name }, status, 'invalid_shape');
  if (!Array.isArray(shape) || shape.length < 1 || shape.length > 2) throw fail('shape must be [n] or [n, k]', 400);
  for (const d of shape)
    if (!Number.isInteger(d) || d < 1)
      throw fail(`shape ${shapeText(shape)}: every dimension must be a whole number of at least 1 (a bar table has at least one row and one column)`);
  if (!Array.isArray(data)) throw fail('data must be an array', 400);
  const rows = shape[0];
  const width = shape.length === 2 ? shape[1] : 1;
  const tooDeep = () => fail(`data is nested deeper than its shape ${shapeText(shape)} (send it flat, or nested as the shape)`, 400);
  const mixed = (i: number) => fail(`data[${i}] ${Array.isArray(data[i]) ? 'is' : 'is not'} an array, unlike data[0]: send data flat, or nested as the shape ${shapeText(shape)}, not mixed`, 400);
  if (data.length > 0 && Array.isArray(data[0])) {
    if (shape.length === 1) throw tooDeep();
    for (let i = 0; i < data.length; i++) {
      const row = data[i];
      if (!Array.isArray(row)) throw mixed(i);
      for (let k = 0; k < row.length; k++) if (Array.isArray(row[k])) throw tooDeep();
    }
    if (data.length !== rows) throw fail(`shape ${shapeText(shape)} has ${rows} rows, data has ${data.length}`);
    for (let i = 0; i < data.length; i++) {
      const n = (data[i] as unknown[]).length;
      if (n !== width) throw fail(`data[${i}] has ${n} values, shape ${shapeText(shape)} needs ${width} per row`);
    }
    return { rows, width, cell: (r, j) => (data[r] as unknown[])[j] };
  }
  for (let i = 0; i < data.length; i++) if (Array.isArray(data[i])) throw mixed(i);
  // rows * width is exact while it can equal data.length (at most a few hundred thousand values fit in a body).
  if (rows * width !== data.length) throw fail(`shape ${shapeText(shape)} needs ${rows * width} values, data has ${data.length}`);
  return { rows, width, cell: width === 1 ? (r) => data[r] : (r, j) => data[r * width + j] };
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * Whether `s` is a plain decimal number: the language of /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/,
 * scanned once left to right. That regex is ambiguous (`\d+\.?\d*` splits a run of digits in n ways),
 * so a long run of digits that does not match backtracks in quadratic time (80,000 digits and an `x`:
 * 10 s); this scan is linear whatever the input.
 */
export function isDecimalText(s: string): boolean {
  const n = s.length;
  let i = 0;
  if (i < n && (s.charCodeAt(i) === 43 || s.charCodeAt(i) === 45)) i++;
  const intStart = i;
  while (i < n && isDigit(s.charCodeAt(i))) i++;
  let digits = i - intStart;
  if (i < n && s.charCodeAt(i) === 46) {
    i++;
    const fracStart = i;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
    digits += i - fracStart;
  }
  if (digits === 0) return false;
  if (i < n && (s.charCodeAt(i) === 101 || s.charCodeAt(i) === 69)) {
    i++;
    if (i < n && (s.charCodeAt(i) === 43 || s.charCodeAt(i) === 45)) i++;
    const expStart = i;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
    if (i === expStart) return false;
  }
  return i === n;
}

/** Whether `s` is an optionally negative run of digits (an epoch in a BYTES cell). */
function isIntegerText(s: string): boolean {
  let i = s.length > 0 && s.charCodeAt(0) === 45 ? 1 : 0;
  if (i === s.length) return false;
  for (; i < s.length; i++) if (!isDigit(s.charCodeAt(i))) return false;
  return true;
}

/** A BYTES cell holding a number: a plain decimal, read correctly rounded. */
function bytesNumber(v: unknown, row: number, field: string): unknown {
  if (typeof v !== 'string') return v;
  if (v.length > MAX_CELL_CHARS)
    throw new DataError(`row ${row}, field '${field}': a ${v.length}-character string is too long for a number (at most ${MAX_CELL_CHARS})`, { row, field }, 422, 'invalid_type');
  const s = v.trim();
  if (!isDecimalText(s)) throw new DataError(`row ${row}, field '${field}': ${describeValue(v)} is not a decimal number`, { row, field }, 422, 'invalid_type');
  return Number(s);
}

/** A BYTES date cell: digits are epoch milliseconds, anything else is read as an ISO date (and refused there if too long). */
function bytesDate(v: unknown): unknown {
  if (typeof v !== 'string' || v.length > MAX_CELL_CHARS) return v;
  const s = v.trim();
  return isIntegerText(s) ? Number(s) : v;
}

/** OIP inputs → the internal bar table. */
export async function barsFromInferInputs(inputs: readonly InferInput[]): Promise<Bar[]> {
  if (inputs.length === 1 && inputs[0].shape.length === 2) {
    const t = inputs[0];
    const name = echoName(t.name);
    const { rows, cell } = tensorCells(t);
    const cols: readonly unknown[] = t.parameters?.columns ?? BAR_COLUMNS;
    if (!Array.isArray(cols) || cols.length === 0)
      throw new DataError(`input '${name}': parameters.columns must name the tensor's columns`, { field: name }, 422, 'invalid_shape');
    if (t.shape[1] !== cols.length)
      throw new DataError(
        `input '${name}': shape ${shapeText(t.shape)} must have ${cols.length} columns (${cols.map((c) => echoName(String(c))).join(', ')})`,
        { field: name },
        422,
        'invalid_shape',
      );
    if (t.datatype !== 'FP64' && t.datatype !== 'BYTES')
      throw new DataError(`input '${name}': a whole-table tensor must be FP64 or BYTES, got ${t.datatype}`, { field: name }, 422, 'invalid_datatype');
    if (t.datatype !== 'BYTES') return barsFromCells(cols, rows, cell);
    const names = cols.map((c) => (typeof c === 'string' ? echoName(c) : String(c)));
    const isDate = names.map((c) => c.trim().toLowerCase() === 'date');
    return barsFromCells(cols, rows, (r, j) => (isDate[j] ? bytesDate(cell(r, j)) : bytesNumber(cell(r, j), r, names[j])));
  }
  const columns = new Map<string, unknown[]>();
  for (const input of inputs) {
    const label = echoName(input.name);
    const name = input.name.trim().toLowerCase();
    if (!BAR_COLUMN_SET.has(name))
      throw new DataError(`input '${label}' is not a bar field (expected ${BAR_COLUMNS.join(', ')}, or one [n, 6] tensor)`, { field: label }, 422, 'unknown_column');
    if (columns.has(name)) throw new DataError(`input '${label}' appears twice`, { field: label }, 422, 'duplicate_column');
    if (input.shape.length === 2 && input.shape[1] !== 1)
      throw new DataError(`input '${label}': shape must be [n] or [n, 1], got ${shapeText(input.shape)}`, { field: label }, 422, 'invalid_shape');
    if (name === 'date') {
      if (input.datatype !== 'BYTES' && input.datatype !== 'INT64' && input.datatype !== 'FP64')
        throw new DataError(`input 'date' must be BYTES (ISO-8601) or INT64 (epoch ms), got ${input.datatype}`, { field: 'date' }, 422, 'invalid_datatype');
    } else if (!NUMERIC.has(input.datatype))
      throw new DataError(`input '${label}' must be numeric (FP64), got ${input.datatype}`, { field: label }, 422, 'invalid_datatype');
    const { rows, cell } = tensorCells(input);
    // Flat data is already the column; nested [n, 1] data is copied once (n values, all sent).
    const flat = input.data.length === rows && !Array.isArray(input.data[0]) ? input.data : Array.from({ length: rows }, (_, r) => cell(r, 0));
    columns.set(name, flat);
  }
  return barsFromColumns(columns);
}

/** The outputs a request asks for (all three by default), checked before any bar is merged. */
export function requestedOutputs(outputs: InferRequest['outputs']): OutputName[] {
  if (outputs === undefined) return [...OUTPUT_NAMES];
  const wanted: OutputName[] = [];
  for (const o of outputs) {
    const name = typeof o?.name === 'string' ? o.name : String(o?.name);
    if (!OUTPUT_SET.has(name))
      throw new ForecastError(`unknown output '${echoName(name)}' (outputs: ${OUTPUT_NAMES.join(', ')})`, 400, 'unknown_output', { field: echoName(name) });
    if (wanted.includes(name as OutputName)) throw new ForecastError(`output '${name}' is requested twice`, 400, 'duplicate_output', { field: name });
    wanted.push(name as OutputName);
  }
  return wanted;
}

function metadata(ctx: ServiceContext, m: ServedModel) {
  const fs = m.bundle.manifest.featureSet;
  return {
    name: m.name,
    versions: ctx.registry.versions(m.name).map((v) => v.version),
    platform: `forecast-service/${m.bundle.manifest.model.kind}`,
    inputs: [
      { name: 'date', datatype: 'BYTES', shape: [-1] },
      ...BAR_COLUMNS.slice(1).map((c) => ({ name: c, datatype: 'FP64', shape: [-1] })),
    ],
    outputs: [
      { name: 'y_pred', datatype: 'FP64', shape: [-1] },
      { name: 'date', datatype: 'BYTES', shape: [-1] },
      { name: 'reason', datatype: 'BYTES', shape: [-1] },
    ],
    parameters: { version: m.version, feature_set: fs.name, lookahead: fs.lookahead, content: 'daily OHLCV bars in; next-bar return forecast out' },
  };
}

const tags = ['open-inference-v2'];

async function oipPublicRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.get('/v2', { schema: { tags, summary: 'Server metadata (no key)' } }, async () => ({
    name: 'forecast-service',
    version: ctx.serverVersion,
    extensions: [],
  }));
  app.get('/v2/health/live', { schema: { tags, summary: 'Liveness (no key)' } }, async () => ({ live: true }));
  app.get('/v2/health/ready', { schema: { tags, summary: 'Readiness (no key)' } }, async (_req, reply) => {
    const r = await ctx.readiness.check();
    return reply.status(r.ready ? 200 : 503).send({ ready: r.ready });
  });
}

async function oipClientRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  type P = { name: string; version?: string };
  const modelOf = (req: FastifyRequest<{ Params: P }>) => ctx.registry.resolve(req.params.name, req.params.version ?? null);
  for (const [prefix, params] of [
    ['/v2/models/:name', nameParams],
    ['/v2/models/:name/versions/:version', nameVersionParams],
  ] as const) {
    const base = { tags, security: apiKeySecurity, params };
    app.get<{ Params: P }>(prefix, { schema: { ...base, summary: 'Model metadata', response: errorResponses } }, async (req) => metadata(ctx, modelOf(req)));
    app.get<{ Params: P }>(
      `${prefix}/ready`,
      {
        schema: {
          ...base,
          summary: 'Model readiness',
          // A 503 is mostly the readiness itself (not ready); an error only when there is nothing to serve.
          response: { ...errorResponses, 503: { description: 'Not ready, or no model to serve', anyOf: [modelReadyBody, { $ref: 'ErrorResponse#' }] } },
        },
      },
      async (req, reply) => {
      const m = modelOf(req);
      const r = await ctx.readiness.check();
      return reply.status(r.ready ? 200 : 503).send({ name: m.name, version: m.version, ready: r.ready });
      },
    );
    app.post<{ Params: P; Body: InferRequest }>(
      `${prefix}/infer`,
      { schema: { ...base, summary: 'Inference: bars in, next-bar return forecasts out', body: inferBody, response: errorResponses } },
      async (req) => {
        // Resolved before the inputs are read: an unknown model is a 404 whatever the body holds.
        modelOf(req);
        const bars = await barsFromInferInputs(req.body.inputs);
        // Before the forecast: a request refused for its outputs must not have merged its bars.
        const wanted = requestedOutputs(req.body.outputs);
        const out = await runForecast(ctx, req, { name: req.params.name, version: req.params.version ?? null }, bars, req.body.parameters?.replace === true);
        const m = out.model;
        const n = out.forecasts.length;
        const output = (w: OutputName) => {
          switch (w) {
            case 'y_pred':
              return { name: w, datatype: 'FP64', shape: [n], data: out.forecasts.map((f) => f.y_pred) };
            case 'date':
              return { name: w, datatype: 'BYTES', shape: [n], data: out.forecasts.map((f) => f.date) };
            case 'reason':
              return { name: w, datatype: 'BYTES', shape: [n], data: out.forecasts.map((f) => f.reason ?? '') };
          }
        };
        return {
          model_name: m.name,
          model_version: m.version,
          id: req.body.id ?? String(req.id),
          parameters: { history_version: out.history.version, history_bars: out.history.bars, added: out.history.added, replaced: out.history.replaced },
          outputs: wanted.map(output),
        };
      },
    );
  }
}

export const oipProtocol: ProtocolRoutes = { public: oipPublicRoutes, client: oipClientRoutes };
