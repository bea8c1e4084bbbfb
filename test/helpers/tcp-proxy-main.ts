/** Child-process side of `spawnTcpProxy`: one proxy, driven over IPC, gone when its parent is. */
import { startTcpProxy, type ProxyOptions } from './tcp-proxy.js';

const proxy = await startTcpProxy(JSON.parse(process.argv[2] ?? '{}') as ProxyOptions);
// The IPC channel closes when the parent dies (or drops us): never outlive it.
process.on('disconnect', () => process.exit(0));
process.on('message', (m: { id: number; op: 'forward' | 'refuse' | 'blackhole' | 'kill' | 'stall' | 'connections' }) => {
  const run = m.op === 'connections' ? Promise.resolve() : proxy[m.op]();
  run.then(
    async () => process.send?.({ id: m.id, connections: await proxy.connections() }),
    (err: Error) => process.send?.({ id: m.id, connections: -1, error: err.message }),
  );
});
process.send?.({ listening: proxy.port });
