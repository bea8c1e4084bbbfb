/**
 * `npm run package:lambda -- [--bundle DIR ...] [--out FILE] [--stage DIR]`: the AWS Lambda zip.
 *
 *   dist/lambda/handler.mjs   src/lambda/entry.ts (the handler) and all it imports, bundled by esbuild
 *                             (Lambda handler setting: dist/lambda/handler.handler, runtime nodejs20.x)
 *   models/NAME/VERSION/      the bundles (default: the demo bundle), checked by loadBundle first
 *   node_modules/             only what cannot be bundled, with its production dependencies:
 *                             better-sqlite3 (a native addon: its compiled .node file and JS loader)
 *                             and @fastify/swagger(-ui) (they read their own files beside __dirname)
 *   package.json              name and version (the service reports the version)
 *
 * The zip is written by a small deterministic zip writer (node:zlib; fixed timestamps, sorted
 * entries), so neither `zip` nor any other tool is needed and equal inputs give equal zips. The
 * command fails when the zip exceeds Lambda's 50 MB direct-upload limit or the unzipped tree its
 * 250 MB limit.
 *
 * better_sqlite3.node is copied as compiled for this machine's Node and CPU: package on Linux x86_64
 * with Node 20 (as CI and the Dockerfile do) and deploy with architecture x86_64. Its glibc needs are
 * printed; Lambda's nodejs20.x (Amazon Linux 2023) has glibc 2.34.
 */
import { build } from 'esbuild';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { deflateRawSync } from 'node:zlib';
import { CHECKSUMS_FILE, loadBundle } from '../src/bundle/index.js';
import { ensureDemoBundle } from '../src/training/demo.js';
import { DEFAULT_CONFIG } from '../src/config.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Lambda's limit for a zip uploaded directly (not through S3). */
export const LAMBDA_ZIP_LIMIT_BYTES = 50 * 1024 * 1024;
/** Lambda's limit for the unzipped code. */
export const LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024;
export const HANDLER_FILE = 'dist/lambda/handler.mjs';
export const HANDLER_SETTING = 'dist/lambda/handler.handler';
/** glibc of Lambda's nodejs20.x runtime (Amazon Linux 2023). */
const LAMBDA_GLIBC = [2, 34] as const;

/** Packages left out of the bundle and copied instead (see the header). */
const EXTERNAL_PACKAGES = ['better-sqlite3', '@fastify/swagger', '@fastify/swagger-ui'];
/**
 * Imports that stay unresolved: pg loads pg-native only when asked for its native client, which the
 * store never does.
 */
const UNRESOLVED_IMPORTS = ['pg-native'];
/** Dependencies used only while installing (better-sqlite3 downloads or builds its binary with them). */
const INSTALL_ONLY = new Set(['prebuild-install']);
/** Folders of a package that are never loaded at run time. */
const SKIPPED_DIRS = new Set(['test', 'tests', '__tests__', 'e2e', 'example', 'examples', 'docs', 'benchmark', 'benchmarks', 'coverage', '.github', 'node_modules']);

export interface PackageOptions {
  /** Bundle folders to include (default: the demo bundle, trained on first use). */
  bundleDirs?: string[];
  /** The zip to write (default dist/lambda.zip). */
  outFile?: string;
  /** Where to assemble the tree (kept); default a temporary folder, removed afterwards. */
  stageDir?: string;
  log?: (line: string) => void;
}

