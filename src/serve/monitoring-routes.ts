/**
 *   client   GET /models/{name}/monitoring    live metrics, baselines, offline metrics and the state (?version=)
 */
import type { FastifyInstance } from 'fastify';
import type { ServiceContext } from './context.js';
import { apiKeySecurity, errorResponses, forecastQuerySchema, nameParams } from './schemas.js';

export async function monitoringRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.get<{ Params: { name: string }; Querystring: { version?: string } }>(
    '/models/:name/monitoring',
    {
      schema: {
        tags: ['models'],
        summary: 'Live accuracy of a model version against its offline evaluation (?version=; default the newest)',
        description:
          "Every forecast of a model's newest bar is logged, and scored when the next bar is stored; this answers the live MAE, MSE, R² and " +
          'directional hit rate over the newest 20, 60 and 250 scored bars and since deployment, beside the persistence and training-mean ' +
          'baselines on the same bars and the offline evaluation, and the state ok | degraded | insufficient_data (docs/serving.md says how it is decided).',
        security: apiKeySecurity,
        params: nameParams,
        querystring: { type: 'object', properties: { version: forecastQuerySchema.properties.version }, additionalProperties: false },
        response: errorResponses,
      },
    },
    async (req) => {
      // Caught up first: the default version is the one the stored routing names now.
      await ctx.registry.resolve(req.params.name, req.query.version ?? null).history.sync();
      return ctx.monitor.report(ctx.registry.resolve(req.params.name, req.query.version ?? null));
    },
  );
}
