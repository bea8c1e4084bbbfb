import { describe, expect, it } from 'vitest';
import { ForecastError } from '../../src/errors.js';
import {
  NdArray,
  PickleError,
  isInstance,
  isTuple,
  loadPickle,
  typedToNumbers,
  type PyDict,
  type PyValue,
} from '../../src/interop/index.js';
import { fixture, fixtureJson, toPlain } from './fixtures.js';

interface ExpectedArray {
  dtype: string;
  shape: number[];
  fortran: boolean;
  data?: number[];
  fields?: Record<string, number[]>;
  objects?: (string | null)[];
}

const expected = fixtureJson<{
  arrays: Record<string, ExpectedArray>;
  scalars: Record<string, number | boolean>;
  plain: Record<string, unknown>;
}>('arrays.json');

function get(d: PyValue, key: string): PyValue {
  expect(d).toBeInstanceOf(Map);
  const m = d as PyDict;
  expect(m.has(key), key).toBe(true);
  return m.get(key) as PyValue;
}

function errorOf(fn: () => unknown): PickleError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PickleError);
    expect(e).toBeInstanceOf(ForecastError);
    return e as PickleError;
  }
  throw new Error('expected an error');
}

const bytes = (s: string) => Buffer.from(s, 'latin1');

describe.each(['arrays_p0.pkl', 'arrays_p1.pkl', 'arrays_p2.pkl', 'arrays_p3.pkl', 'arrays_p4.pkl', 'arrays_p5.pkl', 'arrays_joblib.pkl'])('%s', (file) => {
  const root = loadPickle(fixture(file));
  const arrays = get(root, 'arrays') as PyDict;

  it('decodes every numpy array: dtype, shape, layout and elements in C order', () => {
    const names = Object.keys(expected.arrays).filter((k) => file === 'arrays_joblib.pkl' || k !== 'objects');
    expect([...arrays.keys()].sort()).toEqual(names.sort());
    for (const name of names) {
      const want = expected.arrays[name];
      const a = arrays.get(name);
      expect(a, name).toBeInstanceOf(NdArray);
      const arr = a as NdArray;
      expect(arr.dtype.str, name).toBe(want.dtype);
      expect(arr.shape, name).toEqual(want.shape);
      expect(arr.fortranOrder, name).toBe(want.fortran);
      if (want.data) expect(typedToNumbers(arr.data!), name).toEqual(want.data);
      if (want.fields) {
        expect([...arr.fields!.keys()], name).toEqual(Object.keys(want.fields));
        for (const [f, col] of Object.entries(want.fields)) expect(typedToNumbers(arr.fields!.get(f)!), `${name}.${f}`).toEqual(col);
      }
      if (want.objects) expect(arr.objects, name).toEqual(want.objects);
    }
  });

  it('keeps typed arrays typed (float64, int64 as BigInt64Array, float16 widened to float32)', () => {
    expect((arrays.get('f8_c') as NdArray).data).toBeInstanceOf(Float64Array);
    expect((arrays.get('i8') as NdArray).data).toBeInstanceOf(BigInt64Array);
    expect((arrays.get('i4_be') as NdArray).data).toBeInstanceOf(Int32Array);
    expect((arrays.get('f2') as NdArray).data).toBeInstanceOf(Float32Array);
    expect((arrays.get('packed') as NdArray).dtype.fields!.map((f) => [f.name, f.offset])).toEqual([['a', 0], ['b', 8], ['c', 16], ['d', 20]]);
    expect((arrays.get('aligned') as NdArray).dtype.fields!.map((f) => [f.name, f.offset, f.dtype.str])).toEqual([
      ['x', 0, '|u1'],
      ['y', 8, '>f8'],
      ['z', 16, '<i4'],
    ]);
  });

  it('turns numpy scalars into plain numbers and booleans', () => {
    const scalars = get(root, 'scalars') as PyDict;
    for (const [k, v] of Object.entries(expected.scalars)) expect(scalars.get(k), k).toBe(v);
  });

  it('decodes plain Python values: ints, big ints, floats, str, bytes, list, tuple, dict, set', () => {
    const plain = get(root, 'plain') as PyDict;
    for (const [k, v] of Object.entries(expected.plain)) expect(toPlain(plain.get(k)!), k).toEqual(v);
    expect(plain.get('big_int')).toBe(2n ** 70n);
    expect(plain.get('neg_big_int')).toBe(-(2n ** 64n));
    expect(plain.get('bytes')).toEqual(new Uint8Array([0, 1, 255]));
    const t = plain.get('tuple') as PyValue[];
    expect(isTuple(t)).toBe(true);
    expect(toPlain(t)).toEqual([1, [2, 3]]);
    expect(isTuple(plain.get('list'))).toBe(false);
    expect(plain.get('set')).toEqual(new Set([1, 2, 3]));
  });
});

