import type { ForecastLogRow } from './types.js';

/** A forecast_log row as both stores return it (PostgreSQL's booleans and SQLite's 0/1 alike). */
export interface LogRow {
  model: string;
  version: string;
  date: string;
  y_pred: number | null;
  provisional: number | boolean;
  feature_set: string;
  request_id: string | null;
  made_at: string | Date;
  served: number | string;
  y_true: number | null;
  y_final: number | null;
  scored_at: string | Date | null;
}

export function logRow(r: LogRow): ForecastLogRow {
  const iso = (t: string | Date) => (t instanceof Date ? t.toISOString() : t);
  return {
    model: r.model,
    version: r.version,
    date: r.date,
    yPred: r.y_pred,
    provisional: Boolean(r.provisional),
    featureSet: r.feature_set,
    requestId: r.request_id,
    madeAt: iso(r.made_at),
    served: Number(r.served),
    yTrue: r.y_true,
    yFinal: r.y_final,
    scoredAt: r.scored_at === null ? null : iso(r.scored_at),
  };
}

/** Another process compacted the same rows first: this compaction is refused (see compactForecastLog). */
export class CompactionRace extends Error {}
