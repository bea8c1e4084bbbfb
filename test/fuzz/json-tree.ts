/**
 * JSON as a tree that can say what JSON.stringify cannot: an object with the same key twice, an own
 * `__proto__` key, a number written `1.0e2` or `-0` or `1e999`, a string with a lone surrogate
 * escape, a fragment that is not JSON at all. Request bodies are built as such trees, mutated, then
 * written out as text.
 */

export type JNode =
  | { k: 'obj'; e: [string, JNode][] }
  | { k: 'arr'; a: JNode[] }
  | { k: 'num'; v: number; text?: string }
  | { k: 'str'; v: string; raw?: string }
  | { k: 'bool'; v: boolean }
  | { k: 'null' }
  | { k: 'raw'; text: string };

export const J = {
  obj: (e: [string, JNode][]): JNode => ({ k: 'obj', e }),
  arr: (a: JNode[]): JNode => ({ k: 'arr', a }),
  num: (v: number, text?: string): JNode => (text === undefined ? { k: 'num', v } : { k: 'num', v, text }),
  str: (v: string): JNode => ({ k: 'str', v }),
  /** A string literal written exactly as `raw` (without the quotes), e.g. a lone `\ud800`. */
  rawStr: (raw: string): JNode => ({ k: 'str', v: raw, raw }),
  bool: (v: boolean): JNode => ({ k: 'bool', v }),
  null: (): JNode => ({ k: 'null' }),
  raw: (text: string): JNode => ({ k: 'raw', text }),
};

/** A plain JS value (numbers, strings, arrays, plain objects) as a tree. */
export function fromValue(v: unknown): JNode {
  if (v === null || v === undefined) return J.null();
  if (typeof v === 'number') return J.num(v);
  if (typeof v === 'string') return J.str(v);
  if (typeof v === 'boolean') return J.bool(v);
  if (Array.isArray(v)) return J.arr(v.map(fromValue));
  return J.obj(Object.keys(v as object).map((key) => [key, fromValue((v as Record<string, unknown>)[key])]));
}

export type Spacing = 'compact' | 'spaces' | 'pretty' | 'tabs';

function numberText(n: { v: number; text?: string }): string {
  if (n.text !== undefined) return n.text;
  // JSON.stringify prints -0 as 0 and non-finite numbers as null; a tree that holds them says so with `text`.
  return Number.isFinite(n.v) ? JSON.stringify(n.v) : 'null';
}

/**
 * Writes the tree as JSON text. Iterative (an explicit stack), because mutated trees can be nested
 * tens of thousands of levels deep.
 */
export function render(root: JNode, spacing: Spacing = 'compact'): string {
  const out: string[] = [];
  const sep = spacing === 'compact' ? '' : spacing === 'tabs' ? '\t' : ' ';
  const nl = spacing === 'pretty' ? '\n' : '';
  type Frame = { node: JNode; i: number };
  const stack: Frame[] = [{ node: root, i: -1 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const n = top.node;
    if (n.k === 'obj' || n.k === 'arr') {
      const len = n.k === 'obj' ? n.e.length : n.a.length;
      if (top.i === -1) out.push(n.k === 'obj' ? '{' : '[');
      else if (top.i + 1 < len) out.push(',', sep, nl);
      top.i++;
      if (top.i >= len) {
        out.push(n.k === 'obj' ? '}' : ']');
        stack.pop();
        continue;
      }
      if (n.k === 'obj') {
        const [key, child] = n.e[top.i];
        out.push(JSON.stringify(key), ':', sep);
        stack.push({ node: child, i: -1 });
      } else stack.push({ node: n.a[top.i], i: -1 });
      continue;
    }
    stack.pop();
    switch (n.k) {
      case 'num':
        out.push(numberText(n));
        break;
      case 'str':
        out.push(n.raw !== undefined ? `"${n.raw}"` : JSON.stringify(n.v));
        break;
      case 'bool':
        out.push(n.v ? 'true' : 'false');
        break;
      case 'null':
        out.push('null');
        break;
      case 'raw':
        out.push(n.text);
        break;
    }
  }
  return out.join('');
}

/** Every node with its parent slot, in document order (iterative). */
export interface Slot {
  node: JNode;
  /** Replaces the node in its parent (the root's slot replaces the root). */
  set(n: JNode): void;
  depth: number;
}

export function slots(root: { value: JNode }): Slot[] {
  const all: Slot[] = [];
  const stack: Slot[] = [{ node: root.value, set: (n) => (root.value = n), depth: 0 }];
  while (stack.length > 0) {
    const s = stack.pop()!;
    all.push(s);
    const n = s.node;
    // Children pushed in reverse so that they come out in document order.
    if (n.k === 'obj')
      for (let i = n.e.length - 1; i >= 0; i--) {
        const entry = n.e[i];
        stack.push({ node: entry[1], set: (c) => (entry[1] = c), depth: s.depth + 1 });
      }
    else if (n.k === 'arr')
      for (let i = n.a.length - 1; i >= 0; i--) {
        const idx = i;
        stack.push({ node: n.a[idx], set: (c) => (n.a[idx] = c), depth: s.depth + 1 });
      }
  }
  return all;
}

/** A deep copy; iterative, because mutated trees can be nested tens of thousands of levels deep. */
export function clone(n: JNode): JNode {
  const copyOf = (x: JNode): JNode => (x.k === 'obj' ? { k: 'obj', e: x.e.map(([key, v]) => [key, v]) } : x.k === 'arr' ? { k: 'arr', a: x.a.slice() } : { ...x });
  const root = copyOf(n);
  const stack: JNode[] = [root];
  while (stack.length > 0) {
    const x = stack.pop()!;
    if (x.k === 'obj')
      for (const entry of x.e) {
        entry[1] = copyOf(entry[1]);
        stack.push(entry[1]);
      }
    else if (x.k === 'arr')
      for (let i = 0; i < x.a.length; i++) {
        x.a[i] = copyOf(x.a[i]);
        stack.push(x.a[i]);
      }
  }
  return root;
}
