/** A dense row-major matrix of doubles: the one shape every estimator takes and returns. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float64Array;
}

export function createMatrix(rows: number, cols: number): Matrix {
  return { rows, cols, data: new Float64Array(rows * cols) };
}

export function matrixFromRows(rows: readonly ArrayLike<number>[], cols?: number): Matrix {
  const c = cols ?? (rows.length > 0 ? rows[0].length : 0);
  const m = createMatrix(rows.length, c);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (r.length !== c) throw new Error(`row ${i} has ${r.length} values, expected ${c}`);
    m.data.set(r as ArrayLike<number>, i * c);
  }
  return m;
}

export function matrixRow(m: Matrix, i: number): Float64Array {
  return m.data.subarray(i * m.cols, (i + 1) * m.cols);
}

/** Rows `[start, end)` as a view sharing memory with `m`. */
export function sliceRows(m: Matrix, start: number, end: number): Matrix {
  return { rows: end - start, cols: m.cols, data: m.data.subarray(start * m.cols, end * m.cols) };
}
