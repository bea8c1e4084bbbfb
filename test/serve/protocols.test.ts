import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { expectedForecasts, tinyBundle, tinySeries, type TinySpec } from './helpers/bundles.js';
import { call, startTestServer, tempDir, type TestServer } from './helpers/http.js';

const SPEC: TinySpec = { name: 'acme', version: '1', seed: 11 };

describe('MLflow and Open Inference Protocol v2 on the same models', () => {
  const tmp = tempDir();
  let srv: TestServer;
  const history = tinySeries(SPEC);
  const n = history.date.length;
  // The newest five stored bars (the newest one's look-ahead atr provisional).
  const start = n - 5;
  let expected: (number | null)[];
  const frame = seriesToSplitJson(history, { start, end: n });

  beforeAll(async () => {
    const bundle = await tinyBundle(tmp.dir, SPEC);
    expected = expectedForecasts(bundle.pipeline, history, start, n);
    srv = await startTestServer({ bundles: [bundle], sqlitePath: join(tmp.dir, 'h.sqlite') });
  });
  afterAll(async () => {
    await srv.close();
    tmp.cleanup();
  });

  it('the seed protocol answers the reference values', async () => {
    const r = await call(srv.url, '/forecast', { body: frame });
    expect(r.body.y_pred).toEqual(expected);
  });

  it('MLflow dataframe_split', async () => {
    const r = await call(srv.url, '/invocations', { body: { dataframe_split: frame } });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ predictions: expected });
  });

  it('MLflow dataframe_records with ISO dates, model chosen by query', async () => {
    const records = frame.data.map((row) => Object.fromEntries(frame.columns.map((c, j) => [c, j === 0 ? new Date(row[0] as number).toISOString() : row[j]])));
    const r = await call(srv.url, '/invocations?model=acme&version=1', { body: { dataframe_records: records } });
    expect(r.status).toBe(200);
    expect(r.body.predictions).toEqual(expected);
  });

  it('MLflow rejects tensors and ambiguous inputs, naming the accepted formats', async () => {
    const t = await call(srv.url, '/invocations', { body: { instances: [[1, 2]] } });
    expect(t.status).toBe(422);
    expect(t.body.error.details.accepted).toEqual(['dataframe_split', 'dataframe_records']);
    const two = await call(srv.url, '/invocations', { body: { dataframe_split: frame, dataframe_records: [] } });
    expect(two.status).toBe(400);
    const bad = await call(srv.url, '/invocations', { body: { dataframe_records: [{ date: '2020-01-01', open: 1 }] } });
    expect(bad.status).toBe(422);
    expect(bad.body.error.details).toMatchObject({ row: 0, field: 'high' });
  });

  it('MLflow /ping', async () => {
    const r = await fetch(`${srv.url}/ping`);
    expect(r.status).toBe(200);
  });

  it('OIP: one tensor per column', async () => {
    const n = frame.data.length;
    const col = (j: number) => frame.data.map((r) => r[j]);
    const r = await call(srv.url, '/v2/models/acme/infer', {
      body: {
        id: 'req-1',
        inputs: [
          { name: 'date', datatype: 'BYTES', shape: [n], data: history.date.slice(start) },
          { name: 'open', datatype: 'FP64', shape: [n], data: col(1) },
          { name: 'high', datatype: 'FP64', shape: [n, 1], data: col(2).map((x) => [x]) },
          { name: 'low', datatype: 'FP64', shape: [n], data: col(3) },
          { name: 'close', datatype: 'FP64', shape: [n], data: col(4) },
          { name: 'volume', datatype: 'INT64', shape: [n], data: col(5) },
        ],
      },
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body.model_name).toBe('acme');
    expect(r.body.model_version).toBe('1');
    expect(r.body.id).toBe('req-1');
    const y = r.body.outputs.find((o: any) => o.name === 'y_pred');
    expect(y).toEqual({ name: 'y_pred', datatype: 'FP64', shape: [n], data: expected });
    expect(r.body.outputs.find((o: any) => o.name === 'date').data).toEqual(history.date.slice(start));
  });

  it('OIP: one FP64 [n, 6] tensor with epoch-ms dates, and a BYTES one', async () => {
    const n = frame.data.length;
    const fp = await call(srv.url, '/v2/models/acme/versions/1/infer', {
      body: { inputs: [{ name: 'bars', datatype: 'FP64', shape: [n, 6], data: frame.data.flat() }], outputs: [{ name: 'y_pred' }] },
    });
    expect(fp.status, fp.text).toBe(200);
    expect(fp.body.outputs).toEqual([{ name: 'y_pred', datatype: 'FP64', shape: [n], data: expected }]);
    const bytes = await call(srv.url, '/v2/models/acme/infer', {
      body: {
        inputs: [
          {
            name: 'bars',
            datatype: 'BYTES',
            shape: [n, 6],
            parameters: { columns: ['volume', 'date', 'open', 'high', 'low', 'close'] },
            data: frame.data.map((r) => [String(r[5]), history.date[start + frame.data.indexOf(r)], String(r[1]), String(r[2]), String(r[3]), String(r[4])]),
          },
        ],
      },
    });
    expect(bytes.status, bytes.text).toBe(200);
    expect(bytes.body.outputs[0].data).toEqual(expected);
  });

  it('OIP: errors name the input', async () => {
    const r = await call(srv.url, '/v2/models/acme/infer', { body: { inputs: [{ name: 'bars', datatype: 'FP64', shape: [2, 6], data: [1, 2, 3] }] } });
    expect(r.status).toBe(422);
    expect(r.body.error).toMatchObject({ code: 'invalid_shape', details: { field: 'bars' } });
    const u = await call(srv.url, '/v2/models/acme/infer', { body: { inputs: [{ name: 'price', datatype: 'FP64', shape: [1], data: [1] }] } });
    expect(u.status).toBe(422);
    expect(u.body.error.code).toBe('unknown_column');
    const m = await call(srv.url, '/v2/models/nope/infer', { body: { inputs: [{ name: 'x', datatype: 'FP64', shape: [1], data: [1] }] } });
    expect(m.status).toBe(404);
  });

  it('OIP metadata, health and readiness', async () => {
    expect((await call(srv.url, '/v2/health/live')).body).toEqual({ live: true });
    expect((await call(srv.url, '/v2/health/ready')).body).toEqual({ ready: true });
    const md = await call(srv.url, '/v2/models/acme');
    expect(md.body).toMatchObject({ name: 'acme', versions: ['1'], platform: 'forecast-service/decision_tree_regressor' });
    expect(md.body.inputs.map((i: any) => i.name)).toEqual(['date', 'open', 'high', 'low', 'close', 'volume']);
    expect((await call(srv.url, '/v2/models/acme/versions/1/ready')).body).toMatchObject({ name: 'acme', ready: true });
    expect((await call(srv.url, '/v2/models/acme/versions/2/ready')).status).toBe(404);
  });
});
