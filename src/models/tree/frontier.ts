/**
 * The best-first builder's frontier: libstdc++'s `std::push_heap` / `std::pop_heap` on a vector,
 * ordered by improvement with `<` (a max-heap). Which of several equal improvements comes out
 * first is part of the grown tree (FEATURES.md §7 "Best-first builder"), so the exact sift
 * sequence of libstdc++ (`__push_heap`, `__adjust_heap`) is reproduced rather than any heap.
 */

export interface FrontierRecord {
  nodeId: number;
  start: number;
  end: number;
  pos: number;
  depth: number;
  isLeaf: boolean;
  impurity: number;
  impurityLeft: number;
  impurityRight: number;
  improvement: number;
}

/** `__push_heap(first, hole, top, value)`: move `value` up from `hole` while its parent is smaller. */
function pushHeapFrom(heap: FrontierRecord[], hole: number, top: number, value: FrontierRecord): void {
  let parent = (hole - 1) >> 1;
  while (hole > top && heap[parent].improvement < value.improvement) {
    heap[hole] = heap[parent];
    hole = parent;
    parent = (hole - 1) >> 1;
  }
  heap[hole] = value;
}

/** `frontier.push_back(r); std::push_heap(begin, end, cmp)`. */
export function pushFrontier(heap: FrontierRecord[], record: FrontierRecord): void {
  heap.push(record);
  pushHeapFrom(heap, heap.length - 1, 0, record);
}

/** `std::pop_heap(begin, end, cmp); r = frontier.back(); frontier.pop_back()`. */
export function popFrontier(heap: FrontierRecord[]): FrontierRecord {
  const len = heap.length;
  if (len === 0) throw new Error('popFrontier: empty frontier');
  if (len > 1) {
    const last = len - 1;
    const value = heap[last];
    heap[last] = heap[0];
    adjustHeap(heap, 0, last, value);
  }
  return heap.pop() as FrontierRecord;
}

/** libstdc++ `__adjust_heap(first, hole, len, value, comp)`. */
function adjustHeap(heap: FrontierRecord[], hole: number, len: number, value: FrontierRecord): void {
  const top = hole;
  let second = hole;
  while (second < ((len - 1) >> 1)) {
    second = 2 * (second + 1);
    if (heap[second].improvement < heap[second - 1].improvement) second--;
    heap[hole] = heap[second];
    hole = second;
  }
  if ((len & 1) === 0 && second === (len - 2) >> 1) {
    second = 2 * (second + 1);
    heap[hole] = heap[second - 1];
    hole = second - 1;
  }
  pushHeapFrom(heap, hole, top, value);
}
