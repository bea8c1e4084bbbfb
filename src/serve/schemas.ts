/**
 * JSON schemas shared by several protocols and routes: those with an `$id` are registered once
 * (`SHARED_SCHEMAS`, by the app) and referenced as `{ $ref: 'Name#' }`. A protocol's own request and
 * response schemas live in its module.
 */

/** The one error shape of every endpoint. */
export const errorSchema = {
  $id: 'Error',
  type: 'object',
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

const cell = { type: ['number', 'string', 'null'] } as const;

export const splitFrameSchema = {
  $id: 'SplitFrame',
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
  examples: [
    {
      columns: ['date', 'open', 'high', 'low', 'close', 'volume'],
      index: [8161],
      data: [[1532563200000, 107.18, 108.72, 106.79, 107.26, 49010000]],
    },
  ],
} as const;

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
  properties: { name: { type: 'string', minLength: 1, maxLength: 128 } },
} as const;

export const nameVersionParams = {
  type: 'object',
  required: ['name', 'version'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 128 }, version: { type: 'string', minLength: 1, maxLength: 128 } },
} as const;

/** The query every forecast endpoint accepts. */
export const forecastQuerySchema = {
  type: 'object',
  properties: {
    version: { type: 'string', minLength: 1, maxLength: 128, description: 'Model version (default: the newest).' },
    replace: {
      type: 'string',
      enum: ['true', 'false', '1', '0'],
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
