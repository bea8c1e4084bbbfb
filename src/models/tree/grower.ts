/**
 * The fitting engine of DecisionTreeRegressor: scikit-learn 1.2.1's BestSplitter, squared-error
 * criterion and depth-first / best-first builders, reproduced operation by operation so the
 * grown tree is identical bit for bit (FEATURES.md §7), but without sorting every feature at
 * every node.
 *
 * scikit-learn copies each candidate feature's values for the node into `Xf` and introsorts them,
 * moving `samples` along, so `samples` ends each node's search in the order the last sort left
 * it; the partition step starts from that order, and it decides the summation order of every
 * later node. Here:
 * - every feature is sorted once (`sortedIdx` / `sortedVal` / `sortedY`, one segment per feature,
 *   stably partitioned at each split so that a node's range holds its samples in key order);
 * - where a node's keys are strictly increasing, the sorted order is unique, hence introsort's,
 *   whatever order `samples` was in: the segment is used as is (`curSorted` names it; `samples`
 *   is written only when something reads it);
 * - where keys tie, the order introsort leaves equal keys in depends on its input, so the real
 *   introsort runs on the node's values in the current sample order (`introsortGuided` only skips
 *   the subarrays without ties, whose result is known). Such a sort is needed only if its scan
 *   could beat the best split so far (`cannotImprove` decides with a rigorous rounding bound) or
 *   if a later sort or the partition reads the order it leaves; otherwise it is queued in
 *   `pending` and run only when needed, or dropped when a tie-free sort makes it irrelevant.
 */
import type { TreeState } from '../types.js';
import { FrontierRecord, popFrontier, pushFrontier } from './frontier.js';
import { SortedGuide, introsortGuided } from './introsort.js';
import { RandR, splitterSeed } from './random.js';

/** numpy's float64 machine epsilon, scikit-learn's tolerance for a zero impurity. */
const EPSILON = 2.220446049250313e-16;
/** scikit-learn's FEATURE_THRESHOLD, a float32 constant added in float32 arithmetic. */
const FEATURE_THRESHOLD = Math.fround(1e-7);
/** `np.iinfo(np.int32).max`: scikit-learn's max_depth when it is None. */
export const INT32_MAX = 2147483647;

export type ThresholdRule = 'modern' | 'sklearn-0.19';

export interface GrowOptions {
  maxDepth: number;
  minSamplesSplit: number;
  minSamplesLeaf: number;
  /** -1: depth-first; otherwise best-first with this many leaves at most. */
  maxLeafNodes: number;
  randomState: number;
  thresholdRule: ThresholdRule;
}

/** The grown tree's node arrays: a TreeState without the fields the regressor adds. */
export type GrownTree = Omit<TreeState, 'kind' | 'nFeatures'>;

/**
 * Grow a tree on `X` (row-major, `n` rows by `nFeatures` columns, already rounded to float32) and
 * the double targets `y`.
 */
export function growTree(X: Float32Array, n: number, nFeatures: number, y: Float64Array, options: GrowOptions): GrownTree {
  return new TreeGrower(X, n, nFeatures, y, options).grow();
}

class TreeGrower {
  private readonly n: number;
  private readonly F: number;
  /** X column-major: `Xc[f * n + i]`. */
  private readonly Xc: Float32Array;
  private readonly y: Float64Array;
  private readonly opts: GrowOptions;
  private readonly minSamplesSplit: number;
  private readonly maxDepth: number;
  private readonly rng: RandR;
  private readonly legacyThreshold: boolean;

  private readonly samples: Int32Array;
  private readonly features: Int32Array;
  private readonly constantFeatures: Int32Array;
  private readonly Xf: Float32Array;

  /** Per feature f, `[f * n + start, f * n + end)` holds node [start, end)'s samples sorted by f. */
  private readonly sortedIdx: Int32Array;
  private readonly sortedVal: Float32Array;
  /** `y[sortedIdx[k]]`, kept alongside so that the split scan reads targets sequentially. */
  private readonly sortedY: Float64Array;
  /** Targets in the order of `samples` after a real introsort (the scan's input then). */
  private readonly Yf: Float64Array;
  /** 1 when the feature's values are all distinct over the training set (no node can tie). */
  private readonly tieFree: Uint8Array;
  private readonly goesLeft: Uint8Array;
  private readonly skipPartition: Uint8Array;
  private readonly tmpIdx: Int32Array;
  private readonly tmpVal: Float32Array;
  private readonly tmpY: Float64Array;
  private readonly guide: SortedGuide;
  private readonly pending: Int32Array;

