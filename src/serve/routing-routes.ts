/**
 * Which version of a model answers, and which runs in shadow beside it:
 *
 *   admin    POST /admin/models/{name}/promote   {"version": V}: V answers requests that name no version
 *   admin    POST /admin/models/{name}/shadow    {"version": V | null}: V forecasts every default request too, logged and scored, never returned
 *
 * The routing is stored beside the model's history (one write that bumps its version), so every
 * worker and replica switches at its next request's catch-up read, and a request is answered by
 * the one version chosen after that read (./forecast.ts): never by a half-switched registry.
 */
import type { FastifyInstance } from 'fastify';
import { ForecastError } from '../errors.js';
import type { Routing } from '../store/types.js';
import type { ServiceContext } from './context.js';
import type { ServedModel } from './registry.js';
import { errorResponses, nameParams } from './schemas.js';

/** The routing as the answers show it. */
function routingView(name: string, routing: Routing, effectiveDefault: ServedModel) {
  return { model: name, default_version: effectiveDefault.version, promoted: routing.defaultVersion !== null, shadow_version: routing.shadowVersion };
}

/** A version of `name` that this process serves (the one a client could be routed to). */
function servedVersion(ctx: ServiceContext, name: string, version: string): ServedModel {
  return ctx.registry.resolve(name, version);
}

/**
 * The model's history, caught up with the store: the routing this process holds may be older than
 * one another worker or replica stored, and an admin decision must start from the stored one.
 */
async function freshHistory(ctx: ServiceContext, name: string) {
  const history = historyOf(ctx, name);
  await history.sync();
  return history;
}

/** The history a model's versions share (404 for a model not served). */
function historyOf(ctx: ServiceContext, name: string) {
  return ctx.registry.resolve(name, ctx.registry.versions(name)[0]?.version ?? null).history;
}

/** Stores `change` and catches up, so this process answers from the new routing at once. */
async function applyRouting(ctx: ServiceContext, name: string, change: Partial<Routing>): Promise<Routing> {
  const history = historyOf(ctx, name);
  return history.lock.run(async () => {
    const r = await ctx.store.setRouting(name, change);
    await history.sync();
    return r.routing;
  });
}

/** Applies the routing of SHADOW_VERSIONS at start; an entry for a model or version not served here is a warning, not a failed start. */
export async function applyConfiguredShadows(ctx: ServiceContext, warn: (msg: string, extra: Record<string, unknown>) => void): Promise<void> {
  for (const entry of ctx.config.shadowVersions) {
    const at = entry.lastIndexOf('@');
    const name = entry.slice(0, at);
    const version = entry.slice(at + 1);
    try {
      servedVersion(ctx, name, version);
      if (ctx.registry.versions(name)[0].history.routing.shadowVersion === version) continue;
      await applyRouting(ctx, name, { shadowVersion: version });
    } catch (err) {
      warn(`SHADOW_VERSIONS: ${entry} not applied: ${(err as Error).message}`, { entry });
    }
  }
}

const versionBody = (nullable: boolean, description: string) =>
  ({
    type: 'object',
    required: ['version'],
    properties: { version: { type: nullable ? ['string', 'null'] : 'string', minLength: 1, maxLength: 128, description } },
    additionalProperties: false,
    // The demo model's only version for promote; no shadow for shadow (its one version cannot shadow itself).
    examples: [{ version: nullable ? null : '1' }],
  }) as const;

export async function routingAdminRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  const sec = [{ adminKey: [] }];
  app.post<{ Params: { name: string }; Body: { version: string } }>(
    '/admin/models/:name/promote',
    {
      schema: {
        tags: ['admin'],
        summary: 'Make a version the default of its model, for every worker and replica (admin key)',
        security: sec,
        params: nameParams,
        body: versionBody(false, 'The version to answer requests that name no version.'),
        response: errorResponses,
      },
    },
    async (req) => {
      const { name } = req.params;
      const target = servedVersion(ctx, name, req.body.version);
      await freshHistory(ctx, name);
      const before = ctx.registry.resolve(name);
      const current = before.history.routing;
      // The promoted version stops being the shadow: it is the one answering now.
      const routing = await applyRouting(ctx, name, { defaultVersion: target.version, shadowVersion: current.shadowVersion === target.version ? null : current.shadowVersion });
      req.log.warn({ model: name, from: before.version, to: target.version, routing }, 'model version promoted');
      return { ...routingView(name, routing, ctx.registry.resolve(name)), previous_default_version: before.version };
    },
  );

  app.post<{ Params: { name: string }; Body: { version: string | null } }>(
    '/admin/models/:name/shadow',
    {
      schema: {
        tags: ['admin'],
        summary: 'Run a version in shadow beside the default (null: none), for every worker and replica (admin key)',
        security: sec,
        params: nameParams,
        body: versionBody(true, 'The version to run in shadow, or null to stop.'),
        response: errorResponses,
      },
    },
    async (req) => {
      const { name } = req.params;
      const version = req.body.version;
      await freshHistory(ctx, name);
      const effective = ctx.registry.resolve(name);
      if (version !== null) {
        servedVersion(ctx, name, version);
        if (version === effective.version)
          throw new ForecastError(`version '${version}' is the default of model '${name}': a shadow runs beside the default, not as it`, 409, 'shadow_is_default', { model: name, version });
      }
      const routing = await applyRouting(ctx, name, { shadowVersion: version });
      req.log.warn({ model: name, shadow: version, routing }, version === null ? 'shadow version stopped' : 'shadow version set');
      return routingView(name, routing, ctx.registry.resolve(name));
    },
  );
}