export interface PackageResult {
  zipFile: string;
  bytes: number;
  unzippedBytes: number;
  entries: string[];
  models: string[];
  packages: string[];
  nativeAddon: { file: string; machine: string; glibc: string | null };
  stageDir: string | null;
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

export async function packageLambda(options: PackageOptions = {}): Promise<PackageResult> {
  const log = options.log ?? (() => undefined);
  const outFile = resolve(options.outFile ?? join(ROOT, 'dist', 'lambda.zip'));
  const stage = options.stageDir ? resolve(options.stageDir) : mkdtempSync(join(tmpdir(), 'forecast-lambda-'));
  // The stage is emptied first: never a folder that is not (an earlier) stage.
  if (options.stageDir && existsSync(stage) && readdirSync(stage).length > 0 && !existsSync(join(stage, HANDLER_FILE)))
    throw new Error(`--stage ${stage} is not empty and is not an earlier Lambda stage: refusing to empty it`);
  await rm(stage, { recursive: true, force: true });
  await mkdir(stage, { recursive: true });
  try {
    // 1. The handler and all it imports, in one ES module.
    const handlerOut = join(stage, HANDLER_FILE);
    const built = await build({
      entryPoints: [join(ROOT, 'src', 'lambda', 'entry.ts')],
      outfile: handlerOut,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      external: [...EXTERNAL_PACKAGES, ...UNRESOLVED_IMPORTS],
      // Bundled CommonJS packages call require() for Node's built-ins; an ES module has none of its own.
      banner: { js: "import { createRequire as __forecastCreateRequire } from 'node:module';\nconst require = __forecastCreateRequire(import.meta.url);" },
      sourcemap: true,
      sourcesContent: false,
      legalComments: 'none',
      logLevel: 'silent',
    });
    for (const w of built.warnings) log(`esbuild: ${w.text}${w.location ? ` (${w.location.file}:${w.location.line})` : ''}`);
    log(`bundled src/lambda/entry.ts into ${HANDLER_FILE} (${mb(statSync(handlerOut).size)})`);

    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; description?: string };
    await writeFile(join(stage, 'package.json'), JSON.stringify({ name: pkg.name, version: pkg.version, description: pkg.description, private: true }, null, 2) + '\n');

    // 2. What could not be bundled, with its run-time dependencies.
    const packages = dependencyClosure(EXTERNAL_PACKAGES);
    for (const dir of packages) await copyPackage(dir, join(stage, relative(ROOT, dir)));
    const names = packages.map((d) => packageName(d));
    log(`node_modules: ${names.join(', ')}`);
    const nativeAddon = inspectAddon(join(ROOT, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'));
    log(`native addon: ${nativeAddon.file}, ${nativeAddon.machine}, needs glibc ${nativeAddon.glibc ?? 'unknown'} (Lambda nodejs20.x: ${LAMBDA_GLIBC.join('.')})`);
    if (nativeAddon.machine !== 'x86_64') log(`note: deploy with architecture ${nativeAddon.machine === 'aarch64' ? 'arm64' : nativeAddon.machine}`);
    if (nativeAddon.glibc && compareVersion(nativeAddon.glibc, LAMBDA_GLIBC.join('.')) > 0)
      log(`warning: the native addon needs glibc ${nativeAddon.glibc}, newer than Lambda's ${LAMBDA_GLIBC.join('.')}: package on an older Linux`);

    // 3. The bundles, verified (checksums and their own evaluation) before they are shipped.
    const bundleDirs = options.bundleDirs?.length ? options.bundleDirs : [resolve(ROOT, DEFAULT_CONFIG.demoDir)];
    const models: string[] = [];
    for (const dir of bundleDirs) {
      const bundle = options.bundleDirs?.length ? await loadBundle(dir) : await ensureDemoBundle(dir);
      const target = join(stage, 'models', bundle.manifest.name, bundle.manifest.version);
      if (existsSync(target)) throw new Error(`two bundles are ${bundle.id}: ${dir} and an earlier --bundle`);
      await mkdir(target, { recursive: true });
      const listed = Object.keys((JSON.parse(readFileSync(join(dir, CHECKSUMS_FILE), 'utf8')) as { files: Record<string, string> }).files);
      for (const name of [CHECKSUMS_FILE, ...listed]) await copyFile(join(dir, name), join(target, name));
      models.push(bundle.id);
      log(`model: ${bundle.id} from ${dir}`);
    }

    // 4. The zip.
    const files = listFiles(stage);
    const entries = files.map((rel) => {
      const abs = join(stage, rel);
      return { name: rel.split(sep).join('/'), data: readFileSync(abs), executable: (statSync(abs).mode & 0o111) !== 0 };
    });
    const zip = writeZip(entries);
    const unzippedBytes = entries.reduce((s, e) => s + e.data.length, 0);
    await mkdir(dirname(outFile), { recursive: true });
    await writeFile(outFile, zip);
    log(`wrote ${relative(process.cwd(), outFile) || outFile}: ${mb(zip.length)} (${zip.length} bytes; limit ${mb(LAMBDA_ZIP_LIMIT_BYTES)}), ${entries.length} files, ${mb(unzippedBytes)} unzipped`);
    if (zip.length > LAMBDA_ZIP_LIMIT_BYTES)
      throw new Error(`${outFile} is ${mb(zip.length)} (${zip.length} bytes), over Lambda's ${mb(LAMBDA_ZIP_LIMIT_BYTES)} direct-upload limit: upload it through S3 or ship fewer bundles`);
    if (unzippedBytes > LAMBDA_UNZIPPED_LIMIT_BYTES)
      throw new Error(`the unzipped package is ${mb(unzippedBytes)}, over Lambda's ${mb(LAMBDA_UNZIPPED_LIMIT_BYTES)} limit`);
    return { zipFile: outFile, bytes: zip.length, unzippedBytes, entries: entries.map((e) => e.name), models, packages: names, nativeAddon, stageDir: options.stageDir ? stage : null };
  } finally {
    if (!options.stageDir) await rm(stage, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// node_modules

function packageName(dir: string): string {
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string }).name;
}

/** The folder Node would load `name` from when required inside `fromDir`. */
function resolvePackage(name: string, fromDir: string): string | null {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === ROOT || dirname(dir) === dir) return null;
  }
}

/** Package folders of `roots` and of their dependencies (optional ones when installed), depth first. */
function dependencyClosure(roots: readonly string[]): string[] {
  const seen = new Set<string>();
  const visit = (name: string, fromDir: string, optional: boolean) => {
    if (INSTALL_ONLY.has(name)) return;
    const dir = resolvePackage(name, fromDir);
    if (!dir) {
      if (optional) return;
      throw new Error(`${name} is not installed (needed from ${relative(ROOT, fromDir) || '.'}): run npm ci`);
    }
    if (seen.has(dir)) return;
    seen.add(dir);
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    for (const dep of Object.keys(manifest.dependencies ?? {})) visit(dep, dir, false);
    for (const dep of Object.keys(manifest.optionalDependencies ?? {})) visit(dep, dir, true);
  };
  for (const root of roots) visit(root, ROOT, false);
  return [...seen].sort();
}

/** Copies a package's run-time files; of a native addon, only its JS and the compiled `.node` files. */
async function copyPackage(from: string, to: string): Promise<void> {
  const native = existsSync(join(from, 'binding.gyp'));
  for (const rel of listFiles(from)) {
    const parts = rel.split(sep);
    if (parts.slice(0, -1).some((p) => SKIPPED_DIRS.has(p))) continue;
    if (native) {
      // Sources, intermediate objects and the bundled SQLite amalgamation are build inputs only.
      const keep = parts.length === 1 || parts[0] === 'lib' || (parts[0] === 'build' && parts[1] === 'Release' && parts.length === 3 && rel.endsWith('.node'));
      if (!keep || (parts.length === 1 && /\.(gyp|gypi)$/.test(rel))) continue;
      if (rel.endsWith(`test_extension.node`)) continue;
    }
    await mkdir(dirname(join(to, rel)), { recursive: true });
    await copyFile(join(from, rel), join(to, rel));
  }
}

/** Files under a folder, relative, sorted (byte order, so zips are reproducible). */
function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const abs = join(dir, entry.name);
      if (entry.isDirectory()) walk(abs);
      else if (entry.isFile()) out.push(relative(root, abs));
    }
  };
  walk(root);
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The CPU a shared object was built for and the newest glibc symbol version it needs. */
function inspectAddon(file: string): { file: string; machine: string; glibc: string | null } {
  const data = readFileSync(file);
  const machines: Record<number, string> = { 0x3e: 'x86_64', 0xb7: 'aarch64' };
  const isElf = data.readUInt32BE(0) === 0x7f454c46;
  const machine = isElf ? (machines[data.readUInt16LE(18)] ?? `ELF machine ${data.readUInt16LE(18)}`) : 'not an ELF file';
  let glibc: string | null = null;
  for (const m of data.toString('latin1').matchAll(/GLIBC_(\d+\.\d+(?:\.\d+)?)/g)) if (!glibc || compareVersion(m[1], glibc) > 0) glibc = m[1];
  return { file: relative(ROOT, file), machine, glibc };
}