  // Criterion state of the current node (scikit-learn's node_reset / Criterion.init). Fields that
  // hold doubles start as NaN so V8 gives them a double representation from the start (a field
  // first holding a small integer and later a double deoptimizes the code that stores into it).
  private start = 0;
  private end = 0;
  private sumTotal = Number.NaN;
  private sqSumTotal = Number.NaN;
  private weightedNNodeSamples = Number.NaN;
  /** Sum of |y| over the node: bounds the rounding of any order of summing its targets. */
  private sumAbs = Number.NaN;
  private readonly weightedNSamples: number;

  // Result of the last split search.
  private splitPos = 0;
  private splitFeature = 0;
  private splitThreshold = Number.NaN;
  private splitImpurityLeft = Number.NaN;
  private splitImpurityRight = Number.NaN;
  private splitImprovement = Number.NaN;
  private splitNConstant = 0;
  // The best split found so far by the running search.
  private bestPos = 0;
  private bestFeature = 0;
  private bestThreshold = Number.NaN;
  private bestProxy = Number.NaN;

  // The tree.
  private readonly leftChild: number[] = [];
  private readonly rightChild: number[] = [];
  private readonly feature: number[] = [];
  private readonly threshold: number[] = [];
  private readonly impurity: number[] = [];
  private readonly nNodeSamples: number[] = [];
  private readonly weightedN: number[] = [];
  private readonly value: number[] = [];

  constructor(X: Float32Array, n: number, F: number, y: Float64Array, opts: GrowOptions) {
    this.n = n;
    this.F = F;
    this.y = y;
    this.opts = opts;
    this.legacyThreshold = opts.thresholdRule === 'sklearn-0.19';
    // BaseDecisionTree.fit: min_samples_split = max(min_samples_split, 2 * min_samples_leaf).
    this.minSamplesSplit = Math.max(opts.minSamplesSplit, 2 * opts.minSamplesLeaf);
    this.maxDepth = opts.maxDepth;
    this.rng = new RandR(splitterSeed(opts.randomState));

    const Xc = new Float32Array(F * n);
    for (let i = 0; i < n; i++) {
      const row = i * F;
      for (let f = 0; f < F; f++) Xc[f * n + i] = X[row + f];
    }
    this.Xc = Xc;

    this.samples = new Int32Array(n);
    for (let i = 0; i < n; i++) this.samples[i] = i;
    this.weightedNSamples = n; // the sum of n unit weights
    this.features = new Int32Array(F);
    for (let f = 0; f < F; f++) this.features[f] = f;
    this.constantFeatures = new Int32Array(F);
    this.Xf = new Float32Array(n);

    this.sortedIdx = new Int32Array(F * n);
    this.sortedVal = new Float32Array(F * n);
    this.sortedY = new Float64Array(F * n);
    this.Yf = new Float64Array(n);
    this.tieFree = new Uint8Array(F);
    this.goesLeft = new Uint8Array(n);
    this.skipPartition = new Uint8Array(F);
    this.tmpIdx = new Int32Array(n);
    this.tmpVal = new Float32Array(n);
    this.tmpY = new Float64Array(n);
    this.pending = new Int32Array(F);
    this.guide = { sortedVal: this.sortedVal, sortedIdx: this.sortedIdx, offset: 0, tiePrefix: new Int32Array(n) };
    this.presort();
  }

