/**
 * Correctly rounded decimal → double for short decimals, read straight from a line of text with no
 * substring: the bundle's history.csv (a million lines at a start of a long-history model) spends
 * most of its reading time making one string per cell for `Number` to parse.
 *
 * Hand-written because it must give `Number(text)` to the bit, which no CSV library promises: it
 * takes only Clinger's fast path (W. D. Clinger, "How to read floating point numbers accurately",
 * 1990), where the result is provably the correctly rounded value: a significand of at most 15
 * digits is an exact double, and so is 10^k for k <= 22, so `m * 10^k` or `m / 10^k` is one IEEE
 * operation on exact operands, rounded once. Anything else (more digits, a larger exponent, text
 * outside the plain decimal grammar) returns NaN, and the caller parses that cell the general way.
 */

const POW10: readonly number[] = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));
const ZERO = 0x30;
const NINE = 0x39;
const DOT = 0x2e;
const PLUS = 0x2b;
const MINUS = 0x2d;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
/** Significant digits an exact double always holds (10^15 < 2^53). */
const MAX_DIGITS = 15;

/**
 * The double `text.slice(start, end)` names, if it is a plain decimal
 * (`[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?`) within the fast path; NaN otherwise (not an error: the
 * caller falls back to the general parser, which also reports malformed text).
 */
export function fastDecimal(text: string, start: number, end: number): number {
  let i = start;
  if (i >= end) return Number.NaN;
  let negative = false;
  let c = text.charCodeAt(i);
  if (c === PLUS || c === MINUS) {
    negative = c === MINUS;
    if (++i >= end) return Number.NaN;
    c = text.charCodeAt(i);
  }
  let mantissa = 0;
  let digits = 0; // significant digits taken (leading zeros are not significant)
  let fraction = 0; // digits after the point
  let seen = 0; // digits of any kind, before and after the point
  let point = false;
  for (; i < end; i++) {
    c = text.charCodeAt(i);
    if (c === DOT && !point) {
      point = true;
      continue;
    }
    if (c < ZERO || c > NINE) break;
    if (mantissa !== 0 || c !== ZERO) {
      if (++digits > MAX_DIGITS) return Number.NaN;
      mantissa = mantissa * 10 + (c - ZERO);
    }
    if (point) fraction++;
    seen++;
  }
  if (seen === 0) return Number.NaN;
  let exponent = 0;
  if (i < end && (c === LOWER_E || c === UPPER_E)) {
    if (++i >= end) return Number.NaN;
    c = text.charCodeAt(i);
    let expNegative = false;
    if (c === PLUS || c === MINUS) {
      expNegative = c === MINUS;
      if (++i >= end) return Number.NaN;
    }
    let expDigits = 0;
    while (i < end && (c = text.charCodeAt(i)) >= ZERO && c <= NINE) {
      // Bounded: beyond the fast path's range long before it could lose precision.
      if (exponent < 10_000) exponent = exponent * 10 + (c - ZERO);
      expDigits++;
      i++;
    }
    if (expDigits === 0) return Number.NaN;
    if (expNegative) exponent = -exponent;
  }
  if (i !== end) return Number.NaN;
  const scale = exponent - fraction;
  let value: number;
  if (mantissa === 0) value = 0;
  else if (scale >= 0 && scale <= 22) value = mantissa * POW10[scale];
  else if (scale < 0 && scale >= -22) value = mantissa / POW10[-scale];
  else return Number.NaN;
  return negative ? -value : value;
}
