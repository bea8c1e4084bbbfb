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
import { DataError, ForecastError } from '../../errors.js';
import { BAR_COLUMNS, barsFromColumns, barsFromSplit } from '../bar-table.js';
import { runForecast, type ServiceContext } from '../context.js';
import type { ServedModel } from '../registry.js';
import { nameParams, nameVersionParams } from './split.js';

const DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'] as const;
const NUMERIC = new Set(['UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64']);
const DECIMAL_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

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
          parameters: { type: 'object', properties: { columns: { type: 'array', items: { type: 'string' } } } },
        },
      },
    },
    outputs: { type: 'array', items: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } },
  },
} as const;

function flatten(input: InferInput): unknown[] {
  const out: unknown[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) for (const x of v) walk(x);
    else out.push(v);
  };
  walk(input.data);
  const expected = input.shape.reduce((a, b) => a * b, 1);
  if (out.length !== expected)
    throw new DataError(`input '${input.name}': shape [${input.shape.join(', ')}] needs ${expected} values, data has ${out.length}`, { field: input.name }, 422, 'invalid_shape');
  return out;
}

/** A BYTES cell holding a number: a plain decimal, read correctly rounded. */
function bytesNumber(v: unknown, row: number, field: string): unknown {
  if (typeof v !== 'string') return v;
  const s = v.trim();
  if (!DECIMAL_RE.test(s)) throw new DataError(`row ${row}, field '${field}': '${v}' is not a decimal number`, { row, field }, 422, 'invalid_type');
  return Number(s);
}

function bytesDate(v: unknown): unknown {
  return typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v.trim()) : v;
}

/** OIP inputs → the internal bar table. */
export function barsFromInferInputs(inputs: readonly InferInput[]) {
  if (inputs.length === 1 && inputs[0].shape.length === 2) {
    const t = inputs[0];
    const cols = t.parameters?.columns ?? [...BAR_COLUMNS];
    if (t.shape[1] !== cols.length)
      throw new DataError(`input '${t.name}': shape [${t.shape.join(', ')}] must have ${cols.length} columns (${cols.join(', ')})`, { field: t.name }, 422, 'invalid_shape');
    if (t.datatype !== 'FP64' && t.datatype !== 'BYTES')
      throw new DataError(`input '${t.name}': a whole-table tensor must be FP64 or BYTES, got ${t.datatype}`, { field: t.name }, 422, 'invalid_datatype');
    const flat = flatten(t);
    const w = cols.length;
    const rows: unknown[][] = [];
    for (let r = 0; r < t.shape[0]; r++) {
      const row = flat.slice(r * w, (r + 1) * w);
      if (t.datatype === 'BYTES')
        for (let j = 0; j < w; j++) row[j] = cols[j].toLowerCase() === 'date' ? bytesDate(row[j]) : bytesNumber(row[j], r, cols[j]);
      rows.push(row);
    }
    return barsFromSplit({ columns: cols, data: rows });
  }
  const columns = new Map<string, unknown[]>();
  for (const input of inputs) {
    const name = input.name.trim().toLowerCase();
    if (!(BAR_COLUMNS as readonly string[]).includes(name))
      throw new DataError(`input '${input.name}' is not a bar field (expected ${BAR_COLUMNS.join(', ')}, or one [n, 6] tensor)`, { field: input.name }, 422, 'unknown_column');
    if (columns.has(name)) throw new DataError(`input '${input.name}' appears twice`, { field: input.name }, 422, 'duplicate_column');
    if (input.shape.length === 2 && input.shape[1] !== 1)
      throw new DataError(`input '${input.name}': shape must be [n] or [n, 1], got [${input.shape.join(', ')}]`, { field: input.name }, 422, 'invalid_shape');
    if (name === 'date') {
      if (input.datatype !== 'BYTES' && input.datatype !== 'INT64' && input.datatype !== 'FP64')
        throw new DataError(`input 'date' must be BYTES (ISO-8601) or INT64 (epoch ms), got ${input.datatype}`, { field: 'date' }, 422, 'invalid_datatype');
    } else if (!NUMERIC.has(input.datatype))
      throw new DataError(`input '${input.name}' must be numeric (FP64), got ${input.datatype}`, { field: input.name }, 422, 'invalid_datatype');
    columns.set(name, flatten(input));
  }
  return barsFromColumns(columns);
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

export async function oipProtocol(app: FastifyInstance, opts: { ctx: ServiceContext; serverVersion: string }): Promise<void> {
  const { ctx } = opts;
  const tags = ['open-inference-v2'];
  app.get('/v2', { schema: { tags, summary: 'Server metadata (no key)' } }, async () => ({
    name: 'forecast-service',
    version: opts.serverVersion,
    extensions: [],
  }));
  app.get('/v2/health/live', { schema: { tags, summary: 'Liveness (no key)' } }, async () => ({ live: true }));
  app.get('/v2/health/ready', { schema: { tags, summary: 'Readiness (no key)' } }, async (_req, reply) => {
    const ready = ctx.state.ready && !ctx.state.shuttingDown;
    return reply.status(ready ? 200 : 503).send({ ready });
  });

  type P = { name: string; version?: string };
  const secured = { onRequest: ctx.auth.hook };
  const modelOf = (req: FastifyRequest<{ Params: P }>) => ctx.registry.resolve(req.params.name, req.params.version ?? null);
  for (const [prefix, params] of [
    ['/v2/models/:name', nameParams],
    ['/v2/models/:name/versions/:version', nameVersionParams],
  ] as const) {
    const base = { tags, security: [{ apiKey: [] }], params };
    app.get<{ Params: P }>(prefix, { ...secured, schema: { ...base, summary: 'Model metadata' } }, async (req) => metadata(ctx, modelOf(req)));
    app.get<{ Params: P }>(`${prefix}/ready`, { ...secured, schema: { ...base, summary: 'Model readiness' } }, async (req) => {
      const m = modelOf(req);
      return { name: m.name, version: m.version, ready: ctx.state.ready };
    });
    app.post<{ Params: P; Body: InferRequest }>(
      `${prefix}/infer`,
      { ...secured, schema: { ...base, summary: 'Inference: bars in, next-bar return forecasts out', body: inferBody, response: { '4xx': { $ref: 'Error#' } } } },
      async (req) => {
        const m = modelOf(req);
        const bars = barsFromInferInputs(req.body.inputs);
        const out = await runForecast(ctx, req, m, bars, req.body.parameters?.replace === true);
        const n = out.forecasts.length;
        const all = {
          y_pred: { name: 'y_pred', datatype: 'FP64', shape: [n], data: out.forecasts.map((f) => f.y_pred) },
          date: { name: 'date', datatype: 'BYTES', shape: [n], data: out.forecasts.map((f) => f.date) },
          reason: { name: 'reason', datatype: 'BYTES', shape: [n], data: out.forecasts.map((f) => f.reason ?? '') },
        };
        const wanted = req.body.outputs?.map((o) => o.name) ?? Object.keys(all);
        for (const w of wanted)
          if (!(w in all)) throw new ForecastError(`unknown output '${w}' (outputs: ${Object.keys(all).join(', ')})`, 400, 'unknown_output', { field: w });
        return {
          model_name: m.name,
          model_version: m.version,
          id: req.body.id ?? String(req.id),
          parameters: { history_version: out.history.version, history_bars: out.history.bars, added: out.history.added, replaced: out.history.replaced },
          outputs: wanted.map((w) => all[w as keyof typeof all]),
        };
      },
    );
  }
}
