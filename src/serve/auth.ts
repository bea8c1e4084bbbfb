import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ForecastError } from '../errors.js';

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/**
 * API-key check for every data endpoint. Keys are compared as SHA-256 digests with
 * crypto.timingSafeEqual, always against every configured key, so neither a key's length nor its
 * prefix leaks through timing. Accepts `x-api-key: KEY` (or `Authorization: Bearer KEY` for OIP/MLflow
 * clients that only set that header).
 */
export class ApiKeyAuth {
  private readonly digests: Buffer[];

  constructor(
    keys: readonly string[],
    readonly insecure: boolean,
  ) {
    this.digests = keys.map(digest);
  }

  get enabled(): boolean {
    return !this.insecure || this.digests.length > 0;
  }

  matches(candidate: string): boolean {
    const d = digest(candidate);
    let ok = false;
    for (const k of this.digests) ok = timingSafeEqual(d, k) || ok;
    return ok;
  }

  /** fastify onRequest hook. */
  readonly hook = async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    if (!this.enabled) return;
    let key = request.headers['x-api-key'];
    if (key === undefined) {
      const auth = request.headers.authorization;
      if (typeof auth === 'string' && auth.startsWith('Bearer ')) key = auth.slice(7).trim();
    }
    if (typeof key !== 'string' || key === '') throw new ForecastError('missing API key: send it in the x-api-key header', 401, 'unauthorized');
    if (!this.matches(key)) throw new ForecastError('invalid API key', 401, 'unauthorized');
  };
}
