import pg from 'pg';

/** The test database (trust auth on 127.0.0.1); TEST_DATABASE_URL overrides. */
export const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** True when PostgreSQL answers; otherwise logs why the PostgreSQL tests are skipped. */
export async function postgresAvailable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch (err) {
    console.warn(`PostgreSQL tests skipped: ${PG_URL.replace(/:[^:@/]*@/, ':***@')} unreachable (${(err as Error).message})`);
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** A schema name unique to this test run. */
export function uniqueSchema(tag: string): string {
  return `forecast_test_${tag}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
}
