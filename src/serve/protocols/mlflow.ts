/**
 * MLflow's scoring protocol (`mlflow models serve`), on the same models and history:
 *
 *   GET  /ping          200 when ready (no key)
 *   POST /invocations   {"dataframe_split": <split frame>} or {"dataframe_records": [{date, open, ...}]}
 *                       → {"predictions": [y_pred | null, ...]}, one per submitted bar, in order
 *
 * Default model and newest version; `?model=NAME&version=V` pick another, `?replace=true` as for /forecast.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ForecastError } from '../../errors.js';
import { barsFromRecords, barsFromSplit } from '../bar-table.js';
import { runForecast, type ProtocolRoutes, type ServiceContext } from '../context.js';
import { apiKeySecurity, errorResponses, EXAMPLE_BAR, forecastQuerySchema, nameParams, splitFrameExample, wantsReplace, type ForecastQuery } from '../schemas.js';

const MLFLOW_INPUT_KEYS = ['dataframe_split', 'dataframe_records', 'instances', 'inputs'];

const invocationsBody = {
  type: 'object',
  description: 'MLflow scoring input: exactly one of dataframe_split, dataframe_records.',
  properties: {
    dataframe_split: { $ref: 'SplitFrame#' },
    // maxProperties (checked by ajv before it walks the keys): a record has six fields; 64 leaves room
    // to name an unknown one, while a record of 60,000 keys is refused without enumerating them twice.
    dataframe_records: {
      type: 'array',
      minItems: 1,
      items: { type: 'object', maxProperties: 64, additionalProperties: { type: ['number', 'string', 'null'] } },
    },
    instances: {},
    inputs: {},
    params: { type: 'object' },
  },
  additionalProperties: false,
  // One example per accepted input, both of the one documented bar (see EXAMPLE_BAR).
  examples: [{ dataframe_split: splitFrameExample }, { dataframe_records: [EXAMPLE_BAR] }],
} as const;

interface InvocationsBody {
  dataframe_split?: { columns: string[]; index?: unknown[]; data: unknown[][] };
  dataframe_records?: Record<string, unknown>[];
  instances?: unknown;
  inputs?: unknown;
}

async function mlflowClientRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.post<{ Body: InvocationsBody; Querystring: ForecastQuery }>(
    '/invocations',
    {
      schema: {
        tags: ['mlflow'],
        summary: 'MLflow scoring: dataframe_split or dataframe_records in, predictions out',
        security: apiKeySecurity,
        querystring: {
          ...forecastQuerySchema,
          properties: { ...forecastQuerySchema.properties, model: { ...nameParams.properties.name, description: 'Model name (default model when absent).' } },
        },
        body: invocationsBody,
        response: {
          200: { type: 'object', properties: { predictions: { type: 'array', items: { type: ['number', 'null'] } } } },
          ...errorResponses,
        },
      },
    },
    async (request: FastifyRequest<{ Body: InvocationsBody; Querystring: ForecastQuery }>) => {
      const body = request.body;
      // Own keys only: nothing inherited can pose as an input.
      const given = MLFLOW_INPUT_KEYS.filter((k) => Object.hasOwn(body, k));
      if (given.length !== 1)
        throw new ForecastError(
          `send exactly one of dataframe_split, dataframe_records (got ${given.length ? given.join(', ') : 'none'})`,
          400,
          'invalid_request',
          { accepted: ['dataframe_split', 'dataframe_records'] },
        );
      if (given[0] === 'instances' || given[0] === 'inputs')
        throw new ForecastError(`'${given[0]}' tensors are not accepted: this model takes a bar table (dataframe_split or dataframe_records)`, 422, 'unsupported_input', {
          accepted: ['dataframe_split', 'dataframe_records'],
        });
      const bars = await (body.dataframe_split ? barsFromSplit(body.dataframe_split) : barsFromRecords(body.dataframe_records!));
      const out = await runForecast(ctx, request, { name: request.query.model ?? null, version: request.query.version ?? null }, bars, wantsReplace(request.query));
      return { predictions: out.forecasts.map((f) => f.y_pred) };
    },
  );
}

async function mlflowPublicRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.get('/ping', { schema: { tags: ['mlflow', 'health'], summary: 'MLflow health check (no key)' } }, async (_req, reply) => {
    const r = await ctx.readiness.check();
    return reply.status(r.ready ? 200 : 503).type('application/json').send('\n');
  });
}

export const mlflowProtocol: ProtocolRoutes = { public: mlflowPublicRoutes, client: mlflowClientRoutes };
