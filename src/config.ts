/**
 * Service configuration: the one module that reads `process.env` (STYLE.md, "Small habits"), and the
 * one place where defaults live. `loadConfig` (environment + CLI flags) and `serviceConfig`
 * (programmatic: tests, embedding) both end in `finishConfig`, which fills defaults, validates every
 * value once and freezes the result. That one object is handed to `buildApp`, `startServer`, each
 * cluster worker and the Lambda handler; nothing downstream re-derives a default.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { ForecastError } from './errors.js';

/** PostgreSQL time limits: a store that cannot answer must fail fast, never hang a request. */
export interface DatabaseTimeouts {
  /** Opening a connection (`PG_CONNECT_TIMEOUT_MS`, default 3000). */
  connectTimeoutMs: number;
  /** Client-side limit on one query, round trip included (`PG_QUERY_TIMEOUT_MS`, default 3000). */
  queryTimeoutMs: number;
  /** Server-side `statement_timeout` (`PG_STATEMENT_TIMEOUT_MS`, default 2500). */
  statementTimeoutMs: number;
  /** Connections per process (`PG_POOL_SIZE`, default 10). */
  poolSize: number;
}

export interface ServiceConfig {
  /** TCP port (`PORT`, default 8000). */
  port: number;
  /** Listen address (`HOST`, default `0.0.0.0`). */
  host: string;
  /** Worker processes sharing the port (`WEB_CONCURRENCY`, default one per core). */
  workers: number;
  /** Accepted client API keys (`API_KEYS`, comma-separated, and/or `API_KEYS_FILE`, one per line). */
  apiKeys: readonly string[];
  /** Keys accepted on `POST /admin/*` (`ADMIN_API_KEYS` and/or `ADMIN_API_KEYS_FILE`); client keys are not. */
  adminApiKeys: readonly string[];
  /** Serve without keys (CLI `--insecure-dev`; `INSECURE_DEV=1`). Never in production. */
  insecureDev: boolean;
  /** PostgreSQL connection string (`DATABASE_URL`); when unset the embedded SQLite store is used. */
  databaseUrl: string | null;
  /** PostgreSQL schema holding the history tables (`DATABASE_SCHEMA`, default `forecast`). */
  databaseSchema: string;
  /** PostgreSQL time limits and pool size. */
  database: Readonly<DatabaseTimeouts>;
  /** SQLite history file (`HISTORY_DB`, default `.data/history.sqlite`). */
  sqlitePath: string;
  /** Largest accepted request body in bytes (`MAX_BODY_BYTES`, default 1 MiB). */
  maxBodyBytes: number;
  /** pino level (`LOG_LEVEL`, default `info`). */
  logLevel: string;
  /** One bundle folder (`BUNDLE_DIR`). */
  bundleDir: string | null;
  /** A folder of bundles laid out `name/version/` (`MODELS_DIR`). */
  modelsDir: string | null;
  /** Model answering `POST /forecast` and `/invocations` (`DEFAULT_MODEL`; default: the only or first model). */
  defaultModel: string | null;
  /**
   * Versions to run in shadow, `name@version` each (`SHADOW_VERSIONS`, comma-separated): stored as
   * the model's routing at start, as `POST /admin/models/{name}/shadow` would (a later admin call
   * changes it until the next start).
   */
  shadowVersions: readonly string[];
  /**
   * Forecast-log rows kept per model version (`MONITOR_RETENTION`, default 10000, about 40 years of
   * daily bars; at least 250, the largest live window). Older rows are compacted into sums that keep
   * the since-deployment figures.
   */
  monitorRetention: number;
  /** Grace period for in-flight requests on SIGTERM, after the drain delay (`SHUTDOWN_TIMEOUT_MS`, default 10000). */
  shutdownTimeoutMs: number;
  /**
   * After SIGTERM, how long the listener keeps accepting while `/readyz` answers 503, so a load
   * balancer stops routing here first (`DRAIN_DELAY_MS`, default 0; Heroku and plain Docker have no
   * preStop hook, Kubernetes users set it a little above the readiness period).
   */
  drainDelayMs: number;
  /** Limit on `/readyz`'s store check (`READY_TIMEOUT_MS`, default 1000). */
  readyTimeoutMs: number;
  /** Whole-request limit: a body still arriving after this is answered 408 (`REQUEST_TIMEOUT_MS`, default 30000). */
  requestTimeoutMs: number;
  /** Limit on receiving the request headers (`HEADERS_TIMEOUT_MS`, default 10000). */
  headersTimeoutMs: number;
  /** Idle keep-alive connections are closed after this (`KEEP_ALIVE_TIMEOUT_MS`, default 5000). */
  keepAliveTimeoutMs: number;
  /** Folder for the demo bundle when no bundle is named (`DEMO_DIR`, default `.data/demo-bundle`). */
  demoDir: string;
}

