import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { builtinModules } from 'node:module';
import { promisify } from 'node:util';
import { validate } from 'dockerfile-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config.js';
import {
  dockerignoreIncludes,
  dockerStartCommand,
  healthcheckCommand,
  listRepoFiles,
  parseDockerfile,
  readRepoFile,
  type DockerInstruction,
  type DockerStage,
} from './helpers.js';

const run = promisify(execFile);

const dockerfile = readRepoFile('Dockerfile');
const { stages, preamble } = parseDockerfile(dockerfile);
const runtime = stages[stages.length - 1];
const pkg = JSON.parse(readRepoFile('package.json')) as {
  bin: Record<string, string>;
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
};

const of = (stage: DockerStage, keyword: string): DockerInstruction[] =>
  stage.instructions.filter((i) => i.keyword === keyword);
const runs = (stage: DockerStage): string => of(stage, 'RUN').map((i) => i.args).join('\n');
const stageNamed = (name: string): DockerStage => {
  const stage = stages.find((s) => s.name === name);
  if (!stage) throw new Error(`no stage named ${name}`);
  return stage;
};
/** A stage's RUN commands including those of the stages it is built FROM. */
const runsWithBases = (stage: DockerStage): string => {
  const base = stages.find((s) => s.name !== null && s.name === stage.image);
  return (base ? runsWithBases(base) + '\n' : '') + runs(stage);
};

describe('Dockerfile lint', () => {
  it('has no linter findings (dockerfile-utils)', () => {
    const findings = validate(dockerfile).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    expect(findings).toEqual([]);
  });

  it('the linter does find problems (the check above is not vacuous)', () => {
    const broken = 'FROM node:20 AS\nEXPOSE notaport\nHEALTHCHECK --interval=soon CMD true\nWORKDIR app\n';
    expect(validate(broken).length).toBeGreaterThanOrEqual(3);
  });
});

describe('Dockerfile contract', () => {
  it('is multi-stage, every stage on the same Node 20 Debian slim base', () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    expect(runtime.name).toBe('runtime');
    const arg = preamble.find((i) => i.keyword === 'ARG' && i.args.startsWith('NODE_IMAGE='));
    expect(arg?.args).toMatch(/^NODE_IMAGE=node:20-bookworm-slim$/);
    for (const stage of stages) {
      // Either the base image itself or another stage built on it.
      expect(['${NODE_IMAGE}', ...stages.map((s) => s.name)]).toContain(stage.image);
    }
  });

  it('builds with every dependency and compiles TypeScript in a build stage', () => {
    expect(pkg.scripts.build).toBe('tsc -p tsconfig.build.json');
    const tsconfigBuild = JSON.parse(readRepoFile('tsconfig.build.json')) as { compilerOptions: { outDir: string } };
    expect(tsconfigBuild.compilerOptions.outDir).toBe('dist');
    const build = stageNamed('build');
    expect(runs(build)).toMatch(/\bnpm ci(?![^\n]*--omit)/);
    expect(runs(build)).toContain('npm run build');
    expect(of(build, 'COPY').map((c) => c.args)).toContain('src ./src');
  });

  it('installs production dependencies only (--omit=dev) where the native addon can compile', () => {
    const copies = of(runtime, 'COPY').filter((c) => c.flags.from);
    const nodeModules = copies.find((c) => /node_modules/.test(c.args));
    expect(nodeModules, 'runtime copies node_modules from another stage').toBeDefined();
    const deps = stageNamed(nodeModules!.flags.from!);
    expect(runs(deps)).toMatch(/\bnpm ci --omit=dev\b/);
    // better-sqlite3 falls back to node-gyp: python3, make and g++ must be there.
    for (const tool of ['python3', 'make', 'g++']) expect(runsWithBases(deps)).toContain(tool);
    const dist = copies.find((c) => /\/dist\b/.test(c.args));
    expect(dist?.flags.from).toBe('build');
  });

  it('ships compiled JavaScript only: no compiler, no sources, no dev install at run time', () => {
    const text = runs(runtime);
    expect(text).not.toMatch(/\bnpm (ci|install|i)\b/);
    for (const tool of ['g++', 'make', 'python3', 'typescript', 'tsx']) expect(text).not.toContain(tool);
    const contextCopies = of(runtime, 'COPY').filter((c) => !c.flags.from).map((c) => c.args.split(/\s+/)[0]);
    expect(contextCopies).not.toContain('src');
    expect(contextCopies.some((src) => src.startsWith('tsconfig'))).toBe(false);
    // dist/*.js are ES modules: package.json ("type": "module") must sit beside them.
    expect(contextCopies).toContain('package.json');
  });

  it('runs as a non-root user', () => {
    const users = of(runtime, 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = users[users.length - 1].args.split(':')[0];
    expect(['root', '0']).not.toContain(user);
    const cmd = of(runtime, 'CMD')[0];
    expect(users[users.length - 1].line).toBeLessThan(cmd.line);
  });

  it('listens on PORT 8000, the service default, and exposes it', () => {
    const env = Object.assign({}, ...of(runtime, 'ENV').map((i) => i.env)) as Record<string, string>;
    expect(env.PORT).toBe('8000');
    expect(DEFAULT_CONFIG.port).toBe(8000);
    expect(of(runtime, 'EXPOSE').map((i) => i.args)).toContain(env.PORT);
    expect(env.NODE_ENV).toBe('production');
  });

  it('starts the compiled CLI on /models, under an init that forwards signals', () => {
    expect(dockerStartCommand()).toEqual(['node', 'dist/cli/index.js', 'serve', '--models', '/models']);
    expect(Object.values(pkg.bin)).toContain(dockerStartCommand()[1]);
    const entrypoint = of(runtime, 'ENTRYPOINT')[0]?.json;
    expect(entrypoint).toEqual(['/usr/bin/tini', '--']);
    expect(runs(runtime)).toMatch(/apt-get install[^\n]*\btini\b/);
    expect(of(runtime, 'COPY').map((c) => c.args)).toContain('deploy/models/ /models/');
  });

  it('keeps apt layers small', () => {
    for (const stage of stages) {
      for (const run of of(stage, 'RUN').filter((r) => r.args.includes('apt-get install'))) {
        expect(run.args).toContain('--no-install-recommends');
        expect(run.args).toContain('rm -rf /var/lib/apt/lists/*');
        expect(run.args).toContain('apt-get update');
      }
    }
  });

  it('has a HEALTHCHECK on /healthz that needs nothing but node', () => {
    const checks = of(runtime, 'HEALTHCHECK');
    expect(checks).toHaveLength(1);
    expect(checks[0].flags).toMatchObject({ interval: expect.any(String), timeout: expect.any(String) });
    const command = healthcheckCommand(checks[0]);
    expect(command[0]).toBe('node');
    expect(command.join(' ')).toContain('/healthz');
    expect(command.join(' ')).not.toMatch(/\b(curl|wget)\b/);
  });
});

