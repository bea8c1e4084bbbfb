/**
 * Service configuration: the one module that reads `process.env` (STYLE.md, "Small habits").
 * Everything is validated once at start; a bad value stops the service with a message naming the
 * variable, never a surprise at the first request.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { ForecastError } from './errors.js';

export interface ServiceConfig {
  /** TCP port (`PORT`, default 8000). */
  port: number;
  /** Listen address (`HOST`, default `0.0.0.0`). */
  host: string;
  /** Worker processes sharing the port (`WEB_CONCURRENCY`, default one per core). */
  workers: number;
  /** Accepted API keys (`API_KEYS`, comma-separated, and/or `API_KEYS_FILE`, one per line). */
  apiKeys: string[];
  /** Serve without keys (CLI `--insecure-dev`; `INSECURE_DEV=1`). Never in production. */
  insecureDev: boolean;
  /** PostgreSQL connection string (`DATABASE_URL`); when unset the embedded SQLite store is used. */
  databaseUrl: string | null;
  /** PostgreSQL schema holding the history tables (`DATABASE_SCHEMA`, default `forecast`). */
  databaseSchema: string;
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
  /** Grace period for in-flight requests on SIGTERM (`SHUTDOWN_TIMEOUT_MS`, default 10000). */
  shutdownTimeoutMs: number;
  /** Folder for the demo bundle when no bundle is named (`DEMO_DIR`, default `.data/demo-bundle`). */
  demoDir: string;
}

export const DEFAULT_CONFIG: Readonly<ServiceConfig> = Object.freeze({
  port: 8000,
  host: '0.0.0.0',
  workers: 1,
  apiKeys: [],
  insecureDev: false,
  databaseUrl: null,
  databaseSchema: 'forecast',
  sqlitePath: '.data/history.sqlite',
  maxBodyBytes: 1024 * 1024,
  logLevel: 'info',
  bundleDir: null,
  modelsDir: null,
  defaultModel: null,
  shutdownTimeoutMs: 10_000,
  demoDir: '.data/demo-bundle',
});

export class ConfigError extends ForecastError {
  constructor(message: string) {
    super(message, 500, 'invalid_config');
  }
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be a whole number, got '${raw}'`);
  const n = Number(raw.trim());
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  const raw = (env[name] ?? '').trim().toLowerCase();
  if (raw === '' || raw === '0' || raw === 'false' || raw === 'no') return false;
  if (raw === '1' || raw === 'true' || raw === 'yes') return true;
  throw new ConfigError(`${name} must be true or false, got '${env[name]}'`);
}

function optional(env: NodeJS.ProcessEnv, name: string): string | null {
  const v = env[name]?.trim();
  return v ? v : null;
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
    if (k.length < 16) throw new ConfigError(`${source}: API keys must be at least 16 characters (one is ${k.length})`);
    if (!/^[\x21-\x7e]+$/.test(k)) throw new ConfigError(`${source}: API keys must be printable ASCII without spaces`);
  }
}

/**
 * Reads and validates the configuration from an environment (default `process.env`).
 * `overrides` (CLI flags) win over the environment.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<ServiceConfig> = {}): ServiceConfig {
  const keys: string[] = [];
  if (env.API_KEYS !== undefined) {
    const fromEnv = parseKeyList(env.API_KEYS);
    validateApiKeys(fromEnv, 'API_KEYS');
    keys.push(...fromEnv);
  }
  const keysFile = optional(env, 'API_KEYS_FILE');
  if (keysFile) {
    let text: string;
    try {
      text = readFileSync(keysFile, 'utf8');
    } catch (err) {
      throw new ConfigError(`API_KEYS_FILE ${keysFile} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const fromFile = parseKeyList(text);
    validateApiKeys(fromFile, 'API_KEYS_FILE');
    keys.push(...fromFile);
  }
  const logLevel = (optional(env, 'LOG_LEVEL') ?? DEFAULT_CONFIG.logLevel).toLowerCase();
  if (!LOG_LEVELS.has(logLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${[...LOG_LEVELS].join(', ')}, got '${logLevel}'`);
  const databaseUrl = optional(env, 'DATABASE_URL');
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl))
    throw new ConfigError('DATABASE_URL must be a postgres:// or postgresql:// connection string');
  const databaseSchema = optional(env, 'DATABASE_SCHEMA') ?? DEFAULT_CONFIG.databaseSchema;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(databaseSchema))
    throw new ConfigError(`DATABASE_SCHEMA must be a lower-case SQL identifier, got '${databaseSchema}'`);
  const config: ServiceConfig = {
    port: integer(env, 'PORT', DEFAULT_CONFIG.port, 0, 65535),
    host: optional(env, 'HOST') ?? DEFAULT_CONFIG.host,
    workers: integer(env, 'WEB_CONCURRENCY', availableParallelism(), 1, 256),
    apiKeys: [...new Set(keys)],
    insecureDev: flag(env, 'INSECURE_DEV'),
    databaseUrl,
    databaseSchema,
    sqlitePath: optional(env, 'HISTORY_DB') ?? DEFAULT_CONFIG.sqlitePath,
    maxBodyBytes: integer(env, 'MAX_BODY_BYTES', DEFAULT_CONFIG.maxBodyBytes, 1024, 1024 * 1024 * 1024),
    logLevel,
    bundleDir: optional(env, 'BUNDLE_DIR'),
    modelsDir: optional(env, 'MODELS_DIR'),
    defaultModel: optional(env, 'DEFAULT_MODEL'),
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', DEFAULT_CONFIG.shutdownTimeoutMs, 0, 600_000),
    demoDir: optional(env, 'DEMO_DIR') ?? DEFAULT_CONFIG.demoDir,
  };
  const merged = { ...config, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) } as ServiceConfig;
  if (merged.bundleDir && merged.modelsDir) throw new ConfigError('name either one bundle (BUNDLE_DIR) or a models folder (MODELS_DIR), not both');
  return merged;
}