export const DEFAULT_CONFIG: Readonly<ServiceConfig> = Object.freeze({
  port: 8000,
  host: '0.0.0.0',
  workers: availableParallelism(),
  apiKeys: Object.freeze([]) as readonly string[],
  adminApiKeys: Object.freeze([]) as readonly string[],
  insecureDev: false,
  databaseUrl: null,
  databaseSchema: 'forecast',
  database: Object.freeze({ connectTimeoutMs: 3000, queryTimeoutMs: 3000, statementTimeoutMs: 2500, poolSize: 10 }),
  sqlitePath: '.data/history.sqlite',
  maxBodyBytes: 1024 * 1024,
  logLevel: 'info',
  bundleDir: null,
  modelsDir: null,
  defaultModel: null,
  shadowVersions: Object.freeze([]) as readonly string[],
  monitorRetention: 10_000,
  shutdownTimeoutMs: 10_000,
  drainDelayMs: 0,
  readyTimeoutMs: 1000,
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5000,
  demoDir: '.data/demo-bundle',
});

export class ConfigError extends ForecastError {
  constructor(message: string) {
    super(message, 500, 'invalid_config');
  }
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

function integer(env: NodeJS.ProcessEnv, name: string, min: number, max: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  if (!/^\d{1,12}$/.test(raw.trim())) throw new ConfigError(`${name} must be a whole number, got '${raw}'`);
  const n = Number(raw.trim());
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function flag(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const raw = (env[name] ?? '').trim().toLowerCase();
  if (raw === '') return undefined;
  if (raw === '0' || raw === 'false' || raw === 'no') return false;
  if (raw === '1' || raw === 'true' || raw === 'yes') return true;
  throw new ConfigError(`${name} must be true or false, got '${env[name]}'`);
}

function optional(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

/** Splits a key list (commas or newlines), dropping blanks and `#` comment lines. */
export function parseKeyList(text: string): string[] {
  return text
    .split(/[,\n\r]/)
    .map((k) => k.trim())
    .filter((k) => k !== '' && !k.startsWith('#'));
}

/** Rejects keys that would be weak or ambiguous in a header. */
export function validateApiKeys(keys: readonly string[], source: string): void {
  for (const k of keys) {
    if (typeof k !== 'string') throw new ConfigError(`${source}: API keys must be strings`);
    if (k.length < 16) throw new ConfigError(`${source}: API keys must be at least 16 characters (one is ${k.length})`);
    if (k.length > 512) throw new ConfigError(`${source}: API keys must be at most 512 characters`);
    if (!/^[\x21-\x7e]+$/.test(k)) throw new ConfigError(`${source}: API keys must be printable ASCII without spaces`);
  }
}

/** Keys from the variable `name` (a list) and from the file the variable `${name}_FILE` names, validated. */
function keysFromEnv(env: NodeJS.ProcessEnv, name: string): string[] | undefined {
  let keys: string[] | undefined;
  if (env[name] !== undefined) {
    const fromEnv = parseKeyList(env[name]!);
    validateApiKeys(fromEnv, name);
    keys = fromEnv;
  }
  const file = optional(env, `${name}_FILE`);
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`${name}_FILE ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const fromFile = parseKeyList(text);
    validateApiKeys(fromFile, `${name}_FILE`);
    keys = [...(keys ?? []), ...fromFile];
  }
  return keys;
}

/** A configuration given in code: any subset of the fields (a nested `database` may be partial). */
export type ConfigInput = Partial<Omit<ServiceConfig, 'database'>> & { database?: Partial<DatabaseTimeouts> };

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ConfigError(`${name} must be a whole number between ${min} and ${max}, got ${String(v)}`);
  return v;
}

/**
 * Defaults filled in, every field validated, the result frozen. Idempotent: a finished
 * configuration passes through unchanged in value (cluster workers receive one over IPC).
 */
export function serviceConfig(input: ConfigInput = {}): Readonly<ServiceConfig> {
  const given = dropUndefined(input);
  const database = Object.freeze({ ...DEFAULT_CONFIG.database, ...dropUndefined(input.database ?? {}) });
  const c: ServiceConfig = { ...DEFAULT_CONFIG, ...given, database } as ServiceConfig;
  checkInt('port (PORT)', c.port, 0, 65535);
  checkInt('workers (WEB_CONCURRENCY)', c.workers, 1, 256);
  checkInt('maxBodyBytes (MAX_BODY_BYTES)', c.maxBodyBytes, 1024, 1024 * 1024 * 1024);
  checkInt('shutdownTimeoutMs (SHUTDOWN_TIMEOUT_MS)', c.shutdownTimeoutMs, 0, 600_000);
  checkInt('drainDelayMs (DRAIN_DELAY_MS)', c.drainDelayMs, 0, 600_000);
  checkInt('monitorRetention (MONITOR_RETENTION)', c.monitorRetention, 250, 10_000_000);
  checkInt('readyTimeoutMs (READY_TIMEOUT_MS)', c.readyTimeoutMs, 1, 600_000);
  checkInt('requestTimeoutMs (REQUEST_TIMEOUT_MS)', c.requestTimeoutMs, 1, 3_600_000);
  checkInt('headersTimeoutMs (HEADERS_TIMEOUT_MS)', c.headersTimeoutMs, 1, 3_600_000);
  checkInt('keepAliveTimeoutMs (KEEP_ALIVE_TIMEOUT_MS)', c.keepAliveTimeoutMs, 1, 3_600_000);
  checkInt('database.connectTimeoutMs (PG_CONNECT_TIMEOUT_MS)', database.connectTimeoutMs, 1, 600_000);
  checkInt('database.queryTimeoutMs (PG_QUERY_TIMEOUT_MS)', database.queryTimeoutMs, 1, 600_000);
  checkInt('database.statementTimeoutMs (PG_STATEMENT_TIMEOUT_MS)', database.statementTimeoutMs, 0, 600_000);
  checkInt('database.poolSize (PG_POOL_SIZE)', database.poolSize, 1, 1000);
  if (!LOG_LEVELS.has(c.logLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${[...LOG_LEVELS].join(', ')}, got '${c.logLevel}'`);
  if (c.databaseUrl !== null && !/^postgres(ql)?:\/\//.test(c.databaseUrl))
    throw new ConfigError('DATABASE_URL must be a postgres:// or postgresql:// connection string');
  if (!SCHEMA_RE.test(c.databaseSchema)) throw new ConfigError(`DATABASE_SCHEMA must be a lower-case SQL identifier, got '${c.databaseSchema}'`);
  if (c.bundleDir && c.modelsDir) throw new ConfigError('name either one bundle (BUNDLE_DIR) or a models folder (MODELS_DIR), not both');
  for (const s of c.shadowVersions)
    if (!/^[^@\s]+@[^@\s]+$/.test(s)) throw new ConfigError(`SHADOW_VERSIONS entries must be name@version, got '${s}'`);
  c.shadowVersions = Object.freeze([...c.shadowVersions]);
  validateApiKeys(c.apiKeys, 'API_KEYS');
  validateApiKeys(c.adminApiKeys, 'ADMIN_API_KEYS');
  c.apiKeys = Object.freeze([...new Set(c.apiKeys)]);
  c.adminApiKeys = Object.freeze([...new Set(c.adminApiKeys)]);
  return Object.freeze(c);
}

/**
 * Reads and validates the configuration from an environment (default `process.env`).
 * `overrides` (CLI flags) win over the environment.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: ConfigInput = {}): Readonly<ServiceConfig> {
  const logLevel = optional(env, 'LOG_LEVEL')?.toLowerCase();
  const fromEnv: ConfigInput = {
    port: integer(env, 'PORT', 0, 65535),
    host: optional(env, 'HOST'),
    workers: integer(env, 'WEB_CONCURRENCY', 1, 256),
    apiKeys: keysFromEnv(env, 'API_KEYS'),
    adminApiKeys: keysFromEnv(env, 'ADMIN_API_KEYS'),
    insecureDev: flag(env, 'INSECURE_DEV'),
    databaseUrl: optional(env, 'DATABASE_URL'),
    databaseSchema: optional(env, 'DATABASE_SCHEMA'),
    database: {
      connectTimeoutMs: integer(env, 'PG_CONNECT_TIMEOUT_MS', 1, 600_000),
      queryTimeoutMs: integer(env, 'PG_QUERY_TIMEOUT_MS', 1, 600_000),
      statementTimeoutMs: integer(env, 'PG_STATEMENT_TIMEOUT_MS', 0, 600_000),
      poolSize: integer(env, 'PG_POOL_SIZE', 1, 1000),
    },
    sqlitePath: optional(env, 'HISTORY_DB'),
    maxBodyBytes: integer(env, 'MAX_BODY_BYTES', 1024, 1024 * 1024 * 1024),
    logLevel,
    bundleDir: optional(env, 'BUNDLE_DIR'),
    modelsDir: optional(env, 'MODELS_DIR'),
    defaultModel: optional(env, 'DEFAULT_MODEL'),
    shadowVersions: optional(env, 'SHADOW_VERSIONS')?.split(',').map((s) => s.trim()).filter(Boolean),
    monitorRetention: integer(env, 'MONITOR_RETENTION', 250, 10_000_000),
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 0, 600_000),
    drainDelayMs: integer(env, 'DRAIN_DELAY_MS', 0, 600_000),
    readyTimeoutMs: integer(env, 'READY_TIMEOUT_MS', 1, 600_000),
    requestTimeoutMs: integer(env, 'REQUEST_TIMEOUT_MS', 1, 3_600_000),
    headersTimeoutMs: integer(env, 'HEADERS_TIMEOUT_MS', 1, 3_600_000),
    keepAliveTimeoutMs: integer(env, 'KEEP_ALIVE_TIMEOUT_MS', 1, 3_600_000),
    demoDir: optional(env, 'DEMO_DIR'),
  };
  const o = dropUndefined(overrides);
  return serviceConfig({ ...dropUndefined(fromEnv), ...o, database: { ...dropUndefined(fromEnv.database ?? {}), ...dropUndefined(overrides.database ?? {}) } });
}
