/**
 * pandas' legacy CSV number parser (`xstrtod`, the default before pandas 1.3), hand-written because
 * it is part of the reference feature set's definition (FEATURES.md §3b.1): it is not correctly
 * rounded, and the reference model was trained on the numbers it produced.
 *
 * It accumulates every digit into one integer-valued double (`number * 10 + digit`), then applies
 * the decimal exponent by binary exponentiation over 10, 100, 10^4, 10^8, ... dividing (negative
 * exponent) or multiplying (positive). Returns NaN for text that is not a plain decimal number.
 */
export function parseLegacyFloat(text: string): number {
  const s = text.trim();
  const len = s.length;
  let p = 0;
  let negative = false;
  if (p < len && (s.charCodeAt(p) === 45 /* - */ || s.charCodeAt(p) === 43) /* + */) {
    negative = s.charCodeAt(p) === 45;
    p++;
  }
  let number = 0;
  let exponent = 0;
  let numDigits = 0;
  let c = s.charCodeAt(p);
  while (c >= 48 && c <= 57) {
    number = number * 10 + (c - 48);
    numDigits++;
    c = s.charCodeAt(++p);
  }
  if (c === 46 /* . */) {
    c = s.charCodeAt(++p);
    let numDecimals = 0;
    while (c >= 48 && c <= 57) {
      number = number * 10 + (c - 48);
      numDigits++;
      numDecimals++;
      c = s.charCodeAt(++p);
    }
    exponent -= numDecimals;
  }
  if (numDigits === 0) return Number.NaN;
  if (negative) number = -number;
  if (c === 101 /* e */ || c === 69 /* E */) {
    c = s.charCodeAt(++p);
    let expNegative = false;
    if (c === 45 || c === 43) {
      expNegative = c === 45;
      c = s.charCodeAt(++p);
    }
    let n = 0;
    let expDigits = 0;
    while (c >= 48 && c <= 57) {
      n = n * 10 + (c - 48);
      expDigits++;
      c = s.charCodeAt(++p);
    }
    if (expDigits === 0) return Number.NaN;
    exponent += expNegative ? -n : n;
  }
  if (p !== len) return Number.NaN;
  // DBL_MIN_EXP / DBL_MAX_EXP bounds of the C original.
  if (exponent < -1021 || exponent > 1024) return negative ? -Infinity : Infinity;
  let p10 = 10;
  let n = Math.abs(exponent);
  while (n) {
    if (n & 1) {
      if (exponent < 0) number /= p10;
      else number *= p10;
    }
    n >>= 1;
    p10 *= p10;
  }
  return number;
}