  /**
   * Sort every column once (LSD radix sort on an order-preserving integer image of the float32
   * bits; -0 sorts before 0, which compare equal and so count as a tie). Also notes which columns
   * have no two equal values at all: no node can tie on those.
   */
  private presort(): void {
    const { n, F, Xc, y, sortedIdx, sortedVal, sortedY } = this;
    // Int32 views and keys: uint32 values above 2^31 would not be small integers for V8.
    const bits = new Int32Array(Xc.buffer, Xc.byteOffset, Xc.length);
    const keyA = new Int32Array(n);
    const keyB = new Int32Array(n);
    const idxA = new Int32Array(n);
    const idxB = new Int32Array(n);
    const counts = new Int32Array(2048);
    for (let f = 0; f < F; f++) {
      const base = f * n;
      for (let i = 0; i < n; i++) {
        const u = bits[base + i];
        // Negative floats: all bits flipped; others: sign bit set. Unsigned order = float order.
        // Branch-free: the signs are random, and a mispredicted branch costs more than this.
        keyA[i] = u ^ ((u >> 31) | -0x80000000);
        idxA[i] = i;
      }
      // Three stable passes of 11 bits: A -> B -> A -> B.
      radixPass(keyA, idxA, keyB, idxB, n, 0, counts);
      radixPass(keyB, idxB, keyA, idxA, n, 11, counts);
      radixPass(keyA, idxA, keyB, idxB, n, 22, counts);
      let distinct = 1;
      let prev = Number.NaN;
      for (let k = 0; k < n; k++) {
        const i = idxB[k];
        const v = Xc[base + i];
        sortedIdx[base + k] = i;
        sortedVal[base + k] = v;
        sortedY[base + k] = y[i];
        if (v === prev) distinct = 0;
        prev = v;
      }
      this.tieFree[f] = distinct;
    }
  }

