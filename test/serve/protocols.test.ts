import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { isoDayOfEpochMs, seriesToSplitJson } from '../../src/serve/bar-table.js';
import { barsFromInferInputs, isDecimalText, tensorCells } from '../../src/serve/protocols/oip.js';
import { expectedForecasts, nextWeekday, tinyBundle, tinySeries, type TinySpec } from './helpers/bundles.js';
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
    // Both inputs, each well-formed (an empty one is refused as empty first: error-messages.test.ts).
    const record = Object.fromEntries(frame.columns.map((c, j) => [c, frame.data[0][j]]));
    const two = await call(srv.url, '/invocations', { body: { dataframe_split: frame, dataframe_records: [record] } });
    expect(two.status).toBe(400);
    expect(two.body.error.message).toMatch(/exactly one of dataframe_split, dataframe_records \(got dataframe_split, dataframe_records\)/);
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

  const stored = async () => JSON.stringify((await call(srv.url, '/models')).body.models[0].history);
  const newBar = () => [Date.parse(`${nextWeekday(history.date[n - 1], 3)}T00:00:00Z`), 100, 101, 99, 100.5, 1000];
  const infer = (body: unknown) => call(srv.url, '/v2/models/acme/infer', { body });

  it('OIP outputs are checked as names of the three outputs, before any bar is merged', async () => {
    const before = await stored();
    // `name in {y_pred, date, reason}` accepted these and answered 200 with junk outputs.
    for (const name of ['constructor', '__proto__', 'toString', 'valueOf', 'y_pred ']) {
      const r = await infer({ inputs: [{ name: 'bars', datatype: 'FP64', shape: [1, 6], data: newBar() }], outputs: [{ name }] });
      expect(r.status, `${name}: ${r.text}`).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'unknown_output', details: { field: name } });
    }
    const dup = await infer({ inputs: [{ name: 'bars', datatype: 'FP64', shape: [1, 6], data: newBar() }], outputs: [{ name: 'y_pred' }, { name: 'y_pred' }] });
    expect(dup.status, dup.text).toBe(400);
    expect(dup.body.error).toMatchObject({ code: 'duplicate_output', details: { field: 'y_pred' } });
    // The bar was new: a refused request must not have stored it (the outputs were checked after the merge).
    expect(await stored()).toBe(before);
    const ok = await infer({ inputs: [{ name: 'bars', datatype: 'FP64', shape: [1, 6], data: frame.data[4] }], outputs: [{ name: 'reason' }, { name: 'date' }] });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.outputs.map((o: any) => o.name)).toEqual(['reason', 'date']);
  });

  it('OIP shapes are checked against the data sent before anything is sized by them', async () => {
    const bar = frame.data[4];
    const cases: [unknown, number, RegExp][] = [
      // 117 bytes that allocated 20 million rows.
      [{ name: 'bars', datatype: 'FP64', shape: [20_000_000, 0], data: [], parameters: { columns: [] } }, 422, /at least 1/],
      [{ name: 'bars', datatype: 'FP64', shape: [0, 6], data: [] }, 422, /at least 1/],
      [{ name: 'bars', datatype: 'FP64', shape: [1e9, 6], data: bar }, 422, /needs 6000000000 values, data has 6/],
      [{ name: 'bars', datatype: 'FP64', shape: [2, 6], data: [bar, bar.slice(0, 5)] }, 422, /data\[1\] has 5 values/],
      [{ name: 'bars', datatype: 'FP64', shape: [2, 6], data: [bar] }, 422, /has 2 rows, data has 1/],
      [{ name: 'bars', datatype: 'FP64', shape: [1, 6], data: [[bar]] }, 400, /nested deeper/],
      [{ name: 'bars', datatype: 'FP64', shape: [2, 6], data: [bar, ...bar] }, 400, /not mixed/],
      [{ name: 'bars', datatype: 'FP64', shape: [2, 6], data: [...bar, bar] }, 400, /not mixed/],
      [{ name: 'open', datatype: 'FP64', shape: [1], data: [[1]] }, 400, /nested deeper/],
    ];
    for (const [input, status, message] of cases) {
      const r = await infer({ inputs: [input] });
      expect(r.status, r.text).toBe(status);
      expect(r.body.error.code).toBe('invalid_shape');
      expect(r.body.error.details.field).toBe((input as { name: string }).name);
      expect(r.body.error.message).toMatch(message);
    }
  });

  it('OIP data 10,000 deep is refused without recursion (it was a stack overflow, a 500)', async () => {
    const data = `${'['.repeat(10_000)}1${']'.repeat(10_000)}`;
    const r = await call(srv.url, '/v2/models/acme/infer', {
      rawBody: `{"inputs":[{"name":"bars","datatype":"FP64","shape":[1,6],"data":${data}}]}`,
      headers: { 'content-type': 'application/json' },
    });
    // The body parser refuses it before any decoder runs (src/serve/json-body.ts), without recursion.
    expect(r.status, r.text).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'too_complex', message: expect.stringMatching(/nested deeper than 32/) });
    // And the decoder, as a pure function, on far deeper data than any stack would allow.
    let deeper: unknown[] = [];
    for (let k = 0; k < 1_000_000; k++) deeper = [deeper];
    expect(() => tensorCells({ name: 'x', shape: [1, 1], data: deeper })).toThrow(/nested deeper/);
  });

  it('OIP BYTES cells: long strings refused naming row and field; numbers read in linear time', async () => {
    const cells = (open: string) => [history.date[n - 1], open, '101', '99', '100.5', '1000'];
    const long = await infer({ inputs: [{ name: 'bars', datatype: 'BYTES', shape: [1, 6], data: cells('1'.repeat(65)) }] });
    expect(long.status, long.text).toBe(422);
    expect(long.body.error).toMatchObject({ code: 'invalid_type', details: { row: 0, field: 'open' } });
    expect(long.body.error.message).toMatch(/65-character string is too long/);
    const t0 = performance.now();
    expect(isDecimalText('1'.repeat(1_000_000) + 'x')).toBe(false);
    expect(isDecimalText('1'.repeat(500_000) + '.' + '1'.repeat(500_000) + 'e-' + '1'.repeat(10) + 'x')).toBe(false);
    // The old regex took ~10 s for 80,000 digits and x, quadratic in the length.
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('isDecimalText accepts exactly the language of the regex it replaces', () => {
    const OLD = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
    const alphabet = ['1', '0', '.', 'e', 'E', '-', '+', 'x', ' '];
    let all = [''];
    let checked = 0;
    for (let len = 1; len <= 6; len++) {
      all = all.flatMap((p) => alphabet.map((c) => p + c));
      for (const t of all) {
        checked++;
        if (isDecimalText(t) !== OLD.test(t)) expect.fail(`isDecimalText(${JSON.stringify(t)}) = ${isDecimalText(t)}, the regex says ${OLD.test(t)}`);
      }
    }
    expect(checked).toBeGreaterThan(500_000);
    for (const t of ['1.5', '-.5', '+1e5', '1.', '1.e3', '.5E-3', '123456789012345678901234567890'].map(String)) expect(isDecimalText(t)).toBe(true);
    for (const t of ['', '.', '+', 'e5', '1e', '1e+', '1.2.3', '0x10', 'Infinity', 'NaN', '1_000', '１']) expect(isDecimalText(t)).toBe(false);
  });

  it('epoch milliseconds become the UTC calendar day (the fast formatter agrees with Date)', () => {
    for (let ms = 1e11; ms < 32_503_680_000_000; ms += 86_400_000 * 37 + 3_600_123) expect(isoDayOfEpochMs(ms)).toBe(new Date(ms).toISOString().slice(0, 10));
    expect(isoDayOfEpochMs(Date.UTC(2000, 1, 29, 23, 59, 59, 999))).toBe('2000-02-29');
    expect(isoDayOfEpochMs(Date.UTC(2999, 11, 31, 12))).toBe('2999-12-31');
  });

  it('OIP: negative epoch dates are refused like other pre-1973 epochs', async () => {
    const r = await infer({ inputs: [{ name: 'bars', datatype: 'FP64', shape: [1, 6], data: [-86_400_000, 100, 101, 99, 100.5, 1000] }] });
    expect(r.status, r.text).toBe(422);
    expect(r.body.error).toMatchObject({ code: 'invalid_date', details: { row: 0, field: 'date' } });
    expect(r.body.error.message).toMatch(/before 1973/);
    await expect(barsFromInferInputs([{ name: 'date', datatype: 'INT64', shape: [1], data: [-1] }, ...['open', 'high', 'low', 'close', 'volume'].map((c) => ({ name: c, datatype: 'FP64' as const, shape: [1], data: [1] }))])).rejects.toMatchObject({ code: 'invalid_date' });
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
