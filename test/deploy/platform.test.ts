import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { dockerStartCommand, parseDockerfile, readRepoFile, readYamlDocuments, ROOT, serviceEnvVars } from './helpers.js';

const START = dockerStartCommand();
const GOOD_KEY = 'k'.repeat(32);
const known = serviceEnvVars();
const pkg = JSON.parse(readRepoFile('package.json')) as {
  scripts: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** Procfile entries: `type: command`; anything else (comments) Heroku ignores. */
function procfile(): Record<string, string> {
  const entries: Record<string, string> = {};
  for (const line of readRepoFile('Procfile').split(/\r?\n/)) {
    const m = /^([A-Za-z0-9_-]+):\s*(.+)$/.exec(line);
    if (m) entries[m[1]] = m[2].trim();
  }
  return entries;
}

/** Compose's variable interpolation for `${VAR}`, `${VAR:-default}` and `${VAR:?error}`. */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(/\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}/g, (_, name: string, op: string | undefined, arg: string) => {
    if (env[name] !== undefined && env[name] !== '') return env[name];
    if (op === ':-') return arg;
    if (op === ':?') throw new Error(`${name}: ${arg}`);
    return '';
  });
}

describe('Heroku', () => {
  const herokuYml = parseYaml(readRepoFile('heroku.yml')) as {
    build: { docker: Record<string, string> };
    run?: Record<string, unknown>;
    setup?: { addons?: { plan: string; as?: string }[]; config?: Record<string, string> };
  };
  const appJson = JSON.parse(readRepoFile('app.json')) as {
    stack?: string;
    addons: ({ plan: string; as?: string } | string)[];
    env: Record<string, { description: string; value?: string; required?: boolean; generator?: string }>;
    formation?: Record<string, unknown>;
  };

  it('heroku.yml builds the Dockerfile for web and keeps its CMD', () => {
    expect(herokuYml.build.docker.web).toBe('Dockerfile');
    expect(existsSync(join(ROOT, herokuYml.build.docker.web))).toBe(true);
    // No run section: Heroku then runs the image's CMD, the same start command as everywhere.
    expect(herokuYml.run).toBeUndefined();
    expect(readRepoFile('heroku.yml')).toContain(START.join(' '));
  });

  it('heroku.yml provisions PostgreSQL (DATABASE_URL) and sets only settings the service reads', () => {
    expect(herokuYml.setup?.addons?.some((a) => a.plan.startsWith('heroku-postgresql') && (a.as ?? 'DATABASE') === 'DATABASE')).toBe(true);
    const config = herokuYml.setup?.config ?? {};
    expect(Object.keys(config).filter((k) => !known.has(k))).toEqual([]);
    expect(() => loadConfig({ ...config, API_KEYS: GOOD_KEY })).not.toThrow();
  });

  it('Procfile runs the same compiled CLI command as the Dockerfile, on the bundles the image bakes in', () => {
    const entries = procfile();
    expect(Object.keys(entries)).toEqual(['web']);
    const web = entries.web.split(/\s+/);
    // Same executable, script, command and flag; only the folder differs (/models in the image).
    expect(web.slice(0, -1)).toEqual(START.slice(0, -1));
    const modelsDir = web[web.length - 1];
    const { stages } = parseDockerfile(readRepoFile('Dockerfile'));
    const copies = stages[stages.length - 1].instructions.filter((i) => i.keyword === 'COPY').map((i) => i.args);
    expect(copies).toContain(`${modelsDir}/ ${START[START.length - 1]}/`);
    expect(existsSync(join(ROOT, modelsDir))).toBe(true);
    // Heroku assigns the port through PORT, which the service reads; never a fixed port here.
    expect(entries.web).not.toMatch(/--port|\b8000\b|\btsx\b|\bnpm\b/);
  });

  it('the buildpack path compiles with the build script (the Node buildpack runs heroku-postbuild or build)', () => {
    expect(pkg.scripts['heroku-postbuild'] ?? pkg.scripts.build).toBe('tsc -p tsconfig.build.json');
    // Dev dependencies are installed for the build and pruned after it.
    expect(pkg.devDependencies.typescript).toBeDefined();
    expect(START[1].startsWith('dist/')).toBe(true);
  });

  it('app.json requires API_KEYS, provisions DATABASE_URL and documents WEB_CONCURRENCY', () => {
    expect(appJson.stack).toBe('container');
    expect(appJson.env.API_KEYS.required).toBe(true);
    const plans = appJson.addons.map((a) => (typeof a === 'string' ? a : a.plan));
    expect(plans.some((p) => p.startsWith('heroku-postgresql'))).toBe(true);
    // DATABASE_URL belongs to the add-on: declaring it here too would clash with it.
    expect(appJson.env.DATABASE_URL).toBeUndefined();
    expect(appJson.env.WEB_CONCURRENCY.value).toMatch(/^\d+$/);
    for (const [name, spec] of Object.entries(appJson.env)) {
      expect(known.has(name), `${name} is read by the service`).toBe(true);
      expect(spec.description.length, `${name} has a description`).toBeGreaterThan(10);
    }
    expect(Object.keys(appJson.formation ?? {})).toEqual(Object.keys(procfile()));
  });

  it('app.json defaults are values the service accepts', () => {
    const env: Record<string, string> = { API_KEYS: GOOD_KEY, DATABASE_URL: 'postgres://u:p@host:5432/db' };
    for (const [name, spec] of Object.entries(appJson.env)) if (spec.value !== undefined) env[name] = spec.value;
    const config = loadConfig(env);
    expect(config.workers).toBe(Number(appJson.env.WEB_CONCURRENCY.value));
    // A generated secret (64 hex characters) passes the key rules.
    expect(appJson.env.API_KEYS.generator).toBe('secret');
  });
});

