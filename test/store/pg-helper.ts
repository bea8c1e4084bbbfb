import pg from 'pg';
import { gate, type Gate, type Probe } from '../helpers/requirement.js';

/** The test database (trust auth on 127.0.0.1); TEST_DATABASE_URL overrides. */
export const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function redact(url: string): string {
  return url.replace(/:[^:@/]*@/, ':***@');
}

/** Node reports a refused dual-stack connect as an AggregateError with an empty message. */
function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(describeError).join('; ');
  if (err instanceof Error) return err.message || (err as NodeJS.ErrnoException).code || err.name;
  return String(err);
}

/** Whether PostgreSQL at `url` answers `SELECT 1`, and if not, why. */
export async function probePostgres(url = PG_URL): Promise<Probe> {
  const probe: Probe = { what: `PostgreSQL at ${redact(url)}`, variable: 'REQUIRE_POSTGRES', missing: undefined };
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
  } catch (err) {
    probe.missing = `unreachable (${describeError(err)})`;
  } finally {
    await c.end().catch(() => undefined);
  }
  return probe;
}

/** The PostgreSQL tests' gate: run, skip (REQUIRE_POSTGRES unset) or fail (REQUIRE_POSTGRES=1). */
export async function needsPostgres(url = PG_URL): Promise<Gate> {
  return gate(await probePostgres(url));
}

/** For the benchmarks, which print what they leave out; tests use needsPostgres (test/structure/skips.test.ts). */
export async function postgresAvailable(): Promise<boolean> {
  const probe = await probePostgres();
  if (probe.missing !== undefined) console.warn(`PostgreSQL left out: ${probe.what} ${probe.missing}`);
  return probe.missing === undefined;
}

/** A schema name unique to this test run. */
export function uniqueSchema(tag: string): string {
  return `forecast_test_${tag}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
}
