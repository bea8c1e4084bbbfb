/**
 * A model's stored history, read and corrected:
 *
 *   client   GET    /models/{name}/history                 the stored bars (JSON split frame or CSV), ?from= ?to= ?last=
 *   admin    DELETE /admin/models/{name}/history/{date}    delete a bar sent by mistake; features recomputed from it on
 */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { BARS_CSV_HEADER, barsCsvRows } from '../data/csv.js';
import type { BarSeries } from '../data/bars.js';
import { parseIsoDay } from '../data/dates.js';
import { ForecastError } from '../errors.js';
import type { ServiceContext } from './context.js';
import type { ServedModel } from './registry.js';
import { apiKeySecurity, errorResponses, EXAMPLE_BAR, nameParams } from './schemas.js';

/** Bars serialised between yields: a million-bar history streams without holding the event loop. */
const ROWS_PER_CHUNK = 4096;

/** The columns of a history in JSON, in the order of the forecast endpoints' example: the answer can be posted back as it is. */
const COLUMNS = ['date', 'open', 'high', 'low', 'close', 'volume'] as const;

type HistoryFormat = 'json' | 'csv';

interface HistoryQuery {
  from?: string;
  to?: string;
  last?: string;
  format?: HistoryFormat;
}

const dateParam = (description: string) => ({ type: 'string', maxLength: 10, description, examples: ['2023-01-03'] }) as const;

const historyQuerySchema = {
  type: 'object',
  properties: {
    from: dateParam('First date to include (YYYY-MM-DD, inclusive; default: the oldest stored bar).'),
    to: dateParam('Last date to include (YYYY-MM-DD, inclusive; default: the newest stored bar).'),
    // A string, checked by the handler: query values are not coerced (a value is what the client sent, or a 400).
    last: { type: 'string', maxLength: 9, description: 'Only the newest N bars of the range (a positive integer).', examples: ['5'] },
    format: {
      type: 'string',
      enum: ['json', 'csv'],
      description: 'json (a pandas split frame) or csv; default: csv when Accept asks for text/csv, else json.',
      examples: ['json'],
    },
  },
  additionalProperties: false,
} as const;

/** A query or path date, checked as a calendar date (the schema only bounds its length). */
function queryDate(name: string, value: string | undefined, where: 'query' | 'path' = 'query'): string | undefined {
  if (value === undefined) return undefined;
  if (Number.isNaN(parseIsoDay(value)))
    throw new ForecastError(`${where} parameter '${name}' must be a calendar date YYYY-MM-DD, not '${value}'`, 400, 'invalid_request', { parameter: name });
  return value;
}

/** The bars of the query's range, copied now: the answer streams from a snapshot later writes do not move. */
function selectBars(model: ServedModel, q: HistoryQuery): BarSeries {
  const from = queryDate('from', q.from);
  const to = queryDate('to', q.to);
  if (from !== undefined && to !== undefined && from > to)
    throw new ForecastError(`query parameter 'from' (${from}) is after 'to' (${to})`, 400, 'invalid_request', { parameter: 'from' });
  const h = model.history;
  const start = from === undefined ? 0 : h.firstAtOrAfter(from);
  // The first bar after `to`: `to` + one character sorts after `to` itself and before the next day.
  let end = to === undefined ? h.length : h.firstAtOrAfter(`${to}\u0000`);
  if (end < start) end = start;
  if (q.last !== undefined && !/^[1-9][0-9]*$/.test(q.last))
    throw new ForecastError(`query parameter 'last' must be a positive integer, not '${q.last}'`, 400, 'invalid_request', { parameter: 'last' });
  const first = q.last === undefined ? start : Math.max(start, end - Number(q.last));
  return h.slice(first, end);
}

async function* csvChunks(bars: BarSeries): AsyncGenerator<string> {
  yield `${BARS_CSV_HEADER}\n`;
  for (let i = 0; i < bars.date.length; i += ROWS_PER_CHUNK) {
    if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    yield barsCsvRows(bars, i, Math.min(i + ROWS_PER_CHUNK, bars.date.length));
  }
}