  grow(): GrownTree {
    let maxDepthSeen: number;
    if (this.opts.maxLeafNodes < 0) maxDepthSeen = this.growDepthFirst();
    else maxDepthSeen = this.growBestFirst();
    return {
      nodeCount: this.feature.length,
      maxDepth: maxDepthSeen,
      leftChild: this.leftChild,
      rightChild: this.rightChild,
      feature: this.feature,
      threshold: this.threshold,
      impurity: this.impurity,
      nNodeSamples: this.nNodeSamples,
      weightedNNodeSamples: this.weightedN,
      value: this.value,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Builders (sklearn/tree/_tree.pyx)

  private addNode(parent: number, isLeft: boolean, isLeaf: boolean, impurity: number, nNode: number): number {
    const id = this.feature.length;
    if (parent >= 0) {
      if (isLeft) this.leftChild[parent] = id;
      else this.rightChild[parent] = id;
    }
    this.leftChild.push(-1);
    this.rightChild.push(-1);
    this.feature.push(isLeaf ? -2 : this.splitFeature);
    this.threshold.push(isLeaf ? -2 : this.splitThreshold);
    this.impurity.push(impurity);
    this.nNodeSamples.push(nNode);
    this.weightedN.push(this.weightedNNodeSamples);
    // Criterion.node_value: the sum taken at init over the node's samples in their order then.
    this.value.push(this.sumTotal / this.weightedNNodeSamples);
    return id;
  }

  private growDepthFirst(): number {
    const maxDepth = this.maxDepth;
    const minLeaf = this.opts.minSamplesLeaf;
    // Stack records: start, end, depth, parent, isLeft, impurity, nConstant.
    const stack: number[][] = [[0, this.n, 0, -1, 0, Infinity, 0]];
    let first = true;
    let maxDepthSeen = -1;
    while (stack.length > 0) {
      const [start, end, depth, parent, isLeft, parentImpurity, nConstant] = stack.pop() as number[];
      let impurity = parentImpurity;
      const nNode = end - start;
      this.nodeReset(start, end);
      let isLeaf = depth >= maxDepth || nNode < this.minSamplesSplit || nNode < 2 * minLeaf;
      if (first) {
        impurity = this.nodeImpurity();
        first = false;
      }
      isLeaf = isLeaf || impurity <= EPSILON;
      if (!isLeaf) {
        this.nodeSplit(impurity, nConstant);
        isLeaf = this.splitPos >= end || this.splitImprovement + EPSILON < 0;
      }
      const id = this.addNode(parent, isLeft === 1, isLeaf, impurity, nNode);
      if (!isLeaf) {
        const pos = this.splitPos;
        const total = this.splitNConstant;
        // Children never sort the features known constant here: no need to keep their segments.
        for (let k = 0; k < total; k++) this.skipPartition[this.features[k]] = 1;
        this.partitionSorted(start, end, pos, this.willSearch(pos - start, depth + 1, this.splitImpurityLeft),
          this.willSearch(end - pos, depth + 1, this.splitImpurityRight));
        for (let k = 0; k < total; k++) this.skipPartition[this.features[k]] = 0;
        stack.push([pos, end, depth + 1, id, 0, this.splitImpurityRight, total]);
        stack.push([start, pos, depth + 1, id, 1, this.splitImpurityLeft, total]);
      }
      if (depth > maxDepthSeen) maxDepthSeen = depth;
    }
    return maxDepthSeen;
  }

  private growBestFirst(): number {
    const frontier: FrontierRecord[] = [];
    let maxSplitNodes = this.opts.maxLeafNodes - 1;
    let maxDepthSeen = -1;
    pushFrontier(frontier, this.addSplitNode(0, this.n, Infinity, true, true, -1, 0));
    while (frontier.length > 0) {
      const record = popFrontier(frontier);
      const isLeaf = record.isLeaf || maxSplitNodes <= 0;
      if (isLeaf) {
        const id = record.nodeId;
        this.leftChild[id] = -1;
        this.rightChild[id] = -1;
        this.feature[id] = -2;
        this.threshold[id] = -2;
      } else {
        maxSplitNodes--;
        this.partitionSorted(record.start, record.end, record.pos,
          this.willSearch(record.pos - record.start, record.depth + 1, record.impurityLeft),
          this.willSearch(record.end - record.pos, record.depth + 1, record.impurityRight));
        const left = this.addSplitNode(record.start, record.pos, record.impurityLeft, false, true, record.nodeId, record.depth + 1);
        const right = this.addSplitNode(record.pos, record.end, record.impurityRight, false, false, record.nodeId, record.depth + 1);
        pushFrontier(frontier, left);
        pushFrontier(frontier, right);
      }
      if (record.depth > maxDepthSeen) maxDepthSeen = record.depth;
    }
    return maxDepthSeen;
  }

  /** False when a node is a leaf by the builders' tests before any split search. */
  private willSearch(nNode: number, depth: number, impurity: number): boolean {
    return !(depth >= this.maxDepth || nNode < this.minSamplesSplit || nNode < 2 * this.opts.minSamplesLeaf || impurity <= EPSILON);
  }

  /** BestFirstTreeBuilder._add_split_node: every non-leaf searches its split when created. */
  private addSplitNode(
    start: number,
    end: number,
    impurityIn: number,
    isFirst: boolean,
    isLeft: boolean,
    parent: number,
    depth: number,
  ): FrontierRecord {
    let impurity = impurityIn;
    this.nodeReset(start, end);
    if (isFirst) impurity = this.nodeImpurity();
    const nNode = end - start;
    let isLeaf =
      depth >= this.maxDepth || nNode < this.minSamplesSplit || nNode < 2 * this.opts.minSamplesLeaf || impurity <= EPSILON;
    if (!isLeaf) {
      this.nodeSplit(impurity, 0);
      isLeaf = this.splitPos >= end || this.splitImprovement + EPSILON < 0;
    }
    const nodeId = this.addNode(parent, isLeft, isLeaf, impurity, nNode);
    if (!isLeaf) {
      return {
        nodeId, start, end, depth, impurity, isLeaf: false,
        pos: this.splitPos,
        improvement: this.splitImprovement,
        impurityLeft: this.splitImpurityLeft,
        impurityRight: this.splitImpurityRight,
      };
    }
    return { nodeId, start, end, depth, impurity, isLeaf: true, pos: end, improvement: 0, impurityLeft: impurity, impurityRight: impurity };
  }

  // ---------------------------------------------------------------------------------------------
  // Criterion (sklearn/tree/_criterion.pyx, MSE with unit weights)

  private nodeReset(start: number, end: number): void {
    this.start = start;
    this.end = end;
    const { y, samples } = this;
    let sum = 0;
    let sq = 0;
    let w = 0;
    let sumAbs = 0;
    for (let p = start; p < end; p++) {
      const yi = y[samples[p]];
      sum += yi;
      sq += yi * yi;
      w += 1;
      sumAbs += Math.abs(yi);
    }
    this.sumTotal = sum;
    this.sqSumTotal = sq;
    this.weightedNNodeSamples = w;
    this.sumAbs = sumAbs;
  }

  private nodeImpurity(): number {
    const w = this.weightedNNodeSamples;
    const m = this.sumTotal / w;
    return this.sqSumTotal / w - m * m;
  }

  // ---------------------------------------------------------------------------------------------
  // BestSplitter.node_split

  private nodeSplit(impurity: number, nKnown: number): void {
    const { n, F, features, sortedIdx, sortedVal, sortedY, tieFree, y, rng } = this;
    const start = this.start;
    const end = this.end;
    const sumTotal = this.sumTotal;
    const wTotal = this.weightedNNodeSamples;

    this.bestPos = end;
    this.bestFeature = 0;
    this.bestThreshold = 0;
    this.bestProxy = -Infinity;

    let fi = F;
    let visited = 0;
    let found = 0;
    let drawn = 0;
    let total = nKnown;
    // The order scikit-learn's `samples[start, end)` is in: the segment of `curSorted` (or
    // `samples` itself when -1), then sorted by each of `pending[0, nPending)` in turn, sorts with
    // ties that were not needed yet and are run only when something reads their result.
    let curSorted = -1;
    const pending = this.pending;
    let nPending = 0;

    while (fi > total && (visited < F || visited <= found + drawn)) {
      visited++;
      let fj = rng.int(drawn, fi - found);
      if (fj < nKnown) {
        const t = features[drawn];
        features[drawn] = features[fj];
        features[fj] = t;
        drawn++;
        continue;
      }
      fj += found;
      const f = features[fj];
      const base = f * n;
      const vMin = sortedVal[base + start];
      const vMax = sortedVal[base + end - 1];

      // "Sort" the node's samples by f, the way scikit-learn's introsort would leave them.
      let ties = false;
      if (vMin === vMax) {
        // All keys equal: introsort's three-way partition leaves the order unchanged.
      } else if (tieFree[f] === 1 || !this.hasTies(base, start, end)) {
        // Strictly increasing keys: the sorted order is unique, hence introsort's, whatever the
        // order before; sorts still pending before this one no longer matter.
        curSorted = f;
        nPending = 0;
      } else {
        ties = true;
      }

      if (vMax <= Math.fround(vMin + FEATURE_THRESHOLD)) {
        if (ties) pending[nPending++] = f;
        features[fj] = features[total];
        features[total] = f;
        found++;
        total++;
        continue;
      }

      fi--;
      features[fj] = features[fi];
      features[fi] = f;

      if (!ties) {
        this.scanSplits(f, sortedVal, sortedY, base, sumTotal, wTotal);
      } else if (this.cannotImprove(sortedVal, sortedY, base, sumTotal, wTotal)) {
        // No split of f can beat the best so far, whatever order its ties end in: only the sample
        // order its sort leaves matters, and only if a later sort or the partition reads it.
        pending[nPending++] = f;
      } else {
        pending[nPending++] = f;
        this.runPendingSorts(curSorted, nPending);
        curSorted = -1;
        nPending = 0;
        const { Yf, samples } = this;
        for (let p = start; p < end; p++) Yf[p] = y[samples[p]];
        this.scanSplits(f, this.Xf, Yf, 0, sumTotal, wTotal);
      }
    }

    if (nPending > 0) this.runPendingSorts(curSorted, nPending);
    else if (curSorted >= 0) this.samples.set(sortedIdx.subarray(curSorted * n + start, curSorted * n + end), start);

    const bestPos = this.bestPos;
    const bestFeature = this.bestFeature;
    const bestThreshold = this.bestThreshold;
    this.splitPos = bestPos;
    this.splitFeature = bestFeature;
    this.splitThreshold = bestThreshold;
    this.splitImpurityLeft = Infinity;
    this.splitImpurityRight = Infinity;
    this.splitImprovement = -Infinity;
    if (bestPos < end) {
      const samples = this.samples;
      const col = bestFeature * n;
      const Xc = this.Xc;
      let p = start;
      let pe = end;
      while (p < pe) {
        if (Xc[col + samples[p]] <= bestThreshold) p++;
        else {
          pe--;
          const t = samples[p];
          samples[p] = samples[pe];
          samples[pe] = t;
        }
      }
      // criterion.reset(); criterion.update(best.pos); children_impurity; impurity_improvement.
      let sumLeft = 0;
      if (bestPos - start <= end - bestPos) {
        for (let k = start; k < bestPos; k++) sumLeft += y[samples[k]];
      } else {
        sumLeft = sumTotal;
        for (let k = end - 1; k >= bestPos; k--) sumLeft -= y[samples[k]];
      }
      const wLeft = bestPos - start;
      const wRight = wTotal - wLeft;
      const sumRight = sumTotal - sumLeft;
      let sqLeft = 0;
      for (let k = start; k < bestPos; k++) {
        const yi = y[samples[k]];
        sqLeft += yi * yi;
      }
      const sqRight = this.sqSumTotal - sqLeft;
      const mLeft = sumLeft / wLeft;
      const mRight = sumRight / wRight;
      const impurityLeft = sqLeft / wLeft - mLeft * mLeft;
      const impurityRight = sqRight / wRight - mRight * mRight;
      this.splitImpurityLeft = impurityLeft;
      this.splitImpurityRight = impurityRight;
      this.splitImprovement =
        (wTotal / this.weightedNSamples) * (impurity - (wRight / wTotal) * impurityRight - (wLeft / wTotal) * impurityLeft);
    }

    // Keep the known constants' order for siblings and children; record the newly found ones.
    const constantFeatures = this.constantFeatures;
    for (let k = 0; k < nKnown; k++) features[k] = constantFeatures[k];
    for (let k = nKnown; k < nKnown + found; k++) constantFeatures[k] = features[k];
    this.splitNConstant = total;
  }

  /**
   * Evaluate every split position of feature f over the node, its keys in `vals` and targets in
   * `ys` (sorted, node position p at index off + p): criterion.reset(), then at each boundary p
   * (`vals[p] > f32(vals[p - 1] + FEATURE_THRESHOLD)`, the positions scikit-learn's skip loop
   * stops at) update(p) and compare the proxy improvement, strictly.
   */
  private scanSplits(f: number, vals: Float32Array, ys: Float64Array, off: number, sumTotal: number, wTotal: number): void {
    const start = this.start;
    const end = this.end;
    const minLeaf = this.opts.minSamplesLeaf;
    let bestProxy = this.bestProxy;
    let sumLeft = 0;
    let pos = start;
    let vPrev = vals[off + start];
    for (let p = start + 1; p < end; p++) {
      const v = vals[off + p];
      const prev = vPrev;
      vPrev = v;
      if (v <= Math.fround(prev + FEATURE_THRESHOLD)) continue;
      if (p - start < minLeaf || end - p < minLeaf) continue;
      // RegressionCriterion.update: forwards from pos, or backwards from end, whichever is shorter
      // (the path decides the last bits).
      if (p - pos <= end - p) {
        for (let k = off + pos, stop = off + p; k < stop; k++) sumLeft += ys[k];
      } else {
        sumLeft = sumTotal;
        for (let k = off + end - 1, stop = off + p; k >= stop; k--) sumLeft -= ys[k];
      }
      pos = p;
      const wLeft = p - start;
      const wRight = wTotal - wLeft;
      const sumRight = sumTotal - sumLeft;
      const proxy = (sumLeft * sumLeft) / wLeft + (sumRight * sumRight) / wRight;
      if (proxy > bestProxy) {
        bestProxy = proxy;
        this.bestFeature = f;
        this.bestPos = p;
        let threshold = this.legacyThreshold ? Math.fround(prev + v) / 2 : prev / 2 + v / 2;
        if (threshold === v || threshold === Infinity || threshold === -Infinity) threshold = prev;
        this.bestThreshold = threshold;
      }
    }
    this.bestProxy = bestProxy;
  }

  /**
   * Bring `samples[start, end)` to the order scikit-learn has after sorting by each pending
   * feature: start from `curSorted`'s segment (or `samples` when -1), then run the real introsort
   * of each pending feature (they all tie in this node), leaving the last one's keys in `Xf`.
   */
  private runPendingSorts(curSorted: number, nPending: number): void {
    const { n, start, end, samples, Xf, Xc, pending } = this;
    if (curSorted >= 0) samples.set(this.sortedIdx.subarray(curSorted * n + start, curSorted * n + end), start);
    for (let j = 0; j < nPending; j++) {
      const base = pending[j] * n;
      for (let p = start; p < end; p++) Xf[p] = Xc[base + samples[p]];
      this.countTies(base, start, end);
      this.guide.offset = base;
      introsortGuided(Xf, samples, start, end - start, this.guide);
    }
  }

  /**
   * True when no split position of a feature with ties can have a proxy improvement above the
   * best so far, whatever order introsort leaves its equal keys in. The order only changes how
   * the targets of a tie group are summed; the scan is run here in the presorted order and each
   * proxy is widened by a rigorous bound on that rounding difference:
   * - `sumLeft` is a chain of at most k = 2(end - start) additions and subtractions from 0 or
   *   `sumTotal` over terms of total magnitude <= 2 sum|y|, and both orders round the same real
   *   value, so they differ by at most D = 2 gamma_k (|sumTotal| + 2 sum|y|)
   *   (gamma_k = k u / (1 - k u), u = 2^-53);
   * - the proxy s^2 / wL + (T - s)^2 / wR then moves by at most D (|s + s'| / wL + |2T - s - s'| / wR),
   *   and each evaluation rounds it by less than 6 ulps (all its terms are non-negative).
   * The bound is doubled, plus an absolute 1e-300 for underflow. Any non-finite value disables
   * the shortcut. A false answer only costs the real sort.
   */
  private cannotImprove(vals: Float32Array, ys: Float64Array, off: number, sumTotal: number, wTotal: number): boolean {
    const start = this.start;
    const end = this.end;
    const minLeaf = this.opts.minSamplesLeaf;
    const bestProxy = this.bestProxy;
    if (!(bestProxy > -Infinity && bestProxy < Infinity)) return false;
    const u = 1.1102230246251565e-16;
    const k = 2 * (end - start) + 4;
    const gamma = (k * u) / (1 - k * u);
    const D = 2 * gamma * (Math.abs(sumTotal) + 2 * this.sumAbs) * 1.000001;
    let sumLeft = 0;
    let pos = start;
    let vPrev = vals[off + start];
    for (let p = start + 1; p < end; p++) {
      const v = vals[off + p];
      const prev = vPrev;
      vPrev = v;
      if (v <= Math.fround(prev + FEATURE_THRESHOLD)) continue;
      if (p - start < minLeaf || end - p < minLeaf) continue;
      if (p - pos <= end - p) {
        for (let k2 = off + pos, stop = off + p; k2 < stop; k2++) sumLeft += ys[k2];
      } else {
        sumLeft = sumTotal;
        for (let k2 = off + end - 1, stop = off + p; k2 >= stop; k2--) sumLeft -= ys[k2];
      }
      pos = p;
      const wLeft = p - start;
      const wRight = wTotal - wLeft;
      const sumRight = sumTotal - sumLeft;
      const proxy = (sumLeft * sumLeft) / wLeft + (sumRight * sumRight) / wRight;
      const slope = (2 * Math.abs(sumLeft) + 2 * D) / wLeft + (2 * Math.abs(sumRight) + 2 * D) / wRight;
      const bound = proxy + 2 * (D * slope + 16 * u * proxy) + 1e-300;
      // Written so that NaN fails the test.
      if (!(bound < bestProxy)) return false;
    }
    return true;
  }

  /** Whether feature segment `base` has two equal keys in [start, end). */
  private hasTies(base: number, start: number, end: number): boolean {
    const vals = this.sortedVal;
    let prev = vals[base + start];
    for (let k = base + start + 1, stop = base + end; k < stop; k++) {
      const v = vals[k];
      if (v === prev) return true;
      prev = v;
    }
    return false;
  }

  /** Fill `tiePrefix` over [start, end) for feature segment `base`. */
  private countTies(base: number, start: number, end: number): void {
    const vals = this.sortedVal;
    const tiePrefix = this.guide.tiePrefix;
    let ties = 0;
    let prev = vals[base + start];
    tiePrefix[start] = 0;
    for (let p = start + 1; p < end; p++) {
      const v = vals[base + p];
      if (v === prev) ties++;
      tiePrefix[p] = ties;
      prev = v;
    }
  }

  /**
   * Split node [start, end)'s sorted segments at `pos` (samples[start, pos) go left), keeping each
   * side sorted: a stable partition by the side each sample went to. Only the sides whose node
   * will search a split need their segments (`needLeft`, `needRight`).
   */
  private partitionSorted(start: number, end: number, pos: number, needLeft: boolean, needRight: boolean): void {
    if (!needLeft && !needRight) return;
    const { n, F, samples, goesLeft, sortedVal, skipPartition } = this;
    for (let p = start; p < pos; p++) goesLeft[samples[p]] = 1;
    for (let p = pos; p < end; p++) goesLeft[samples[p]] = 0;
    const nLeft = pos - start;
    const nRight = end - pos;
    for (let f = 0; f < F; f++) {
      const base = f * n;
      // Segments of features constant in the node are never read in order again.
      if (skipPartition[f] === 1 || sortedVal[base + start] === sortedVal[base + end - 1]) continue;
      if (8 * nLeft < nRight) this.peelLeft(base + start, base + pos, base + end, needLeft);
      else if (8 * nRight < nLeft) this.peelRight(base + start, base + pos, base + end, needRight);
      else this.partitionBalanced(base + start, base + end);
    }
  }

  /** Balanced split: branch-free stable partition (each element written to both sides). */
  private partitionBalanced(from: number, to: number): void {
    const { goesLeft, sortedIdx, sortedVal, sortedY, tmpIdx, tmpVal, tmpY } = this;
    let l = from;
    let r = 0;
    for (let k = from; k < to; k++) {
      const i = sortedIdx[k];
      const v = sortedVal[k];
      const yi = sortedY[k];
      const g = goesLeft[i];
      sortedIdx[l] = i;
      sortedVal[l] = v;
      sortedY[l] = yi;
      tmpIdx[r] = i;
      tmpVal[r] = v;
      tmpY[r] = yi;
      l += g;
      r += 1 - g;
    }
    sortedIdx.set(tmpIdx.subarray(0, r), l);
    sortedVal.set(tmpVal.subarray(0, r), l);
    sortedY.set(tmpY.subarray(0, r), l);
  }

  /**
   * Few samples go left: walk backwards compacting the right-going ones towards the end (nothing
   * moves until the first left-going one), collect the left-going ones, put them in front.
   */
  private peelLeft(from: number, mid: number, to: number, needLeft: boolean): void {
    const { goesLeft, sortedIdx, sortedVal, sortedY, tmpIdx, tmpVal, tmpY } = this;
    let w = to;
    let t = 0;
    for (let k = to - 1; k >= from; k--) {
      const i = sortedIdx[k];
      if (goesLeft[i] === 1) {
        tmpIdx[t] = i;
        tmpVal[t] = sortedVal[k];
        tmpY[t] = sortedY[k];
        t++;
      } else {
        w--;
        if (w !== k) {
          sortedIdx[w] = i;
          sortedVal[w] = sortedVal[k];
          sortedY[w] = sortedY[k];
        }
      }
    }
    if (!needLeft) return;
    for (let j = 0; j < t; j++) {
      const at = mid - 1 - j;
      sortedIdx[at] = tmpIdx[j];
      sortedVal[at] = tmpVal[j];
      sortedY[at] = tmpY[j];
    }
  }

  /** Few samples go right: the mirror image of `peelLeft`. */
  private peelRight(from: number, mid: number, to: number, needRight: boolean): void {
    const { goesLeft, sortedIdx, sortedVal, sortedY, tmpIdx, tmpVal, tmpY } = this;
    let w = from;
    let t = 0;
    for (let k = from; k < to; k++) {
      const i = sortedIdx[k];
      if (goesLeft[i] === 0) {
        tmpIdx[t] = i;
        tmpVal[t] = sortedVal[k];
        tmpY[t] = sortedY[k];
        t++;
      } else {
        if (w !== k) {
          sortedIdx[w] = i;
          sortedVal[w] = sortedVal[k];
          sortedY[w] = sortedY[k];
        }
        w++;
      }
    }
    if (!needRight) return;
    for (let j = 0; j < t; j++) {
      sortedIdx[mid + j] = tmpIdx[j];
      sortedVal[mid + j] = tmpVal[j];
      sortedY[mid + j] = tmpY[j];
    }
  }
}



/** One stable counting-sort pass of an LSD radix sort on 11 bits of `keys` from bit `shift`. */
function radixPass(
  keys: Int32Array,
  idx: Int32Array,
  outKeys: Int32Array,
  outIdx: Int32Array,
  n: number,
  shift: number,
  counts: Int32Array,
): void {
  counts.fill(0);
  for (let i = 0; i < n; i++) counts[(keys[i] >>> shift) & 2047]++;
  let sum = 0;
  for (let b = 0; b < 2048; b++) {
    const c = counts[b];
    counts[b] = sum;
    sum += c;
  }
  for (let i = 0; i < n; i++) {
    const key = keys[i];
    const at = counts[(key >>> shift) & 2047]++;
    outKeys[at] = key;
    outIdx[at] = idx[i];
  }
}