describe('HEALTHCHECK command', () => {
  let server: Server;
  let port: number;
  let status = 200;
  beforeAll(async () => {
    server = createServer((req, res) => {
      res.statusCode = req.url === '/healthz' ? status : 404;
      res.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const check = async (env: NodeJS.ProcessEnv): Promise<number> => {
    const [node, ...args] = healthcheckCommand(of(runtime, 'HEALTHCHECK')[0]);
    expect(node).toBe('node');
    try {
      await run(process.execPath, args, { env: { PATH: process.env.PATH, ...env }, timeout: 10_000 });
      return 0;
    } catch (err) {
      return (err as { code: number }).code;
    }
  };

  it('exits 0 when /healthz answers 200 on $PORT', async () => {
    status = 200;
    expect(await check({ PORT: String(port) })).toBe(0);
  });

  it('exits 1 when /healthz fails or nothing listens', async () => {
    status = 503;
    expect(await check({ PORT: String(port) })).toBe(1);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const freePort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect(await check({ PORT: String(freePort) })).toBe(1);
  });
});

describe('.dockerignore', () => {
  const included = dockerignoreIncludes(readRepoFile('.dockerignore'));

  it('sends everything the Dockerfile copies from the context', () => {
    const sources = stages.flatMap((stage) =>
      of(stage, 'COPY')
        .filter((c) => !c.flags.from)
        .flatMap((c) => c.args.split(/\s+/).slice(0, -1)),
    );
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      const path = source.replace(/\/$/, '');
      expect(included(path), `${path} is in the build context`).toBe(true);
    }
    const srcFiles = listRepoFiles('src');
    expect(srcFiles.length).toBeGreaterThan(0);
    expect(srcFiles.filter((f) => !included(f))).toEqual([]);
  });

  it('keeps out what the image must not contain', () => {
    for (const path of [
      'node_modules/vega/package.json',
      'dist/cli/index.js',
      '.git/HEAD',
      '.env',
      'test/deploy/dockerfile.test.ts',
      '.data/history.sqlite',
      'deploy/kubernetes/secret.yaml',
      'docs/deploy.md',
    ]) {
      expect(included(path), path).toBe(false);
    }
    expect(included('deploy/models/msft/1/manifest.json')).toBe(true);
    // Something is always there to copy, so `COPY deploy/models/ /models/` never copies nothing.
    expect(included('deploy/models/README.md')).toBe(true);
  });
});

describe('runtime dependencies', () => {
  /** Packages imported for their values by src/ (type-only imports are erased by tsc). */
  function runtimeImports(): Map<string, string> {
    const builtins = new Set(builtinModules);
    const found = new Map<string, string>();
    for (const file of listRepoFiles('src').filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))) {
      const source = readRepoFile(file);
      const statements = source.matchAll(
        /^\s*(import|export)\s+(type\s+)?([^'"]*?)\s*from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm,
      );
      for (const m of statements) {
        const specifier = m[4] ?? m[5] ?? m[6];
        if (m[2]) continue; // import type / export type
        const clause = m[3] ?? '';
        const braces = /^\{([^}]*)\}$/s.exec(clause.trim());
        if (braces && braces[1].split(',').every((s) => s.trim() === '' || /^type\s/.test(s.trim()))) continue;
        if (specifier.startsWith('.') || specifier.startsWith('node:') || builtins.has(specifier.split('/')[0])) continue;
        const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
        found.set(name, file);
      }
    }
    return found;
  }

  it('every package src/ imports at run time is a production dependency (npm ci --omit=dev keeps it)', () => {
    const imports = runtimeImports();
    expect(imports.size).toBeGreaterThan(0);
    const missing = [...imports].filter(([name]) => !(name in pkg.dependencies)).map(([name, file]) => `${name} (${file})`);
    expect(missing).toEqual([]);
  });
});
