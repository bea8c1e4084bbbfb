/**
 * Streaming indicator kernels: each consumes one value per bar with constant (amortised) work and
 * returns the indicator for that bar. The arithmetic of the pandas ports is pandas' own, operation
 * for operation, because the reference features must match the reference pipeline bit for bit
 * (FEATURES.md §3b); their NaN handling is pandas' too (inputs that are NaN are skipped, as pandas'
 * `min_periods` counting does).
 */

/** C's `signbit`: pandas' rolling mean counts negative inputs this way (-0 included). */
function signbit(x: number): boolean {
  return x < 0 || (x === 0 && 1 / x < 0);
}

/**
 * pandas' `rolling(window).mean()` before 1.2 (`roll_mean`, FEATURES.md §3b.3): one running sum
 * from the first value, never recomputed: add the new value, then subtract the one leaving the
 * window. A mean below 0 over a window without negative values is 0 (and above 0 over an all-negative
 * window is 0), as pandas clamps it. NaN until `window` non-NaN values are in the window.
 */
export class RollingMean {
  private readonly ring: Float64Array;
  private next = 0;
  private seen = 0;
  private sum = 0;
  private nobs = 0;
  private negatives = 0;

  constructor(private readonly window: number) {
    this.ring = new Float64Array(window);
  }

  // State after the value last given to `peek`, committed by `push`.
  private nextSum = 0;
  private nextNobs = 0;
  private nextNegatives = 0;

  push(x: number): number {
    const mean = this.peek(x);
    this.sum = this.nextSum;
    this.nobs = this.nextNobs;
    this.negatives = this.nextNegatives;
    if (this.seen < this.window) this.seen++;
    this.ring[this.next] = x;
    this.next = this.next + 1 === this.window ? 0 : this.next + 1;
    return mean;
  }

  /** What `push(x)` would return, without consuming `x` (a provisional value). */
  peek(x: number): number {
    let sum = this.sum;
    let nobs = this.nobs;
    let negatives = this.negatives;
    if (x === x) {
      nobs++;
      sum += x;
      if (signbit(x)) negatives++;
    }
    if (this.seen >= this.window) {
      const old = this.ring[this.next];
      if (old === old) {
        nobs--;
        sum -= old;
        if (signbit(old)) negatives--;
      }
    }
    this.nextSum = sum;
    this.nextNobs = nobs;
    this.nextNegatives = negatives;
    return this.mean(sum, nobs, negatives);
  }

  private mean(sum: number, nobs: number, negatives: number): number {
    if (nobs < this.window) return Number.NaN;
    const result = sum / nobs;
    if (negatives === 0 && result < 0) return 0;
    if (negatives === nobs && result > 0) return 0;
    return result;
  }
}

/**
 * pandas' `rolling(window).std()` before 1.2 (`roll_var` with ddof 1, then `sqrt`; FEATURES.md
 * §3b.4): Welford's update over the first window, then one combined add-and-remove update per value.
 * NaN until `window` non-NaN values are in the window.
 */
export class RollingStd {
  private readonly ring: Float64Array;
  private next = 0;
  private seen = 0;
  private nobs = 0;
  private mean = 0;
  private ssq = 0;

  constructor(private readonly window: number) {
    this.ring = new Float64Array(window);
  }

  push(x: number): number {
    if (this.seen < this.window) {
      this.add(x);
      this.seen++;
    } else {
      const prev = this.ring[this.next];
      if (x === x) {
        if (prev === prev) {
          const nobs = this.nobs;
          const delta = x - prev;
          const meanOld = this.mean;
          this.mean += delta / nobs;
          this.ssq += (((nobs - 1) * x + (nobs + 1) * prev - 2 * nobs * meanOld) * delta) / nobs;
        } else {
          this.add(x);
        }
      } else if (prev === prev) {
        this.remove(prev);
      }
    }
    this.ring[this.next] = x;
    this.next = this.next + 1 === this.window ? 0 : this.next + 1;
    const nobs = this.nobs;
    if (nobs < this.window || nobs <= 1) return Number.NaN;
    const variance = this.ssq / (nobs - 1);
    return Math.sqrt(variance < 0 ? 0 : variance);
  }

  private add(x: number): void {
    if (x !== x) return;
    const nobs = ++this.nobs;
    const delta = x - this.mean;
    this.mean += delta / nobs;
    // pandas writes `(nobs - 1) * delta ** 2`: the square first.
    this.ssq += ((nobs - 1) * (delta * delta)) / nobs;
  }

  private remove(x: number): void {
    const nobs = --this.nobs;
    if (nobs) {
      const delta = x - this.mean;
      this.mean -= delta / nobs;
      this.ssq -= ((nobs + 1) * (delta * delta)) / nobs;
    } else {
      this.mean = 0;
      this.ssq = 0;
    }
  }
}

/**
 * pandas' `ewm(com=c, adjust=True).mean()` (`ewma`, FEATURES.md §3b.2) as its recurrence, not the
 * closed form: `w = (ow * w + x) / (ow + 1)` with the old weight `ow` decaying by `1 - alpha`,
 * `alpha = 1 / (1 + c)`. A NaN input leaves the average as it is but still decays the old weight
 * (`ignore_na=False`); values before the first non-NaN input are NaN.
 */
export class Ewm {
  private readonly decay: number;
  private average = Number.NaN;
  private oldWeight = 1;
  private started = false;

  constructor(centerOfMass: number) {
    this.decay = 1 - 1 / (1 + centerOfMass);
  }

  push(x: number): number {
    if (!this.started) {
      this.started = true;
      this.average = x;
      return x;
    }
    const average = this.average;
    if (average === average) {
      this.oldWeight *= this.decay;
      if (x === x) {
        // pandas skips the update when equal, "to avoid numerical errors on constant series".
        if (average !== x) this.average = (this.oldWeight * average + x) / (this.oldWeight + 1);
        this.oldWeight += 1;
      }
    } else if (x === x) {
      this.average = x;
    }
    return this.average;
  }
}

/**
 * Maximum of the last `window` values with a monotonic deque (amortised constant work): exact, so
 * it equals pandas' `rolling(window).max()`. NaN until `window` values have been pushed. Inputs must
 * not be NaN (bars are validated). For a minimum, push `-x` and negate the result (exact).
 */
export class RollingMax {
  private readonly values: Float64Array;
  private readonly positions: Float64Array;
  private head = 0;
  private size = 0;
  private count = 0;

  constructor(private readonly window: number) {
    this.values = new Float64Array(window);
    this.positions = new Float64Array(window);
  }

  push(x: number): number {
    const w = this.window;
    const position = this.count++;
    // Candidates are kept in increasing position order, so only the front can leave the window.
    if (this.size > 0 && this.positions[this.head] <= position - w) {
      this.head = this.head + 1 === w ? 0 : this.head + 1;
      this.size--;
    }
    // A value no larger than the new one can never be the maximum again.
    while (this.size > 0) {
      let back = this.head + this.size - 1;
      if (back >= w) back -= w;
      if (this.values[back] > x) break;
      this.size--;
    }
    let slot = this.head + this.size;
    if (slot >= w) slot -= w;
    this.values[slot] = x;
    this.positions[slot] = position;
    this.size++;
    return this.count >= w ? this.values[this.head] : Number.NaN;
  }
}
