/**
 * scikit-learn 1.2.1's `sort(Xf, samples, n)` (sklearn/tree/_splitter.pyx): introsort with a
 * median-of-three pivot, three-way partition and a heapsort fallback, moving `samples` along.
 * It is unstable, and the order it leaves equal keys in decides the order in which targets are
 * summed later, so it is reproduced exactly (FEATURES.md §7 "Sort").
 */

/** Sort `Xf[start, start + n)` ascending, permuting `samples` identically. */
export function introsort(Xf: Float32Array, samples: Int32Array, start: number, n: number): void {
  if (n <= 1) return;
  // 2 * floor(log2 n): scikit-learn's `log` is ln(x) / ln(2) truncated, equal to this for every n.
  introsortRange(Xf, samples, start, n, 2 * (31 - Math.clz32(n)), null);
}

/**
 * The already sorted order of the same keys, used to finish tie-free subarrays without sorting.
 * Introsort's subarray `[b, b + n)` always holds exactly the elements whose sorted positions are
 * `[b, b + n)` (partitions never split a group of equal keys), and where those keys are all
 * distinct the arrangement introsort would end with is the unique sorted one. So such a subarray
 * is copied from `sortedVal` / `sortedIdx` instead of being sorted: the result is the same, and
 * only the parts that hold ties are partitioned for real.
 */
export interface SortedGuide {
  sortedVal: Float32Array;
  sortedIdx: Int32Array;
  /** Position p of Xf corresponds to `sortedVal[offset + p]`. */
  offset: number;
  /** `tiePrefix[p]`: the number of q in (start, p] with sortedVal[offset + q] === sortedVal[offset + q - 1]. */
  tiePrefix: Int32Array;
}

/** `introsort` with tie-free subarrays finished from `guide` (identical output, less work). */
export function introsortGuided(Xf: Float32Array, samples: Int32Array, start: number, n: number, guide: SortedGuide): void {
  if (n <= 1) return;
  introsortRange(Xf, samples, start, n, 2 * (31 - Math.clz32(n)), guide);
}

function swap(Xf: Float32Array, samples: Int32Array, i: number, j: number): void {
  const v = Xf[i];
  Xf[i] = Xf[j];
  Xf[j] = v;
  const s = samples[i];
  samples[i] = samples[j];
  samples[j] = s;
}

function median3(Xf: Float32Array, b: number, n: number): number {
  const a = Xf[b];
  const m = Xf[b + (n >>> 1)];
  const c = Xf[b + n - 1];
  if (a < m) {
    if (m < c) return m;
    return a < c ? c : a;
  }
  if (m < c) return a < c ? a : c;
  return m;
}

function introsortRange(Xf: Float32Array, samples: Int32Array, b: number, n: number, maxd: number, guide: SortedGuide | null): void {
  while (n > 1) {
    if (guide !== null && guide.tiePrefix[b + n - 1] === guide.tiePrefix[b]) {
      const from = guide.offset + b;
      Xf.set(guide.sortedVal.subarray(from, from + n), b);
      samples.set(guide.sortedIdx.subarray(from, from + n), b);
      return;
    }
    if (maxd <= 0) {
      heapsort(Xf, samples, b, n);
      return;
    }
    maxd--;
    const pivot = median3(Xf, b, n);
    let i = b;
    let l = b;
    let r = b + n;
    while (i < r) {
      const v = Xf[i];
      if (v < pivot) {
        swap(Xf, samples, i, l);
        i++;
        l++;
      } else if (v > pivot) {
        r--;
        swap(Xf, samples, i, r);
      } else {
        i++;
      }
    }
    introsortRange(Xf, samples, b, l - b, maxd, guide);
    n -= r - b;
    b = r;
  }
}

function siftDown(Xf: Float32Array, samples: Int32Array, b: number, start: number, end: number): void {
  let root = start;
  for (;;) {
    const child = root * 2 + 1;
    let maxind = root;
    if (child < end && Xf[b + maxind] < Xf[b + child]) maxind = child;
    if (child + 1 < end && Xf[b + maxind] < Xf[b + child + 1]) maxind = child + 1;
    if (maxind === root) return;
    swap(Xf, samples, b + root, b + maxind);
    root = maxind;
  }
}

function heapsort(Xf: Float32Array, samples: Int32Array, b: number, n: number): void {
  let start = Math.trunc((n - 2) / 2);
  for (;;) {
    siftDown(Xf, samples, b, start, n);
    if (start === 0) break;
    start--;
  }
  for (let end = n - 1; end > 0; end--) {
    swap(Xf, samples, b, b + end);
    siftDown(Xf, samples, b, 0, end);
  }
}