/**
 * A pandas split frame written row by row: `JSON.stringify` of a million-row array holds the loop
 * for a second and the whole text in memory. Numbers print as JSON.stringify prints them (shortest
 * round trip), so every price reads back bit for bit.
 */
async function* jsonChunks(bars: BarSeries): AsyncGenerator<string> {
  yield `{"columns":${JSON.stringify(COLUMNS)},"data":[`;
  const n = bars.date.length;
  for (let i = 0; i < n; i += ROWS_PER_CHUNK) {
    if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    let out = '';
    for (let j = i; j < Math.min(i + ROWS_PER_CHUNK, n); j++)
      out += `${j > 0 ? ',' : ''}[${JSON.stringify(bars.date[j])},${bars.open[j]},${bars.high[j]},${bars.low[j]},${bars.close[j]},${bars.volume[j]}]`;
    yield out;
  }
  yield ']}';
}

export async function historyClientRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.get<{ Params: { name: string }; Querystring: HistoryQuery }>(
    '/models/:name/history',
    {
      schema: {
        tags: ['models'],
        summary: "The model's stored price history (JSON split frame or CSV)",
        description:
          'The bars every forecast of the model is computed from, oldest first, as stored (prices bit for bit). ' +
          'The JSON answer is a pandas split frame that the forecast endpoints accept as it is. ' +
          'Headers: X-History-Version (changes with every write) and X-History-Bars (the whole history).',
        security: apiKeySecurity,
        params: nameParams,
        querystring: historyQuerySchema,
        response: errorResponses,
      },
    },
    async (req, reply) => {
      const model = ctx.registry.resolve(req.params.name);
      await model.history.sync();
      const bars = selectBars(model, req.query);
      const format: HistoryFormat = req.query.format ?? (/\btext\/csv\b/i.test(req.headers.accept ?? '') ? 'csv' : 'json');
      reply.header('x-history-version', String(model.history.version)).header('x-history-bars', String(model.history.length));
      if (format === 'csv') {
        reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${model.name}-history.csv"`);
        return reply.send(Readable.from(csvChunks(bars)));
      }
      return reply.type('application/json; charset=utf-8').send(Readable.from(jsonChunks(bars)));
    },
  );
}

export async function historyAdminRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.delete<{ Params: { name: string; date: string } }>(
    '/admin/models/:name/history/:date',
    {
      schema: {
        tags: ['admin'],
        summary: 'Delete a stored bar sent by mistake (admin key)',
        description:
          "Removes the bar from the model's stored history for every worker and replica; the features of every later bar " +
          'are recomputed without it, and forecasts of those bars change accordingly. Logged with the bar as it was stored, ' +
          'which is returned so that it can be posted again if the deletion was itself a mistake.',
        security: [{ adminKey: [] }],
        params: {
          type: 'object',
          required: ['name', 'date'],
          properties: { name: nameParams.properties.name, date: { type: 'string', maxLength: 10, examples: [EXAMPLE_BAR.date] } },
        },
        response: errorResponses,
      },
    },
    async (req) => {
      const { name } = req.params;
      const date = queryDate('date', req.params.date, 'path')!;
      const model = ctx.registry.resolve(name);
      const history = model.history;
      const result = await history.lock.run(async () => {
        const r = await ctx.store.deleteBar(model.name, date);
        await history.sync();
        return r;
      });
      if (!result.deleted)
        throw new ForecastError(`model '${model.name}' has no stored bar dated ${date}`, 404, 'unknown_bar', { model: model.name, date });
      // Recomputed now, by the administrator's request, rather than by the next client's.
      const versions = ctx.registry.versions(model.name);
      for (const v of versions) v.features.update();
      // Its own forecasts go; the outcomes it realised or entered are scored again without it.
      await ctx.monitor.historyCorrected(model.name, date, true);
      ctx.metrics.barsWritten.inc({ model: model.name, kind: 'deleted' });
      req.log.warn({ model: model.name, bar: result.deleted, historyVersion: result.version }, 'stored bar deleted by an administrator');
      return { model: model.name, deleted: result.deleted, history: history.summary() };
    },
  );
}
