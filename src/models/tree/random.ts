/**
 * The random numbers of scikit-learn's tree splitter (FEATURES.md §7 "Random numbers").
 *
 * scikit-learn seeds a numpy `RandomState` (MT19937) with `random_state`, draws one
 * `randint(0, RAND_R_MAX)` as the splitter's 32-bit state, then draws every feature index with
 * its own xorshift `rand_r`. Using `random_state` directly as that state grows a different tree.
 */

const RAND_R_MAX = 0x7fffffff;

/** numpy's `RandomState(seed).randint(0, RAND_R_MAX)`: MT19937 `init_genrand`, masked rejection. */
export function splitterSeed(randomState: number): number {
  if (!Number.isInteger(randomState) || randomState < 0 || randomState > 0xffffffff) {
    throw new RangeError(`randomState must be an integer in [0, 2^32 - 1], got ${randomState}`);
  }
  const mt = new Uint32Array(624);
  mt[0] = randomState >>> 0;
  for (let i = 1; i < 624; i++) {
    const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
    mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
  }
  let index = 624;
  const next = (): number => {
    if (index >= 624) {
      for (let k = 0; k < 624; k++) {
        const yk = (mt[k] & 0x80000000) | (mt[(k + 1) % 624] & 0x7fffffff);
        mt[k] = mt[(k + 397) % 624] ^ (yk >>> 1) ^ (yk & 1 ? 0x9908b0df : 0);
      }
      index = 0;
    }
    let v = mt[index++];
    v ^= v >>> 11;
    v ^= (v << 7) & 0x9d2c5680;
    v ^= (v << 15) & 0xefc60000;
    v ^= v >>> 18;
    return v >>> 0;
  };
  // randint(0, RAND_R_MAX): range RAND_R_MAX - 1 = 0x7FFFFFFE, mask 0x7FFFFFFF, redraw above the range.
  let draw: number;
  do draw = next() & 0x7fffffff;
  while (draw > RAND_R_MAX - 1);
  return draw;
}

/** scikit-learn's `our_rand_r`: 32-bit xorshift, 0 replaced by 1, result modulo 2^31. */
export class RandR {
  state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    let s = this.state;
    if (s === 0) s = 1;
    s = (s ^ (s << 13)) >>> 0;
    s = (s ^ (s >>> 17)) >>> 0;
    s = (s ^ (s << 5)) >>> 0;
    this.state = s;
    return s & 0x7fffffff;
  }

  /** `rand_int(low, high) = low + rand_r() % (high - low)`. */
  int(low: number, high: number): number {
    return low + (this.next() % (high - low));
  }
}
