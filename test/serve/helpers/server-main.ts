/**
 * Runs startServer in its own process (tests of worker processes, restarts and signals):
 *   node --import tsx test/serve/helpers/server-main.ts '<ServerOptions JSON>'
 * Prints `READY <port>` on stdout once every worker listens.
 */
import { startServer, type ServerOptions } from '../../../src/serve/server.js';

const options = JSON.parse(process.argv[2] ?? '{}') as ServerOptions;
startServer(options).then(
  (s) => process.stdout.write(`READY ${s.port}\n`),
  (err: Error) => {
    process.stderr.write(`START FAILED: ${err.message}\n`);
    process.exit(2);
  },
);
