import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { parseIntOption } from './common.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve forecasts over HTTP; with no bundle named, trains (once) and serves the demo bundle')
    .argument('[bundle]', 'one bundle folder')
    .option('--models <dir>', 'a folder of bundles laid out name/version/ (the newest version of each serves)')
    .option('--port <port>', 'TCP port (default: PORT, else 8000)', parseIntOption('--port'))
    .option('--host <host>', 'listen address (default: HOST, else 0.0.0.0)')
    .option('--workers <n>', 'worker processes sharing the port (default: WEB_CONCURRENCY, else one per core)', parseIntOption('--workers'))
    .option('--insecure-dev', 'serve without API keys (local development only)')
    .action(async (bundle: string | undefined, opts: { models?: string; port?: number; host?: string; workers?: number; insecureDev?: boolean }) => {
      const config = loadConfig(process.env, {
        bundleDir: bundle,
        modelsDir: opts.models,
        port: opts.port,
        host: opts.host,
        workers: opts.workers,
        insecureDev: opts.insecureDev ? true : undefined,
      });
      // The serving stage is loaded by the command that runs it: other commands start without fastify.
      const { startServer } = await import('../serve/index.js');
      const server = await startServer(config);
      console.error(`forecast service listening on ${server.url} (${server.workers} worker${server.workers === 1 ? '' : 's'})`);
    });
}
