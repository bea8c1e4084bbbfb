/**
 * The seed's protocol: a pandas "split" frame of bars in, one forecast per bar out.
 *
 *   POST /forecast                                    default model, newest version (?version= to pin)
 *   POST /models/{name}/forecast                      named model, newest version (?version= to pin)
 *   POST /models/{name}/versions/{version}/forecast   named model and version
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { barsFromSplit } from '../bar-table.js';
import { runForecast, type ProtocolRoutes, type ServiceContext } from '../context.js';
import { apiKeySecurity, errorResponses, forecastQuerySchema, nameParams, nameVersionParams, splitFrameBody, wantsReplace, type ForecastQuery } from '../schemas.js';
import type { ForecastOutcome } from '../forecast.js';

const forecastResponse = {
  type: 'object',
  required: ['model', 'forecasts', 'y_pred'],
  properties: {
    model: { type: 'string', description: 'name@version' },
    forecasts: { type: 'array', items: { $ref: 'BarForecast#' } },
    y_pred: { type: 'array', items: { type: ['number', 'null'] } },
    history: { $ref: 'HistoryInfo#' },
  },
} as const;

export function splitResponse(out: ForecastOutcome) {
  return { model: out.model.id, forecasts: out.forecasts, y_pred: out.forecasts.map((f) => f.y_pred), history: out.history };
}

interface SplitBody {
  columns: string[];
  index?: unknown[];
  data: unknown[][];
}

async function splitRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  const common = {
    tags: ['forecast'],
    security: apiKeySecurity,
    body: splitFrameBody,
    response: { 200: forecastResponse, ...errorResponses },
  };
  const handle = async (request: FastifyRequest<{ Body: SplitBody; Querystring: ForecastQuery }>, name: string | null, version: string | null) => {
    const target = { name, version: version ?? request.query.version ?? null };
    // Resolved before the body is read: an unknown model is a 404 whatever the body holds.
    ctx.registry.resolve(target.name, target.version);
    const bars = await barsFromSplit(request.body);
    return splitResponse(await runForecast(ctx, request, target, bars, wantsReplace(request.query)));
  };
  app.post<{ Body: SplitBody; Querystring: ForecastQuery }>(
    '/forecast',
    { schema: { ...common, summary: 'Forecast with the default model', querystring: forecastQuerySchema } },
    (req) => handle(req, null, null),
  );
  app.post<{ Body: SplitBody; Querystring: ForecastQuery; Params: { name: string } }>(
    '/models/:name/forecast',
    { schema: { ...common, summary: 'Forecast with a named model', querystring: forecastQuerySchema, params: nameParams } },
    (req) => handle(req, req.params.name, null),
  );
  app.post<{ Body: SplitBody; Querystring: ForecastQuery; Params: { name: string; version: string } }>(
    '/models/:name/versions/:version/forecast',
    {
      schema: {
        ...common,
        summary: 'Forecast with a named model version',
        querystring: { ...forecastQuerySchema, properties: { replace: forecastQuerySchema.properties.replace } },
        params: nameVersionParams,
      },
    },
    (req) => handle(req, req.params.name, req.params.version),
  );
}

/** The seed's protocol: keyed routes only. */
export const splitProtocol: ProtocolRoutes = { client: splitRoutes };