describe('allowlist', () => {
  const malicious = fixtureJson<Record<string, string>>('malicious.json');
  it.each(Object.entries(malicious))('%s is refused, naming %s', (file, target) => {
    const err = errorOf(() => loadPickle(fixture(file)));
    expect(err.message).toContain(`pickle refers to ${target}, which is not an allowed class`);
    expect(err.code).toBe('pickle_forbidden_global');
    expect(err.status).toBe(422);
    expect(err.details).toMatchObject({ module: target.slice(0, target.lastIndexOf('.')), name: target.slice(target.lastIndexOf('.') + 1) });
  });

  it('refuses classes that are merely not on the list, and takes extra ones only when asked', () => {
    const pipeline = bytes('\x80\x02csklearn.pipeline\nPipeline\nq\x00)\x81q\x01}q\x02X\x05\x00\x00\x00stepsq\x03]q\x04sb.');
    expect(errorOf(() => loadPickle(pipeline)).message).toContain('pickle refers to sklearn.pipeline.Pipeline, which is not an allowed class');
    const obj = loadPickle(pipeline, { extraClasses: ['sklearn.pipeline.Pipeline'] });
    expect(isInstance(obj, 'sklearn.pipeline.Pipeline')).toBe(true);
    expect(toPlain((obj as { state: PyValue }).state as PyValue)).toEqual({ steps: [] });
  });

  it('refuses the extension registry and persistent ids, which can name arbitrary objects', () => {
    expect(errorOf(() => loadPickle(bytes('\x80\x02\x82\x01.'))).code).toBe('pickle_forbidden_global');
    expect(errorOf(() => loadPickle(bytes('\x80\x02X\x01\x00\x00\x00aQ.'))).code).toBe('pickle_unsupported');
  });

  it('does not let allowed numpy helpers be pointed at other things', () => {
    // numpy.core.multiarray._reconstruct(numpy.dtype, (0,), b'b')
    const p = bytes('\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\ndtype\nK\x00\x85C\x01b\x87R.');
    expect(errorOf(() => loadPickle(p)).message).toContain('array subclass numpy.dtype is not supported');
    // numpy.ndarray((3,)) called directly
    expect(errorOf(() => loadPickle(bytes('\x80\x02cnumpy\nndarray\nK\x03\x85\x85R.'))).message).toContain('numpy.ndarray directly');
  });
});

describe('broken input', () => {
  it.each(['scaler_p4.pkl', 'scaler_p2.pkl', 'scaler_joblib.pkl', 'tree.pkl', 'arrays_p5.pkl', 'arrays_joblib.pkl'])(
    'every truncation of %s is reported as truncated',
    (file) => {
      const buf = fixture(file);
      for (let n = 1; n < buf.length; n++) {
        const err = errorOf(() => loadPickle(buf.subarray(0, n)));
        expect(err.code, `${file} cut at ${n}: ${err.message}`).toBe('pickle_truncated');
        expect(err.message).toMatch(/^truncated pickle: /);
      }
    },
  );

  it('an empty file, a CSV and an unknown protocol get clear errors', () => {
    expect(errorOf(() => loadPickle(new Uint8Array(0))).message).toBe('empty file: not a pickle');
    expect(errorOf(() => loadPickle(bytes('Date,Open,High\n'))).message).toBe('not a pickle, or corrupt: unknown opcode 0x44 at byte 0');
    expect(errorOf(() => loadPickle(bytes('\x80\x06N.'))).message).toContain('unsupported pickle protocol 6');
    expect(errorOf(() => loadPickle(bytes('BZh91AY&SY'))).message).toContain('bz2-compressed joblib files are not supported');
  });

  it('reads zlib-compressed joblib files but refuses a corrupt one', () => {
    const buf = fixture('scaler_joblib_zlib.pkl');
    expect(isInstance(loadPickle(buf), 'sklearn.preprocessing._data.StandardScaler')).toBe(true);
    expect(errorOf(() => loadPickle(buf.subarray(0, 100))).message).toMatch(/cannot decompress zlib-compressed joblib file/);
  });

  it('never fails with anything but a PickleError on corrupted bytes', () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
    for (const file of ['tree.pkl', 'scaler_joblib.pkl', 'arrays_p4.pkl']) {
      const orig = fixture(file);
      for (let trial = 0; trial < 400; trial++) {
        const buf = Buffer.from(orig);
        const flips = 1 + Math.floor(rand() * 3);
        for (let k = 0; k < flips; k++) buf[Math.floor(rand() * buf.length)] = Math.floor(rand() * 256);
        try {
          loadPickle(buf);
        } catch (e) {
          expect(e, `${file} trial ${trial}: ${(e as Error).message}`).toBeInstanceOf(PickleError);
        }
      }
    }
  });

  it('names the opcode and offset of a malformed stream', () => {
    const err = errorOf(() => loadPickle(bytes('\x80\x02a.')));
    expect(err.message).toBe('malformed pickle: stack underflow (APPEND at byte 2)');
    expect(errorOf(() => loadPickle(bytes('\x80\x02h\x05.'))).message).toContain('memo key 5 was never stored');
  });
});
