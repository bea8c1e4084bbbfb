/**
 * Issue 10, item 3: `forecast verify BUNDLE` checks the model the bundle names (its manifest's name),
 * not whatever the service's default model is; a history conflict says how to name another model.
 */
import { rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticBars, writeBarsCsv } from '../../src/data/index.js';
import { buildApp } from '../../src/serve/app.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/reference.js';

const KEY = 'verify-model-test-key-0123456789';

describe('forecast verify: the model the bundle names', () => {
  const work = tempDir('forecast-verify-model-');
  const apps: FastifyInstance[] = [];

  /** A service over a models folder, on loopback. */
  async function serve(models: string, db: string): Promise<string> {
    const app = await buildApp({ modelsDir: models, apiKeys: [KEY], sqlitePath: join(work, db, 'history.sqlite'), logger: false });
    apps.push(app);
    await app.listen({ port: 0, host: '127.0.0.1' });
    return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  }

  /** Trains a small bundle on seeded bars into `out` (named by the folder). */
  async function trainInto(out: string, seed: number): Promise<void> {
    const csv = join(work, `bars-${seed}.csv`);
    writeFileSync(csv, writeBarsCsv(generateSyntheticBars({ seed, bars: 800 })));
    const res = await runCli('train', '--csv', csv, '--out', out, '--max-leaf-nodes', '8');
    expect(res.code, res.stderr).toBe(0);
  }

  beforeAll(async () => {
    // `aaa` sorts first, so it is the service's default model; both histories share their dates.
    await trainInto(join(work, 'models', 'acme', '1'), 21);
    await trainInto(join(work, 'models', 'aaa', '1'), 22);
    // Another service whose `acme` is trained on other bars: its stored history is not the bundle's.
    await trainInto(join(work, 'other-models', 'acme', '1'), 22);
  });
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.close()));
    rmSync(work, { recursive: true, force: true });
  });

  it("verifies against the bundle's own model on a service whose default model is another", async () => {
    const url = await serve(join(work, 'models'), 'db-two');
    const res = await runCli('verify', join(work, 'models', 'acme', '1'), '--url', url, '--api-key', KEY, '--no-chart', '--json');
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as { passed: boolean; servedModel: string; endpoint: string };
    expect(report).toMatchObject({ passed: true, servedModel: 'acme@1', endpoint: `${url}/models/acme/forecast` });
  });

  it('a conflicting history names the model the bars went to and suggests --model', async () => {
    const url = await serve(join(work, 'other-models'), 'db-other');
    const res = await runCli('verify', join(work, 'models', 'acme', '1'), '--url', url, '--api-key', KEY, '--no-chart');
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("the service's stored history differs from the bundle's");
    expect(res.stderr).toContain("verify sent the bars to model 'acme', the bundle's name");
    expect(res.stderr).toContain('pass --model NAME');
  });
});
