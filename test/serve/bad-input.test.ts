import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { seriesToSplitJson } from '../../src/serve/bar-table.js';
import { nextWeekday, tinySeries, writeTinyBundle, type TinySpec } from './helpers/bundles.js';
import { call, KEY, rawRequest, startTestServer, tempDir, type TestServer } from './helpers/http.js';

const SPEC: TinySpec = { name: 'acme', version: '1', seed: 5 };
const COLS = ['date', 'open', 'high', 'low', 'close', 'volume'];

describe('bad input never gives a 500 and never changes stored data', () => {
  const tmp = tempDir();
  let srv: TestServer;
  const history = tinySeries(SPEC);
  const last = history.date.length - 1;
  const next = nextWeekday(history.date[last]);
  const next2 = nextWeekday(next);
  const good = (d = next) => [d, 100, 101, 99, 100.5, 1000];
  let snapshot: string;

  const state = async () => JSON.stringify((await call(srv.url, '/models')).body.models[0].history);

  beforeAll(async () => {
    const bundleDir = await writeTinyBundle(join(tmp.dir, 'bundle'), SPEC);
    srv = await startTestServer({ bundleDir, sqlitePath: join(tmp.dir, 'h.sqlite'), maxBodyBytes: 64 * 1024 });
    snapshot = await state();
  });
  afterAll(async () => {
    await srv.close();
    tmp.cleanup();
  });

  async function expectRejected(
    init: Parameters<typeof call>[2],
    status: number,
    code: string | RegExp,
    where: { row?: number; field?: string; column?: string; message?: RegExp } = {},
    path = '/forecast',
  ) {
    const r = await call(srv.url, path, init);
    expect(r.status, r.text).toBe(status);
    expect(r.body.error.code).toMatch(code);
    expect(typeof r.body.error.message).toBe('string');
    expect(r.body.error.request_id).toBe(r.headers.get('x-request-id'));
    if (where.row !== undefined) expect(r.body.error.details.row).toBe(where.row);
    if (where.field !== undefined) expect(r.body.error.details.field).toBe(where.field);
    if (where.column !== undefined) expect(r.body.error.details.column).toBe(where.column);
    if (where.message) expect(r.body.error.message).toMatch(where.message);
    expect(await state()).toBe(snapshot);
    return r;
  }

  it('malformed JSON → 400', () => expectRejected({ rawBody: '{"columns": [', headers: { 'content-type': 'application/json' } }, 400, 'invalid_json'));
  it('wrong content type → 415', () =>
    expectRejected({ rawBody: 'date,open\n2020-01-01,1', headers: { 'content-type': 'text/csv' } }, 415, 'unsupported_media_type'));
  it('text/plain → 415', () => expectRejected({ rawBody: '{}', headers: { 'content-type': 'text/plain' } }, 415, 'unsupported_media_type'));
  it('a body with no content type is read as JSON', async () => {
    const body = JSON.stringify(seriesToSplitJson(history, { start: last, end: last + 1 }));
    const r = await rawRequest(srv.url, '/forecast', 'POST', { 'x-api-key': KEY, 'content-length': String(Buffer.byteLength(body)) }, body);
    expect(r.status, r.text).toBe(200);
    expect(r.body.forecasts[0].date).toBe(history.date[last]);
    const chunked = await rawRequest(srv.url, '/forecast', 'POST', { 'x-api-key': KEY, 'transfer-encoding': 'chunked' }, body);
    expect(chunked.status, chunked.text).toBe(200);
  });
  it('empty JSON body → 400', () => expectRejected({ rawBody: '', headers: { 'content-type': 'application/json' } }, 400, /empty_body|invalid_request/));
  it('body over MAX_BODY_BYTES → 413', () =>
    expectRejected({ body: { columns: COLS, data: Array.from({ length: 3000 }, () => good()) } }, 413, 'payload_too_large'));
  it('body not an object → 400', () => expectRejected({ body: [1, 2, 3] }, 400, 'invalid_request'));
  it('missing data → 400', () => expectRejected({ body: { columns: COLS } }, 400, 'invalid_request', { message: /data/ }));
  it('unknown top-level property → 400', () => expectRejected({ body: { columns: COLS, data: [good()], extra: 1 } }, 400, 'invalid_request', { message: /extra/ }));
  it('missing column → 422 naming it', () =>
    expectRejected({ body: { columns: COLS.slice(0, 5), data: [good().slice(0, 5)] } }, 422, 'missing_column', { column: 'volume' }));
  it('unknown column → 422 naming it', () =>
    expectRejected({ body: { columns: [...COLS, 'Adj Close'], data: [[...good(), 1]] } }, 422, 'unknown_column', { column: 'Adj Close' }));
  it('repeated column → 422', () =>
    expectRejected({ body: { columns: [...COLS, 'close'], data: [[...good(), 1]] } }, 422, 'duplicate_column', { column: 'close' }));
  it('row of wrong length → 422 naming the row', () =>
    expectRejected({ body: { columns: COLS, data: [good(), good(next2).slice(0, 5)] } }, 422, 'invalid_row', { row: 1 }));
  it('a cell of the wrong JSON type → 400 naming row and field', () =>
    expectRejected({ body: { columns: COLS, data: [good(), [next2, 1, 2, { x: 1 }, 1, 1]] } }, 400, 'invalid_request', { row: 1, field: 'low' }));
  it('a price given as a string → 422 naming row and field', () =>
    expectRejected({ body: { columns: COLS, data: [[next, '100', 101, 99, 100.5, 1000]] } }, 422, 'invalid_type', { row: 0, field: 'open' }));
  it('null (NaN) price → 422', () =>
    expectRejected({ body: { columns: COLS, data: [good(), [next2, 100, 101, 99, null, 1000]] } }, 422, 'non_finite', { row: 1, field: 'close' }));
  it('non-finite price (1e999 parses to Infinity) → 422', () =>
    expectRejected(
      { rawBody: `{"columns":${JSON.stringify(COLS)},"data":[["${next}",100,1e999,99,100,1000]]}`, headers: { 'content-type': 'application/json' } },
      422,
      'non_finite',
      { row: 0, field: 'high' },
    ));
  it('zero price → 422', () => expectRejected({ body: { columns: COLS, data: [[next, 0, 101, 99, 100, 1]] } }, 422, 'invalid_value', { row: 0, field: 'open' }));
  it('negative price → 422', () => expectRejected({ body: { columns: COLS, data: [[next, 100, 101, -99, 100, 1]] } }, 422, 'invalid_value', { row: 0, field: 'low' }));
  it('high below low → 422', () =>
    expectRejected({ body: { columns: COLS, data: [good(), [next2, 100, 98, 99, 100, 1]] } }, 422, 'invalid_value', { row: 1, field: 'high', message: /below low/ }));
  it('negative volume → 422', () =>
    expectRejected({ body: { columns: COLS, data: [[next, 100, 101, 99, 100, -1]] } }, 422, 'invalid_value', { row: 0, field: 'volume' }));
  it('unparseable date → 422', () =>
    expectRejected({ body: { columns: COLS, data: [good(), ['26/07/2018', 100, 101, 99, 100, 1]] } }, 422, 'invalid_date', { row: 1, field: 'date' }));
  it('impossible calendar date → 422', () =>
    expectRejected({ body: { columns: COLS, data: [['2019-02-30', 100, 101, 99, 100, 1]] } }, 422, 'invalid_date', { row: 0, field: 'date' }));
  it('fractional epoch milliseconds → 422', () =>
    expectRejected({ body: { columns: COLS, data: [[1532563200000.5, 100, 101, 99, 100, 1]] } }, 422, 'invalid_date', { row: 0, field: 'date' }));
  it('epoch seconds instead of milliseconds → 422', () =>
    expectRejected({ body: { columns: COLS, data: [[1532563200, 100, 101, 99, 100, 1]] } }, 422, 'invalid_date', { row: 0, message: /seconds/ }));
  it('negative epoch milliseconds → 422 like other pre-1973 epochs (they were stored as 1969 bars)', () =>
    expectRejected({ body: { columns: COLS, data: [[-86_400_000, 100, 101, 99, 100, 1]] } }, 422, 'invalid_date', { row: 0, field: 'date', message: /before 1973/ }));
  it('epoch milliseconds from the year 3000 on → 422', () =>
    expectRejected({ body: { columns: COLS, data: [[32_503_680_000_000, 100, 101, 99, 100, 1]] } }, 422, 'invalid_date', { row: 0, field: 'date' }));
  it('a date string longer than 64 characters → 422, even if it trims to a date', () =>
    expectRejected({ body: { columns: COLS, data: [[`${next}${' '.repeat(60)}`, 100, 101, 99, 100, 1]] } }, 422, 'invalid_date', { row: 0, field: 'date', message: /too long/ }));
  it('a long string cell is named, not echoed', async () => {
    const r = await expectRejected({ body: { columns: COLS, data: [[next, 100, 101, 99, 'x'.repeat(30_000), 1]] } }, 422, 'invalid_type', { row: 0, field: 'close' });
    expect(r.text.length).toBeLessThan(1000);
  });
  it('a column name longer than 64 characters → 400 naming it', () =>
    expectRejected({ body: { columns: [...COLS.slice(0, 5), 'v'.repeat(30_000)], data: [good()] } }, 400, 'invalid_request', { message: /columns\/5/ }));
  it("prototype names as columns or record keys are unknown fields", async () => {
    await expectRejected({ body: { columns: [...COLS, 'constructor'], data: [[...good(), 1]] } }, 422, 'unknown_column', { column: 'constructor' });
    await expectRejected({ body: { columns: [...COLS.slice(0, 5), 'toString'], data: [good()] } }, 422, 'unknown_column', { column: 'toString' });
    const record = Object.fromEntries(COLS.map((c, j) => [c, good()[j]]));
    await expectRejected({ body: { dataframe_records: [{ ...record, constructor: 1 }] } }, 422, 'unknown_column', { row: 0, field: 'constructor' }, '/invocations');
    await expectRejected({ body: { dataframe_records: [{ ...record, hasOwnProperty: 1 }] } }, 422, 'unknown_column', { row: 0, field: 'hasOwnProperty' }, '/invocations');
  });
  it('unsorted dates → 422', () =>
    expectRejected({ body: { columns: COLS, data: [good(next2), good(next)] } }, 422, 'unsorted_dates', { row: 1, field: 'date' }));
  it('repeated dates → 422', () =>
    expectRejected({ body: { columns: COLS, data: [good(next), good(next)] } }, 422, 'duplicate_date', { row: 1, field: 'date' }));
  it('index of the wrong length → 400', () =>
    expectRejected({ body: { columns: COLS, index: [1, 2], data: [good()] } }, 400, 'invalid_shape', { field: 'index' }));
  it('no rows → 422', () => expectRejected({ body: { columns: COLS, data: [] } }, 422, 'empty', { field: 'data', message: /^data has no rows/ }));
  it('a bad later row rejects the whole request (nothing of it is stored)', () =>
    expectRejected({ body: { columns: COLS, data: [good(next), [next2, 100, 101, 99, 100, -5]] } }, 422, 'invalid_value', { row: 1 }));
  it('bad replace flag → 400', () => expectRejected({ body: { columns: COLS, data: [good()] } }, 400, 'invalid_request', {}, '/forecast?replace=maybe'));
  it('unknown query parameter → 400', () => expectRejected({ body: { columns: COLS, data: [good()] } }, 400, 'invalid_request', {}, '/forecast?foo=1'));
  it('conflicting stored bar → 409 and nothing written', () => {
    const body = seriesToSplitJson(history, { start: last - 1, end: last + 1 });
    body.data[1][2] = (body.data[1][2] as number) * 2;
    return expectRejected({ body }, 409, 'conflict', { row: 1, field: 'high' });
  });
  it('unknown route → 404 in the same shape', () => expectRejected({ body: {} }, 404, 'not_found', {}, '/nope'));
  it('dates may come from the index when there is no date column', async () => {
    const body = seriesToSplitJson(history, { start: last, end: last + 1 });
    const r = await call(srv.url, '/forecast', {
      body: { columns: COLS.slice(1), index: [Date.parse(`${history.date[last]}T00:00:00Z`)], data: [body.data[0].slice(1)] },
    });
    expect(r.status).toBe(200);
    expect(r.body.forecasts[0].date).toBe(history.date[last]);
  });
});
