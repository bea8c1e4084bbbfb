/** `forecast monitor`: the live table of a model's default and shadow versions, from a real service. */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { runCli } from '../helpers/cli.js';
import { tinyBundle, tinySeries, TINY_BARS, type TinySpec } from '../serve/helpers/bundles.js';
import { ADMIN_KEY, call, KEY, startTestServer, tempDir, type TestServer } from '../serve/helpers/http.js';

const V1: TinySpec = { name: 'acme', version: '1', seed: 2, featureSet: 'causal', maxDepth: 3 };

describe('forecast monitor', () => {
  const tmp = tempDir();
  let srv: TestServer;

  beforeAll(async () => {
    const v1 = await tinyBundle(tmp.dir, V1);
    const v2 = await tinyBundle(tmp.dir, { ...V1, version: '2', maxDepth: 6 });
    srv = await startTestServer({ bundles: [v1, v2], sqlitePath: join(tmp.dir, 'h.sqlite') });
    await call(srv.url, '/admin/models/acme/promote', { body: { version: '1' }, key: ADMIN_KEY });
    await call(srv.url, '/admin/models/acme/shadow', { body: { version: '2' }, key: ADMIN_KEY });
    const full = tinySeries({ seed: V1.seed, bars: TINY_BARS + 30 });
    for (let i = TINY_BARS; i < TINY_BARS + 30; i++) await call(srv.url, '/models/acme/forecast', { body: seriesToSplitJson(full, { start: i, end: i + 1, dates: 'iso' }) });
  });
  afterAll(async () => {
    await srv?.close();
    tmp.cleanup();
  });

  it('prints the default and the shadow side by side, with the state and the windows the scores fill', async () => {
    const r = await runCli('monitor', srv.url, '--model', 'acme', '--api-key', KEY);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/acme@1 \(default\)\s+acme@2 \(shadow\)/);
    expect(r.stdout).toMatch(/^state\s+(ok|degraded)\s+(ok|degraded)$/m);
    expect(r.stdout).toMatch(/^scored \/ logged\s+29 \/ 30\s+29 \/ 30$/m);
    expect(r.stdout).toMatch(/^last 20: MAE\s+\d/m);
    expect(r.stdout).toMatch(/^since deployment: persistence MAE\s+\d/m);
    expect(r.stdout).toMatch(/^acme@2: live MAE/m);
  });

  it('prints JSON, and names the problem of a wrong key', async () => {
    const json = await runCli('monitor', srv.url, '--model', 'acme', '--api-key', KEY, '--json');
    expect(JSON.parse(json.stdout).map((x: { version: string }) => x.version)).toEqual(['1', '2']);
    const bad = await runCli('monitor', srv.url, '--model', 'acme', '--api-key', 'wrong');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/401 unauthorized: the API key was refused/);
  });
});
