/**
 * The service's JSON body parser. Hand-written around `JSON.parse` because fastify's default
 * (secure-json-parse) walks every node of a body that mentions `__proto__` or `constructor` to
 * strip them, and `JSON.parse` itself takes ~100 ms on a 1 MiB body of nested brackets: both keep
 * the event loop busy far longer than the request's size justifies. One linear pre-scan bounds
 * nesting depth and the members of any one object or array before `JSON.parse` runs.
 *
 * No prototype stripping is needed: `JSON.parse` makes `__proto__` an ordinary own property (it
 * never sets a prototype), and the decoders read own keys only, against fixed names.
 */
import { DataError } from '../errors.js';

/** Deepest nesting any protocol needs (OIP tensors nest as deep as their shape, MLflow params a little). */
export const MAX_JSON_DEPTH = 32;
/** Most members of one object (arrays are bounded by the body size and the decoders' own limits). */
export const MAX_OBJECT_MEMBERS = 1024;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const COMMA = 0x2c;
/** 1 for the ASCII characters the scan acts on; everything else (and all of non-ASCII) is skipped. */
const STRUCTURAL = new Uint8Array(128);
for (const c of [QUOTE, OPEN_BRACKET, CLOSE_BRACKET, OPEN_BRACE, CLOSE_BRACE, COMMA]) STRUCTURAL[c] = 1;

/** Line and column (1-based) of a character offset, for messages. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset && i < text.length; i++)
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      start = i + 1;
    }
  return { line, column: offset - start + 1 };
}

function tooComplex(text: string, offset: number, what: string): DataError {
  const { line, column } = lineColumn(text, offset);
  return new DataError(`body is too complex at line ${line}, column ${column} (character ${offset}): ${what}`, { line, field: 'body' }, 400, 'too_complex');
}

/**
 * Refuses nesting deeper than `maxDepth` and objects with more than `maxMembers` members, in one
 * pass over the text (strings skipped, escapes honoured). Malformed JSON is left to `JSON.parse`.
 */
export function checkJsonComplexity(text: string, maxDepth = MAX_JSON_DEPTH, maxMembers = MAX_OBJECT_MEMBERS): void {
  // Members counted per open object: commas seen at its own level.
  const members: number[] = [];
  const isObject: boolean[] = [];
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    // Most characters of a bar table are digits and commas inside arrays: one table lookup skips them.
    if (c < 128 && STRUCTURAL[c] === 0) continue;
    if (c === QUOTE) {
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === BACKSLASH) i++;
        else if (d === QUOTE) break;
      }
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > maxDepth) throw tooComplex(text, i, `nested deeper than ${maxDepth} levels`);
      members[depth] = 0;
      isObject[depth] = c === OPEN_BRACE;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      if (depth > 0) depth--;
    } else if (c === COMMA && depth > 0 && isObject[depth] && ++members[depth] >= maxMembers) {
      throw tooComplex(text, i, `an object with more than ${maxMembers} members`);
    }
  }
}

/** JSON.parse's SyntaxError as the service's 400, with where it failed when the engine says. */
function invalidJson(text: string, err: Error): DataError {
  const m = /position (\d+)/.exec(err.message);
  if (m) {
    const offset = Number(m[1]);
    const { line, column } = lineColumn(text, offset);
    return new DataError(`body is not valid JSON: ${err.message.replace(/ in JSON at position \d+.*$/, '')} at line ${line}, column ${column} (character ${offset})`, { line, field: 'body' }, 400, 'invalid_json');
  }
  // V8 quotes a few characters of the body here ("Unexpected token 'o', "not json" is not valid JSON"): name the token only.
  const token = /^Unexpected token '(.{1,4})'/u.exec(err.message);
  const what = token ? `unexpected character '${token[1]}'` : err.message.slice(0, 80);
  return new DataError(`body is not valid JSON: ${what}`, { field: 'body' }, 400, 'invalid_json');
}

/** fastify content-type parser (parseAs: 'string'). */
export function parseJsonBody(_request: unknown, body: string | Buffer, done: (err: Error | null, value?: unknown) => void): void {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  if (text.length === 0 || /^\s*$/.test(text)) {
    done(new DataError('body is empty: send a JSON document', { field: 'body' }, 400, 'empty_body'));
    return;
  }
  try {
    checkJsonComplexity(text);
  } catch (err) {
    done(err as Error);
    return;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    done(invalidJson(text, err as Error));
    return;
  }
  done(null, value);
}
