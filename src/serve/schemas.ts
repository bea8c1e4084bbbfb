/**
 * JSON schemas shared by several protocols and routes: those with an `$id` are registered once
 * (`SHARED_SCHEMAS`, by the app) and referenced as `{ $ref: 'Name#' }`. A protocol's own request and
 * response schemas live in its module.
 */

/** The one error shape of every endpoint. */
export const errorSchema = {
  $id: 'ErrorResponse',
  type: 'object',
  description: 'An error: what is wrong, and the request id to find it in the logs.',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'request_id'],
      properties: {
        code: { type: 'string', description: 'Machine-readable error code, e.g. invalid_value, conflict, unauthorized.' },
        message: { type: 'string', description: 'What is wrong, naming the row and field where there is one.' },
        details: { type: 'object', additionalProperties: true, description: 'Structured detail: row, field, stored and submitted values...' },
        request_id: { type: 'string', description: 'Also in the x-request-id response header and the logs.' },
      },
    },
  },
} as const;

/**
 * The responses of an endpoint that may fail (every keyed one): its 4xx and 5xx answers are the error
 * shape, so the OpenAPI document says so, and fastify serializes them with it.
 */
export const errorResponses = { '4xx': { $ref: 'ErrorResponse#' }, '5xx': { $ref: 'ErrorResponse#' } } as const;

/**
 * The one bar every documented example sends. Dated after the demo model's history (it ends before
 * 2023-07-03) with consistent OHLCV (low <= open, close <= high), so "Try it out" is accepted by the demo
 * model at any time. Every protocol's example sends this same bar: the first call adds it to the model's
 * history, any later one (by any protocol) finds it stored with the same values and is 'unchanged',
 * not a 409 conflict.
 */
export const EXAMPLE_BAR = { date: '2030-01-02', open: 100.5, high: 101.25, low: 99.75, close: 100.75, volume: 1000000 } as const;

/** EXAMPLE_BAR as a split frame (the body of /forecast, and MLflow's dataframe_split). */
export const splitFrameExample = {
  columns: ['date', 'open', 'high', 'low', 'close', 'volume'],
  data: [[EXAMPLE_BAR.date, EXAMPLE_BAR.open, EXAMPLE_BAR.high, EXAMPLE_BAR.low, EXAMPLE_BAR.close, EXAMPLE_BAR.volume]],
};

/** Model name and version of the documented examples: those of the demo model `npm start` serves. */
const EXAMPLE_MODEL = { name: 'demo', version: '1' } as const;

const cell = { type: ['number', 'string', 'null'] } as const;

/**
 * A split frame, as a route's whole body: inline rather than `{ $ref: 'SplitFrame#' }`, because
 * @fastify/swagger drops a $ref's sibling keywords, and with them the request example of the operation.
 */
export const splitFrameBody = {
  type: 'object',
  description:
    'pandas DataFrame.to_json(orient="split") of daily bars: columns date, open, high, low, close, volume in any order; ' +
    'dates as epoch milliseconds or ISO-8601 strings (or in `index` when there is no date column); rows oldest first, one per date.',
  required: ['columns', 'data'],
  properties: {
    columns: { type: 'array', items: { type: 'string', maxLength: 64 }, minItems: 1, maxItems: 64 },
    index: { type: 'array', items: cell },
    data: { type: 'array', minItems: 1, items: { type: 'array', items: cell } },
  },
  additionalProperties: false,
  // The standard `examples` keyword, which ajv accepts as an annotation; @fastify/swagger makes it the
  // request example of the operation.
  examples: [splitFrameExample],
} as const;

/** The split frame as a shared schema, for bodies that hold one (MLflow's dataframe_split). */
export const splitFrameSchema = { $id: 'SplitFrame', ...splitFrameBody } as const;

export const barForecastSchema = {
  $id: 'BarForecast',
  type: 'object',
  required: ['date', 'y_pred'],
  properties: {
    date: { type: 'string', description: 'YYYY-MM-DD' },
    y_pred: { type: ['number', 'null'], description: "Forecast of the next bar's return close[t+1]/close[t]; null when the features are not usable." },
    reason: { type: 'string', description: 'Why y_pred is null.' },
    provisional: { type: 'boolean', description: "True for the newest bars of a look-ahead feature set: will change when later bars arrive." },
  },
} as const;

export const historyInfoSchema = {
  $id: 'HistoryInfo',
  type: 'object',
  properties: {
    version: { type: 'integer' },
    bars: { type: 'integer' },
    last_date: { type: ['string', 'null'] },
    added: { type: 'integer' },
    replaced: { type: 'integer' },
    unchanged: { type: 'integer' },
  },
} as const;

/** Registered once by the app, in this order (later ones may reference earlier ones). */
export const SHARED_SCHEMAS = [errorSchema, splitFrameSchema, barForecastSchema, historyInfoSchema] as const;

export const nameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 128, examples: [EXAMPLE_MODEL.name] } },
} as const;

export const nameVersionParams = {
  type: 'object',
  required: ['name', 'version'],
  properties: {
    name: nameParams.properties.name,
    version: { type: 'string', minLength: 1, maxLength: 128, examples: [EXAMPLE_MODEL.version] },
  },
} as const;

/** The query every forecast endpoint accepts. */
export const forecastQuerySchema = {
  type: 'object',
  properties: {
    version: { type: 'string', minLength: 1, maxLength: 128, description: 'Model version (default: the newest).', examples: [EXAMPLE_MODEL.version] },
    replace: {
      type: 'string',
      enum: ['true', 'false', '1', '0'],
      examples: ['false'],
      description: 'Replace stored bars whose values differ (default false: such a bar is a 409 conflict).',
    },
  },
  additionalProperties: false,
} as const;

export interface ForecastQuery {
  version?: string;
  replace?: 'true' | 'false' | '1' | '0';
  model?: string;
}

export function wantsReplace(q: ForecastQuery | undefined): boolean {
  return q?.replace === 'true' || q?.replace === '1';
}

/** Security requirement of keyed routes in the OpenAPI document. */
export const apiKeySecurity = [{ apiKey: [] }];