describe('docker compose', () => {
  const compose = parseYaml(readRepoFile('docker-compose.yml')) as {
    services: Record<
      string,
      {
        build?: string;
        image?: string;
        ports?: string[];
        environment?: Record<string, string>;
        volumes?: string[];
        depends_on?: Record<string, { condition: string }>;
        healthcheck?: { test: string[] };
      }
    >;
    volumes?: Record<string, unknown>;
  };
  const api = compose.services.api;
  const db = compose.services.db;

  it('builds this Dockerfile and publishes the service port', () => {
    expect(api.build).toBe('.');
    expect(api.ports?.some((p) => interpolate(p, {}).endsWith(':8000'))).toBe(true);
  });

  it('requires API_KEYS from the environment and names only variables the service reads', () => {
    expect(api.environment!.API_KEYS).toMatch(/^\$\{API_KEYS:\?/);
    expect(() => interpolate(api.environment!.API_KEYS, {})).toThrow(/API_KEYS/);
    expect(Object.keys(api.environment!).filter((k) => !known.has(k))).toEqual([]);
  });

  it('points DATABASE_URL at the PostgreSQL service, which it waits for', () => {
    const env = Object.fromEntries(Object.entries(api.environment!).map(([k, v]) => [k, interpolate(v, { API_KEYS: GOOD_KEY })]));
    const url = new URL(env.DATABASE_URL);
    expect(url.protocol).toBe('postgres:');
    expect(url.hostname).toBe('db');
    const dbEnv = Object.fromEntries(Object.entries(db.environment!).map(([k, v]) => [k, interpolate(v, {})]));
    expect(decodeURIComponent(url.username)).toBe(dbEnv.POSTGRES_USER);
    expect(decodeURIComponent(url.password)).toBe(dbEnv.POSTGRES_PASSWORD);
    expect(url.pathname.slice(1)).toBe(dbEnv.POSTGRES_DB);
    expect(api.depends_on?.db.condition).toBe('service_healthy');
    expect(db.healthcheck?.test.join(' ')).toContain('pg_isready');
    expect(() => loadConfig(env)).not.toThrow();
  });

  it('mounts the bundles read-only where the image serves them from', () => {
    const models = api.volumes!.map((v) => interpolate(v, {})).find((v) => v.split(':')[1] === START[START.length - 1]);
    expect(models).toBeDefined();
    expect(models!.endsWith(':ro')).toBe(true);
    expect(db.volumes?.some((v) => v.endsWith(':/var/lib/postgresql/data'))).toBe(true);
  });
});

describe('docs/deploy.md', () => {
  const docs = readRepoFile('docs/deploy.md');

  it('shows every deployment path', () => {
    for (const command of [
      'docker build',
      'docker run',
      'docker compose up',
      'heroku container:push web',
      'heroku container:release web',
      'heroku stack:set container',
      'heroku buildpacks:set heroku/nodejs',
      'kubectl apply -k deploy/kubernetes',
      'kubectl apply -f deploy/kserve/inferenceservice.yaml',
    ]) {
      expect(docs, command).toContain(command);
    }
  });

  it('documents every environment variable the deployment files set and the service reads', () => {
    const named = new Set<string>(['API_KEYS', 'API_KEYS_FILE', 'DATABASE_URL', 'WEB_CONCURRENCY', 'PORT', 'MAX_BODY_BYTES']);
    const { stages } = parseDockerfile(readRepoFile('Dockerfile'));
    for (const i of stages[stages.length - 1].instructions) for (const k of Object.keys(i.env)) named.add(k);
    const appJson = JSON.parse(readRepoFile('app.json')) as { env: Record<string, unknown> };
    for (const k of Object.keys(appJson.env)) named.add(k);
    const configMap = readYamlDocuments('deploy/kubernetes/configmap.yaml')[0] as { data: Record<string, string> };
    for (const k of Object.keys(configMap.data)) named.add(k);
    for (const k of known) named.add(k);
    const undocumented = [...named].filter((name) => !new RegExp('`' + name + '`').test(docs));
    expect(undocumented).toEqual([]);
  });
});
