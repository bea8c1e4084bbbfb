/**
 * Access control, decided by where a route is registered (fastify encapsulation): every route of
 * the service is registered inside exactly one access context, `public`, `client` or `admin`.
 * The `client` and `admin` contexts carry their key check as an `onRequest` hook of the context, so
 * a route cannot be added to them without it; an `onRoute` hook in each context records the route's
 * access, and `RouteAccessLog.unclassified()` lists any route registered outside every context
 * (a test asserts there is none, apart from the explicit public list).
 */
import { hash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { ForecastError } from '../errors.js';

export type RouteAccess = 'public' | 'client' | 'admin';

function digest(key: string): Buffer {
  return hash('sha256', key, 'buffer');
}

/** Longest header value worth hashing: keys are at most 512 characters (src/config.ts). */
const MAX_KEY_HEADER = 1024;

/** The key a request carries: `x-api-key: KEY`, or `Authorization: Bearer KEY` (scheme case-insensitive, RFC 9110 §11.1). */
export function presentedKey(request: FastifyRequest): string | undefined {
  const key = request.headers['x-api-key'];
  if (typeof key === 'string') return key.trim();
  const auth = request.headers.authorization;
  if (typeof auth !== 'string' || auth.length > MAX_KEY_HEADER) return undefined;
  const space = auth.indexOf(' ');
  if (space < 0 || auth.slice(0, space).toLowerCase() !== 'bearer') return undefined;
  return auth.slice(space + 1).trim();
}

/**
 * A set of keys compared as SHA-256 digests with crypto.timingSafeEqual, always against every
 * configured key, so neither a key's length nor its prefix leaks through timing.
 */
export class KeySet {
  private readonly digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
  }

  get size(): number {
    return this.digests.length;
  }

  matches(candidate: string): boolean {
    if (candidate.length > MAX_KEY_HEADER) return false;
    const d = digest(candidate);
    let ok = false;
    for (const k of this.digests) ok = timingSafeEqual(d, k) || ok;
    return ok;
  }
}

/** Client and admin key checks of one app. */
export class ApiKeyAuth {
  private readonly clients: KeySet;
  private readonly admins: KeySet;
  /** `--insecure-dev` with no client keys: client routes check nothing. */
  private readonly clientsOpen: boolean;
  /** `--insecure-dev` with no admin keys: admin routes check nothing. */
  private readonly adminsOpen: boolean;

  constructor(clientKeys: readonly string[], adminKeys: readonly string[], insecureDev: boolean) {
    this.clients = new KeySet(clientKeys);
    this.admins = new KeySet(adminKeys);
    this.clientsOpen = insecureDev && clientKeys.length === 0;
    this.adminsOpen = insecureDev && adminKeys.length === 0;
  }

  /** False when client routes are served without keys (insecure development mode). */
  get enabled(): boolean {
    return !this.clientsOpen;
  }

  /** Why a request may not call a client route, or null (any client key; an admin key is not one). */
  clientRefusal(request: FastifyRequest): ForecastError | null {
    if (this.clientsOpen) return null;
    const key = presentedKey(request);
    if (!key) return new ForecastError('missing API key: send it in the x-api-key header', 401, 'unauthorized');
    if (!this.clients.matches(key)) return new ForecastError('invalid API key', 401, 'unauthorized');
    return null;
  }

  /** Why a request may not call an admin route, or null (only keys of ADMIN_API_KEYS). */
  adminRefusal(request: FastifyRequest): ForecastError | null {
    if (this.adminsOpen) return null;
    const key = presentedKey(request);
    if (!key) return new ForecastError('missing admin key: send an ADMIN_API_KEYS key in the x-api-key header', 401, 'unauthorized');
    if (this.admins.matches(key)) return null;
    if (this.admins.size === 0)
      return new ForecastError('admin endpoints are disabled: configure ADMIN_API_KEYS (client keys cannot call them)', 403, 'forbidden');
    if (this.clients.matches(key)) return new ForecastError('this key is a client key; admin endpoints need a key of ADMIN_API_KEYS', 403, 'forbidden');
    return new ForecastError('invalid admin key', 401, 'unauthorized');
  }

  // Callback-style onRequest hooks: on the hot path an async hook costs a promise per request.
  readonly clientHook = (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    const refusal = this.clientRefusal(request);
    if (refusal) done(refusal);
    else done();
  };

  readonly adminHook = (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    const refusal = this.adminRefusal(request);
    if (refusal) done(refusal);
    else done();
  };
}

/** Every route's access, as recorded by the context it was registered in. */
export class RouteAccessLog {
  private readonly byRoute = new Map<string, RouteAccess>();
  private readonly seen = new Set<string>();

  private static key(route: Pick<RouteOptions, 'method' | 'url'>): string[] {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    return methods.map((m) => `${m} ${route.url}`);
  }

  /** Root onRoute hook: every route of the app, whatever its context. */
  observe(route: RouteOptions): void {
    for (const k of RouteAccessLog.key(route)) this.seen.add(k);
  }

  record(route: RouteOptions, access: RouteAccess): void {
    for (const k of RouteAccessLog.key(route)) this.byRoute.set(k, access);
  }

  /** `METHOD /path` → access. */
  entries(): [string, RouteAccess][] {
    return [...this.byRoute.entries()].sort(([a], [b]) => a.localeCompare(b));
  }

  /** Routes registered outside every access context (third-party plugins' own routes). */
  unclassified(): string[] {
    return [...this.seen].filter((k) => !this.byRoute.has(k)).sort();
  }
}

/**
 * Registers `routes` inside an access context: `client` and `admin` contexts check their key on
 * every request before the body is read; `public` checks nothing. The context's onRoute hook
 * records each route's access.
 */
export async function accessContext(
  app: FastifyInstance,
  access: RouteAccess,
  auth: ApiKeyAuth,
  log: RouteAccessLog,
  routes: (scope: FastifyInstance) => Promise<void> | void,
): Promise<void> {
  await app.register(async (scope) => {
    scope.addHook('onRoute', (route) => log.record(route, access));
    if (access === 'client') scope.addHook('onRequest', auth.clientHook);
    if (access === 'admin') scope.addHook('onRequest', auth.adminHook);
    await routes(scope);
  });
}
