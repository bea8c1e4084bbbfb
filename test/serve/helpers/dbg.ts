import { startServer } from '../../../src/serve/server.js';
console.log('a');
startServer({"port":18123,"host":"127.0.0.1","workers":2,"apiKeys":["test-key-0123456789abcdef"],"bundleDir":"/tmp/ct/bundle","bundleLoaderModule":"test/serve/helpers/stub-bundle.ts","sqlitePath":"/tmp/ct/h.sqlite","logLevel":"info"}).then((s) => console.log('started', s.port), (e) => console.log('ERR', e));
setTimeout(() => { console.log('timeout'); process.exit(0); }, 8000);
