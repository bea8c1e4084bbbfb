import { describe, expect, it } from 'vitest';
import { Ewm, RollingMax, RollingMean, RollingStd } from '../../src/features/kernels.js';

const pushAll = (k: { push(x: number): number }, xs: number[]) => xs.map((x) => k.push(x));

describe('streaming kernels (pandas < 1.2 semantics, FEATURES.md §3b)', () => {
  it('RollingMean keeps one running sum and clamps a negative mean of non-negative values to 0', () => {
    // The running sum ((0.7 + 0.1) - 0.7) - 0.1 is -2.8e-17 in doubles: pandas shows 0 but keeps the sum.
    const m = new RollingMean(1);
    expect(pushAll(m, [0.7, 0.1, 0])).toEqual([0.7, 0.09999999999999998, 0]);
    expect(m.push(1e-16)).toBe(-2.7755575615628914e-17 + 1e-16);
    expect(-2.7755575615628914e-17 + 1e-16).not.toBe(1e-16);
    // An all-negative window (-0 counts as negative, like C's signbit) whose mean comes out positive: 0.
    const n = new RollingMean(1);
    expect(pushAll(n, [-0.7, -0.1, -0])).toEqual([-0.7, -0.09999999999999998, 0]);
  });

  it('RollingMean skips NaN (min_periods counts values) and peek equals push without consuming', () => {
    const m = new RollingMean(3);
    expect(pushAll(m, [1, NaN, 2, 3])).toEqual([NaN, NaN, NaN, NaN]);
    expect(m.peek(4)).toBe(3);
    expect(m.peek(4)).toBe(3);
    expect(m.push(4)).toBe(3);
    expect(m.push(NaN)).toBe(NaN);
  });

  it('RollingStd is the sample std over full windows; constant windows give 0', () => {
    const s = new RollingStd(4);
    const xs = [1, 2, 3, 4, 10, 10, 10, 10];
    const out = pushAll(s, xs);
    expect(out.slice(0, 3)).toEqual([NaN, NaN, NaN]);
    expect(out[3]).toBeCloseTo(Math.sqrt(5 / 3), 14);
    expect(out[4]).toBeCloseTo(Math.sqrt(((2 - 4.75) ** 2 + (3 - 4.75) ** 2 + (4 - 4.75) ** 2 + (10 - 4.75) ** 2) / 3), 12);
    expect(out[7]).toBeCloseTo(0, 12);
    expect(out[7]).toBeGreaterThanOrEqual(0);
  });

  it('Ewm is pandas\' adjusted recurrence: NaN holds the average but decays the old weight', () => {
    const e = new Ewm(1); // alpha = 0.5
    expect(e.push(NaN)).toBe(NaN);
    expect(e.push(2)).toBe(2);
    expect(e.push(4)).toBe((0.5 * 2 + 4) / 1.5);
    const held = e.push(NaN);
    expect(held).toBe((0.5 * 2 + 4) / 1.5);
    // Old weight: 1 -> 0.5 -> +1 = 1.5 -> (NaN) 0.75 -> 0.375.
    expect(e.push(1)).toBe((0.375 * held + 1) / 1.375);
  });

  it('RollingMax equals a scan of the window, ties and all', () => {
    let state = 7;
    const next = () => ((state = (state * 1103515245 + 12345) % 2147483648), state % 9);
    for (const w of [1, 2, 3, 14]) {
      const k = new RollingMax(w);
      const xs: number[] = [];
      for (let i = 0; i < 500; i++) {
        const x = next();
        xs.push(x);
        const got = k.push(x);
        const want = i < w - 1 ? NaN : Math.max(...xs.slice(i - w + 1, i + 1));
        expect(got).toBe(want);
      }
    }
  });
});
