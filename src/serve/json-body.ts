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
import { DataError, ForecastError } from '../errors.js';

/** The one content type bodies are read as (a body sent without one is read as it too: ./app.ts). */
export const JSON_CONTENT_TYPE = 'application/json';

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

/**
 * What the scan expects next: a value (at the top, after ':', after ',' in an array), a value or
 * ']' (just after '['), a property name (after ',' in an object), a name or '}' (just after '{'),
 * or what follows a value (',' or the container's close; at the top, nothing).
 */
type Expect = 'value' | 'valueOrClose' | 'key' | 'keyOrClose' | 'afterValue';

const EXPECTED: Record<Exclude<Expect, 'afterValue'>, string> = {
  value: 'a value (object, array, string, number, true, false or null)',
  valueOrClose: "a value or ']'",
  key: 'a property name in double quotes',
  keyOrClose: "a property name in double quotes or '}'",
};

/** Where a JSON text goes wrong, what was found there and what would have been JSON. */
export interface JsonSyntaxProblem {
  /** Character offset of the first character that cannot continue a JSON text (its length if the text ends early). */
  offset: number;
  /** What is there, in the service's words ("unexpected end of JSON input", "unexpected character '}'"). */
  found: string;
  /** What JSON allows there, when that says more than the found text. */
  expected?: string;
}

/** A character as a message shows it: printable ASCII quoted, anything else by its code point (never more than one). */
function showChar(text: string, offset: number): string {
  const c = text.codePointAt(offset) ?? 0;
  return c > 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
}

const isWhitespace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isHex = (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);
const LITERALS: Record<number, string> = { 0x74: 'true', 0x66: 'false', 0x6e: 'null' };

/**
 * The first place `text` stops being JSON (RFC 8259, the grammar `JSON.parse` reads), or null
 * when it is JSON. Run only once `JSON.parse` has refused a body: V8 gives a position for some
 * mistakes but not for a truncated body or an unexpected token, and every answer must say where.
 * One pass, no recursion (an explicit stack of open containers), so linear whatever the body.
 */
export function findJsonSyntaxProblem(text: string): JsonSyntaxProblem | null {
  const n = text.length;
  const open: number[] = [];
  let expect: Expect = 'value';
  let i = 0;
  const at = (offset: number, expected: string): JsonSyntaxProblem =>
    offset >= n ? { offset: n, found: 'unexpected end of JSON input', expected } : { offset, found: `unexpected character ${showChar(text, offset)}`, expected };
  /** Reads the string starting at i (a '"'); returns a problem or null with i past its closing quote. */
  const string = (): JsonSyntaxProblem | null => {
    for (i++; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === QUOTE) {
        i++;
        return null;
      }
      if (c < 0x20) return { offset: i, found: `unescaped control character ${showChar(text, i)} in a string`, expected: 'an escape such as \\n or \\u0000' };
      if (c !== BACKSLASH) continue;
      i++;
      if (i >= n) break;
      const e = text.charCodeAt(i);
      if (e === 0x75) {
        for (let k = 0; k < 4; k++) {
          i++;
          if (i >= n || !isHex(text.charCodeAt(i))) return at(i, 'a hex digit (\\u takes four)');
        }
      } else if (!ESCAPES.has(e)) return { offset: i, found: `unknown escape ${showChar(text, i)} after '\\' in a string`, expected: 'one of \\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX' };
    }
    return at(n, "'\"' to close the string");
  };
  /** Reads the number starting at i; returns a problem or null with i past it. */
  const number = (): JsonSyntaxProblem | null => {
    if (text.charCodeAt(i) === 0x2d) i++;
    if (i >= n || !isDigit(text.charCodeAt(i))) return at(i, 'a digit');
    // A leading 0 stands alone: "01" is the number 0 followed by a stray 1, found by the caller.
    if (text.charCodeAt(i) === 0x30) i++;
    else while (i < n && isDigit(text.charCodeAt(i))) i++;
    if (i < n && text.charCodeAt(i) === 0x2e) {
      i++;
      if (i >= n || !isDigit(text.charCodeAt(i))) return at(i, "a digit after '.'");
      while (i < n && isDigit(text.charCodeAt(i))) i++;
    }
    if (i < n && (text.charCodeAt(i) === 0x65 || text.charCodeAt(i) === 0x45)) {
      i++;
      if (i < n && (text.charCodeAt(i) === 0x2b || text.charCodeAt(i) === 0x2d)) i++;
      if (i >= n || !isDigit(text.charCodeAt(i))) return at(i, 'a digit in the exponent');
      while (i < n && isDigit(text.charCodeAt(i))) i++;
    }
    return null;
  };
  for (;;) {
    while (i < n && isWhitespace(text.charCodeAt(i))) i++;
    const c = i < n ? text.charCodeAt(i) : -1;
    if (expect === 'afterValue') {
      const top = open[open.length - 1];
      if (top === undefined) return c === -1 ? null : { offset: i, found: `unexpected character ${showChar(text, i)} after the end of the JSON value` };
      const close = top === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET;
      if (c === COMMA) {
        expect = top === OPEN_BRACE ? 'key' : 'value';
        i++;
      } else if (c === close) {
        open.pop();
        i++;
      } else return at(i, top === OPEN_BRACE ? "',' or '}' after a property value" : "',' or ']' after an array element");
      continue;
    }
    if (expect === 'key' || expect === 'keyOrClose') {
      if (expect === 'keyOrClose' && c === CLOSE_BRACE) {
        open.pop();
        i++;
        expect = 'afterValue';
        continue;
      }
      if (c !== QUOTE) return at(i, EXPECTED[expect]);
      const bad = string();
      if (bad) return bad;
      while (i < n && isWhitespace(text.charCodeAt(i))) i++;
      if (i >= n || text.charCodeAt(i) !== 0x3a) return at(i, "':' after the property name");
      i++;
      expect = 'value';
      continue;
    }
    if (expect === 'valueOrClose' && c === CLOSE_BRACKET) {
      open.pop();
      i++;
      expect = 'afterValue';
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      open.push(c);
      i++;
      expect = c === OPEN_BRACE ? 'keyOrClose' : 'valueOrClose';
      continue;
    }
    let bad: JsonSyntaxProblem | null;
    if (c === QUOTE) bad = string();
    else if (c === 0x2d || isDigit(c)) bad = number();
    else if (LITERALS[c] !== undefined) {
      const word = LITERALS[c];
      let k = 0;
      while (k < word.length && i + k < n && text.charCodeAt(i + k) === word.charCodeAt(k)) k++;
      bad = k === word.length ? null : at(i + k, `'${word}'`);
      i += k;
    } else bad = at(i, EXPECTED[expect]);
    if (bad) return bad;
    expect = 'afterValue';
  }
}

/** JSON.parse's SyntaxError as the service's 400, saying where the body stops being JSON and why. */
function invalidJson(text: string, err: Error): ForecastError {
  // JSON.parse and the scan read one grammar; were they ever to differ, V8's words (short) rather than none.
  const where: JsonSyntaxProblem = findJsonSyntaxProblem(text) ?? { offset: text.length, found: err.message.slice(0, 80) };
  const { offset, found, expected } = where;
  const { line, column } = lineColumn(text, offset);
  const message = `body is not valid JSON: ${found} at line ${line}, column ${column} (character ${offset})${expected ? `, expected ${expected}` : ''}`;
  return new ForecastError(message, 400, 'invalid_json', { field: 'body', line, column, offset });
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
