/**
 * A server for bench/serve.bench.ts to measure from another process (autocannon in the same
 * process would take CPU from the server on a 2-core machine):
 *
 *   node --import tsx bench/serve-target.ts app  BUNDLE_DIR STORE   the service, plus a keyed no-op POST /bench/noop
 *   node --import tsx bench/serve-target.ts bare                    node:http answering fixed JSON
 *   node --import tsx bench/serve-target.ts fastify                 a plain fastify app (no hooks, no logger) answering fixed JSON: the framework's own floor
 *
 * STORE is `sqlite:PATH` or `postgres:URL|SCHEMA`. Prints `READY <port>` once listening; exits on SIGTERM.
 */
import { createServer } from 'node:http';
import Fastify from 'fastify';
import { buildApp } from '../src/serve/app.js';

export const BENCH_KEY = 'bench-key-0123456789abcdef';

async function main(): Promise<void> {
  const [mode, bundleDir, store] = process.argv.slice(2);
  if (mode === 'bare') {
    const body = '{"status":"ok"}';
    const server = createServer((req, res) => {
      // Read the body like a real route would, then answer.
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
    server.listen(0, '127.0.0.1', () => process.stdout.write(`READY ${(server.address() as { port: number }).port}\n`));
    process.on('SIGTERM', () => server.close(() => process.exit(0)));
    return;
  }
  if (mode === 'fastify') {
    const app = Fastify({ logger: false });
    app.post('/', async () => ({ status: 'ok' }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    process.stdout.write(`READY ${(app.server.address() as { port: number }).port}\n`);
    process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
    return;
  }
  const storeOptions = store.startsWith('sqlite:')
    ? { sqlitePath: store.slice('sqlite:'.length) }
    : { databaseUrl: store.slice('postgres:'.length).split('|')[0], databaseSchema: store.split('|')[1] };
  const app = await buildApp({ bundleDir, apiKeys: [BENCH_KEY], logger: false, ...storeOptions });
  // The same app's keyed context (the client key check) and body parsing, with no forecast behind it.
  await app.register(async (scope) => {
    scope.addHook('onRequest', app.forecastService.auth.clientHook);
    scope.post('/bench/noop', async () => ({ ok: true }));
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  process.stdout.write(`READY ${(app.server.address() as { port: number }).port}\n`);
  process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
}

if (process.argv[1]?.endsWith('serve-target.ts')) {
  main().catch((err: Error) => {
    process.stderr.write(`${err.stack ?? err}\n`);
    process.exit(1);
  });
}