function compareVersion(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// A minimal zip writer: deflate (or store when that is smaller), UTF-8 names, Unix modes, no zip64.

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** DOS date of 1980-01-01, 00:00: a fixed timestamp makes the zip depend on the contents only. */
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const DOS_TIME = 0;

export function writeZip(entries: readonly { name: string; data: Buffer; executable?: boolean }[]): Buffer {
  if (entries.length >= 0xffff) throw new Error(`${entries.length} files: more than a zip without zip64 holds`);
  const chunks: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const deflated = deflateRawSync(e.data, { level: 9 });
    const stored = deflated.length >= e.data.length;
    const body = stored ? e.data : deflated;
    const crc = crc32(e.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed: 2.0 (deflate)
    local.writeUInt16LE(0x0800, 6); // names are UTF-8
    local.writeUInt16LE(stored ? 0 : 8, 8);
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const header = Buffer.alloc(46);
    header.writeUInt32LE(0x02014b50, 0);
    header.writeUInt16LE((3 << 8) | 20, 4); // made by Unix, so the external attributes are Unix modes
    header.writeUInt16LE(20, 6);
    header.writeUInt16LE(0x0800, 8);
    header.writeUInt16LE(stored ? 0 : 8, 10);
    header.writeUInt16LE(DOS_TIME, 12);
    header.writeUInt16LE(DOS_DATE, 14);
    header.writeUInt32LE(crc, 16);
    header.writeUInt32LE(body.length, 20);
    header.writeUInt32LE(e.data.length, 24);
    header.writeUInt16LE(name.length, 28);
    // extra, comment, disk number, internal attributes: 0
    // Regular file, readable by everyone: Lambda runs the code as a user other than the file's owner.
    header.writeUInt32LE(((0o100000 | (e.executable ? 0o755 : 0o644)) << 16) >>> 0, 38);
    header.writeUInt32LE(offset, 42);
    chunks.push(local, name, body);
    central.push(header, name);
    offset += local.length + name.length + body.length;
    if (offset > 0xffffffff) throw new Error('the zip would exceed 4 GB, more than a zip without zip64 holds');
  }
  const centralSize = central.reduce((s, b) => s + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...chunks, ...central, end]);
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      bundle: { type: 'string', multiple: true },
      out: { type: 'string' },
      stage: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(
      'usage: npm run package:lambda -- [--bundle DIR ...] [--out FILE] [--stage DIR]\n\n' +
        '  --bundle DIR   a bundle folder to ship (repeatable; default: the demo bundle in .data/demo-bundle)\n' +
        '  --out FILE     the zip to write (default dist/lambda.zip)\n' +
        '  --stage DIR    assemble the tree here and keep it (default: a temporary folder)',
    );
    return;
  }
  const result = await packageLambda({ bundleDirs: values.bundle, outFile: values.out, stageDir: values.stage, log: (l) => console.log(l) });
  console.log(`\nLambda: runtime nodejs20.x, architecture ${result.nativeAddon.machine === 'aarch64' ? 'arm64' : 'x86_64'}, handler ${HANDLER_SETTING}; set API_KEYS (and DATABASE_URL for a durable history). See docs/deploy.md.`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    console.error(`error: ${(err as Error).message}`);
    process.exitCode = 1;
  });
}
