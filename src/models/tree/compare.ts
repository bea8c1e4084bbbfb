import type { TreeState } from '../types.js';

export interface TreeDifference {
  /** The first node that differs (in node-id order), or null for a tree-level field. */
  node: number | null;
  field: keyof TreeState;
  a: unknown;
  b: unknown;
}

const NODE_FIELDS = [
  'leftChild',
  'rightChild',
  'feature',
  'threshold',
  'impurity',
  'nNodeSamples',
  'weightedNNodeSamples',
  'value',
] as const satisfies readonly (keyof TreeState)[];

/**
 * Compare two trees bit for bit (`Object.is`: -0 differs from 0, NaN equals NaN). Returns the first
 * difference, node by node in id order and field by field within a node, or null when identical.
 * Tree-level fields (`nFeatures`, `nodeCount`) are checked first; `maxDepth` after the nodes, since
 * a structural difference is the more useful report.
 */
export function compareTrees(a: TreeState, b: TreeState): TreeDifference | null {
  if (a.nFeatures !== b.nFeatures) return { node: null, field: 'nFeatures', a: a.nFeatures, b: b.nFeatures };
  const common = Math.min(a.nodeCount, b.nodeCount, a.feature.length, b.feature.length);
  for (let i = 0; i < common; i++) {
    for (const field of NODE_FIELDS) {
      const va = a[field][i];
      const vb = b[field][i];
      if (!Object.is(va, vb)) return { node: i, field, a: va, b: vb };
    }
  }
  if (a.nodeCount !== b.nodeCount) return { node: common, field: 'nodeCount', a: a.nodeCount, b: b.nodeCount };
  for (const field of NODE_FIELDS) {
    if (a[field].length !== b[field].length) return { node: null, field, a: a[field].length, b: b[field].length };
  }
  if (a.maxDepth !== b.maxDepth) return { node: null, field: 'maxDepth', a: a.maxDepth, b: b.maxDepth };
  return null;
}

/** A one-line description of a difference, for test failures and `--compare-sklearn-pickle`. */
export function describeTreeDifference(d: TreeDifference | null): string {
  if (d === null) return 'identical';
  const where = d.node === null ? 'tree' : `node ${d.node}`;
  return `${where}: ${d.field} ${fmt(d.a)} != ${fmt(d.b)}`;
}

function fmt(v: unknown): string {
  return typeof v === 'number' && Object.is(v, -0) ? '-0' : String(v);
}
