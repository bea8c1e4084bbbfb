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
import { forecastQuerySchema, runForecast, wantsReplace, type ForecastQuery, type ServiceContext } from '../context.js';

const MLFLOW_INPUT_KEYS = ['dataframe_split', 'dataframe_records', 'instances', 'inputs'];

const invocationsBody = {
  type: 'object',
  description: 'MLflow scoring input: exactly one of dataframe_split, dataframe_records.',
  properties: {
    dataframe_split: { $ref: 'SplitFrame#' },
    dataframe_records: { type: 'array', minItems: 1, items: { type: 'object', additionalProperties: { type: ['number', 'string', 'null'] } } },
    instances: {},
    inputs: {},
    params: { type: 'object' },
  },
  additionalProperties: false,
} as const;

interface InvocationsBody {
  dataframe_split?: { columns: string[]; index?: unknown[]; data: unknown[][] };
  dataframe_records?: Record<string, unknown>[];
  instances?: unknown;
  inputs?: unknown;
}

export async function mlflowProtocol(app: FastifyInstance, opts: { ctx: ServiceContext }): Promise<void> {
  const { ctx } = opts;
  app.post<{ Body: InvocationsBody; Querystring: ForecastQuery }>(
    '/invocations',
    {
      onRequest: ctx.auth.hook,
      schema: {
        tags: ['mlflow'],
        summary: 'MLflow scoring: dataframe_split or dataframe_records in, predictions out',
        security: [{ apiKey: [] }],
        querystring: {
          ...forecastQuerySchema,
          properties: { ...forecastQuerySchema.properties, model: { type: 'string', minLength: 1, maxLength: 128, description: 'Model name (default model when absent).' } },
        },
        body: invocationsBody,
        response: {
          200: { type: 'object', properties: { predictions: { type: 'array', items: { type: ['number', 'null'] } } } },
          '4xx': { $ref: 'Error#' },
        },
      },
    },
    async (request: FastifyRequest<{ Body: InvocationsBody; Querystring: ForecastQuery }>) => {
      const body = request.body;
      const given = MLFLOW_INPUT_KEYS.filter((k) => (body as Record<string, unknown>)[k] !== undefined);
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
      const bars = body.dataframe_split ? barsFromSplit(body.dataframe_split) : barsFromRecords(body.dataframe_records!);
      const model = ctx.registry.resolve(request.query.model ?? null, request.query.version ?? null);
      const out = await runForecast(ctx, request, model, bars, wantsReplace(request.query));
      return { predictions: out.forecasts.map((f) => f.y_pred) };
    },
  );
  app.get('/ping', { schema: { tags: ['mlflow', 'health'], summary: 'MLflow health check (no key)' } }, async (_req, reply) => {
    if (!ctx.state.ready || ctx.state.shuttingDown) return reply.status(503).send('\n');
    return reply.type('application/json').send('\n');
  });
}
