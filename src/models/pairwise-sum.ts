/**
 * numpy's pairwise summation (`pairwise_sum` in numpy/core/src/umath/loops_utils.h), hand-written
 * because StandardScaler's mean and variance must equal scikit-learn's bit for bit
 * (FEATURES.md §3b.5): the order of additions decides the last bits.
 *
 * `at(i)` gives the i-th addend; sums `at(start) .. at(start + n - 1)`.
 */
export function pairwiseSum(at: (i: number) => number, start: number, n: number): number {
  if (n < 8) {
    let s = 0.0;
    for (let i = 0; i < n; i++) s += at(start + i);
    return s;
  }
  if (n <= 128) {
    let r0 = at(start), r1 = at(start + 1), r2 = at(start + 2), r3 = at(start + 3);
    let r4 = at(start + 4), r5 = at(start + 5), r6 = at(start + 6), r7 = at(start + 7);
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      r0 += at(start + i);
      r1 += at(start + i + 1);
      r2 += at(start + i + 2);
      r3 += at(start + i + 3);
      r4 += at(start + i + 4);
      r5 += at(start + i + 5);
      r6 += at(start + i + 6);
      r7 += at(start + i + 7);
    }
    let s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
    for (; i < n; i++) s += at(start + i);
    return s;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(at, start, n2) + pairwiseSum(at, start + n2, n - n2);
}
