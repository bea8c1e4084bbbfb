/** Shared reading and parsing for the deployment-file tests. */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DockerfileParser,
  type Env,
  type Instruction,
  type JSONInstruction,
  type ModifiableInstruction,
} from 'dockerfile-ast';
import { parseAllDocuments } from 'yaml';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function readRepoFile(path: string): string {
  return readFileSync(join(ROOT, path), 'utf8');
}

/** Every file under a repository folder, as repository-relative paths with `/`. */
export function listRepoFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string): void => {
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      const p = join(abs, entry.name);
      if (entry.isDirectory()) walk(p);
      else out.push(relative(ROOT, p).split('\\').join('/'));
    }
  };
  walk(join(ROOT, dir));
  return out.sort();
}

/** Every YAML document in a file, as plain objects; parse errors fail loudly. */
export function readYamlDocuments(path: string): unknown[] {
  const docs = parseAllDocuments(readRepoFile(path));
  return docs
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors.map((e) => e.message).join('; ')}`);
      return doc.toJS() as unknown;
    })
    .filter((doc) => doc !== null && doc !== undefined);
}

// ---------------------------------------------------------------------------------------
// Dockerfile

export interface DockerInstruction {
  keyword: string;
  /** The arguments as written, continuation lines joined. */
  args: string;
  /** Exec-form (JSON) arguments, when the instruction has them. */
  json: string[] | null;
  /** `--name=value` flags (COPY --from, HEALTHCHECK --interval, ...). */
  flags: Record<string, string | null>;
  /** ENV's variables. */
  env: Record<string, string>;
  line: number;
}

export interface DockerStage {
  name: string | null;
  image: string;
  instructions: DockerInstruction[];
}

export function parseDockerfile(content: string): { stages: DockerStage[]; preamble: DockerInstruction[] } {
  const stages: DockerStage[] = [];
  const preamble: DockerInstruction[] = [];
  for (const instruction of DockerfileParser.parse(content).getInstructions()) {
    const parsed = toInstruction(instruction);
    if (parsed.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(parsed.args);
      if (!m) throw new Error(`cannot read FROM on line ${parsed.line}: ${parsed.args}`);
      stages.push({ image: m[1], name: m[2] ?? null, instructions: [] });
    } else if (stages.length === 0) {
      preamble.push(parsed);
    } else {
      stages[stages.length - 1].instructions.push(parsed);
    }
  }
  return { stages, preamble };
}

function toInstruction(instruction: Instruction): DockerInstruction {
  const keyword = instruction.getKeyword().toUpperCase();
  const args = instruction
    .getArguments()
    .map((a) => a.getValue())
    .join(' ');
  let json: string[] | null = null;
  if ('getJSONStrings' in instruction) {
    const strings = (instruction as JSONInstruction).getJSONStrings();
    if (strings.length > 0) json = strings.map((s) => s.getJSONValue());
  }
  const flags: Record<string, string | null> = {};
  if ('getFlags' in instruction) {
    for (const flag of (instruction as ModifiableInstruction).getFlags()) flags[flag.getName()] = flag.getValue();
  }
  const env: Record<string, string> = {};
  if (keyword === 'ENV') {
    for (const property of (instruction as Env).getProperties()) env[property.getName()] = property.getValue() ?? '';
  }
  return { keyword, args, json, flags, env, line: instruction.getRange().start.line + 1 };
}

/** Exec-form arguments of HEALTHCHECK CMD [...]: dockerfile-ast keeps them in the arguments. */
export function healthcheckCommand(instruction: DockerInstruction): string[] {
  const m = /^CMD\s+(\[.*\])$/s.exec(instruction.args.replace(/^(?:--\S+\s+)*/, ''));
  if (!m) throw new Error(`HEALTHCHECK on line ${instruction.line} is not in exec form: ${instruction.args}`);
  return JSON.parse(m[1]) as string[];
}

// ---------------------------------------------------------------------------------------
// .dockerignore, with Docker's semantics: patterns in order, the last one matching a path
// (or any of its parent folders) decides; `!` re-includes; `*` and `?` stay within one path
// segment, `**` spans any number of them.

export function dockerignoreIncludes(ignoreFile: string): (path: string) => boolean {
  const rules = ignoreFile
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negate = line.startsWith('!');
      const pattern = (negate ? line.slice(1) : line).trim().replace(/^\/+/, '').replace(/\/+$/, '');
      return { negate, regex: globToRegExp(pattern) };
    });
  return (path: string) => {
    const parts = path.split('/');
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const rule of rules) {
      if (candidates.some((c) => rule.regex.test(c))) excluded = !rule.negate;
    }
    return !excluded;
  };
}

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*' && pattern[i + 1] === '*') {
      re += '.*';
      i++;
      if (pattern[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

// ---------------------------------------------------------------------------------------
// The service's configuration

/**
 * Environment variables the service reads: every upper-case string literal in src/config.ts,
 * the one module that reads the environment (STYLE.md), plus those Node itself reads.
 */
export function serviceEnvVars(): Set<string> {
  const source = readRepoFile('src/config.ts');
  const names = new Set(['NODE_ENV', 'NODE_OPTIONS']);
  for (const m of source.matchAll(/['"`]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)['"`]/g)) names.add(m[1]);
  for (const m of source.matchAll(/\benv\.([A-Z][A-Z0-9_]*)/g)) names.add(m[1]);
  return names;
}

/** The container's start command, as the Dockerfile's final CMD gives it. */
export function dockerStartCommand(): string[] {
  const { stages } = parseDockerfile(readRepoFile('Dockerfile'));
  const cmds = stages[stages.length - 1].instructions.filter((i) => i.keyword === 'CMD');
  const cmd = cmds[cmds.length - 1];
  if (!cmd?.json) throw new Error('the final stage has no exec-form CMD');
  return cmd.json;
}
