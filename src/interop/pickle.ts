/**
 * A safe reader for Python pickles (protocols 0-5) and joblib files, enough to read fitted
 * scikit-learn estimators without Python.
 *
 * It executes nothing. Python's unpickler imports and calls whatever a GLOBAL names; this reader
 * only resolves names on a fixed allowlist (numpy arrays and dtypes, a few scikit-learn classes,
 * joblib's array wrapper, a handful of harmless builtins) and refuses everything else with a
 * {@link PickleError} naming the module and class. An allowed *class* is never called either:
 * instantiating one yields a plain record ({@link PyInstance}: class name, constructor arguments,
 * the state its BUILD opcode would have set). The numpy callables (`_reconstruct`, `scalar`,
 * `_frombuffer`, `dtype`) are re-implemented here as pure decoders of their arguments.
 *
 * Every length read from the stream is checked against the bytes that remain, so a truncated or
 * hostile file fails with a clear error instead of allocating or reading past the end.
 */
import { gunzipSync, inflateSync } from 'node:zlib';
import { ForecastError } from '../errors.js';

/** A pickle that cannot be read: truncated, malformed, unsupported, or naming a forbidden global. */
export class PickleError extends ForecastError {
  constructor(message: string, code = 'pickle_invalid', details?: Record<string, unknown>) {
    super(message, 422, code, details);
  }
}

// ---------------------------------------------------------------------------------------------
// Values

/** A hashable Python value usable as a dict key or set member here. */
export type PyKey = string | number | bigint | boolean | null;

/**
 * What a pickle decodes to. Python lists are JS arrays, tuples are frozen JS arrays
 * ({@link isTuple}), dicts are Maps (never plain objects: no prototype pollution), bytes are
 * Uint8Arrays, ints are numbers (bigint beyond 2^53), numpy scalars are plain numbers/booleans.
 */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyDict
  | Set<PyKey>
  | PyInstance
  | PyGlobal
  | NdArray
  | NumpyDType;

export type PyDict = Map<PyKey, PyValue>;

/** An instance of an allowed class, rebuilt as data: nothing of the class was run. */
export interface PyInstance {
  readonly pyType: 'instance';
  /** `module.QualName` as the pickle spells it, e.g. `sklearn.tree._classes.DecisionTreeRegressor`. */
  readonly className: string;
  /** Arguments of `cls(*args)` (REDUCE) or `cls.__new__(cls, *args)` (NEWOBJ). */
  readonly args: readonly PyValue[];
  readonly kwargs?: PyDict;
  /** What BUILD set: normally the instance `__dict__` (a Map), or whatever `__setstate__` would get. */
  state: PyValue | undefined;
}

/** A reference to an allowed class or function that was not (or cannot be) called. */
export interface PyGlobal {
  readonly pyType: 'global';
  readonly module: string;
  readonly name: string;
}

export type NumericArray =
  | Float64Array
  | Float32Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

export interface NumpyField {
  name: string;
  dtype: NumpyDType;
  /** Byte offset of the field inside one element. */
  offset: number;
}

/** A numpy dtype: kind letter (`f`, `i`, `u`, `b`, `V`, `O`...), item size, byte order, fields. */
export class NumpyDType {
  readonly pyType = 'dtype' as const;
  constructor(
    public kind: string,
    public itemSize: number,
    /** `<` little, `>` big, `|` not applicable, `=` native (treated as little-endian). */
    public byteOrder: '<' | '>' | '|' | '=',
    /** Structured dtypes: the fields in order; null otherwise. */
    public fields: NumpyField[] | null = null,
  ) {}

  get littleEndian(): boolean {
    return this.byteOrder !== '>';
  }

  /** numpy's `dtype.str`, e.g. `<f8`, `|V56`, `|O`. */
  get str(): string {
    return `${this.byteOrder === '=' ? '<' : this.byteOrder}${this.kind}${this.kind === 'O' ? '' : this.itemSize}`;
  }
}

/**
 * A decoded numpy array. `data` (or `fields`, or `objects`) always holds the elements in C
 * (row-major) order, whatever layout the pickle stored; `fortranOrder` records that layout.
 */
export class NdArray {
  readonly pyType = 'ndarray' as const;
  dtype: NumpyDType = new NumpyDType('f', 8, '<');
  shape: number[] = [0];
  fortranOrder = false;
  /** Elements of a plain numeric or bool dtype (bool as 0/1 bytes); null otherwise. */
  data: NumericArray | null = null;
  /** Structured dtypes: one column per field, each in C order. */
  fields: Map<string, NumericArray> | null = null;
  /** Object dtype (pickled element by element): the elements, in C order. */
  objects: PyValue[] | null = null;
  /** False until the array's BUILD state has been applied. */
  built = false;

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

export function isTuple(v: PyValue | undefined): v is PyValue[] {
  return Array.isArray(v) && Object.isFrozen(v);
}

export function isInstance(v: PyValue | undefined, ...classNames: string[]): v is PyInstance {
  return (
    typeof v === 'object' &&
    v !== null &&
    (v as { pyType?: unknown }).pyType === 'instance' &&
    (classNames.length === 0 || classNames.includes((v as PyInstance).className))
  );
}

export function isNdArray(v: PyValue | undefined): v is NdArray {
  return v instanceof NdArray;
}

/** A Python-ish type name for error messages. */
export function pyTypeName(v: PyValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'None';
  switch (typeof v) {
    case 'boolean':
      return 'bool';
    case 'number':
      return Number.isInteger(v) ? 'int' : 'float';
    case 'bigint':
      return 'int';
    case 'string':
      return 'str';
  }
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return isTuple(v) ? 'tuple' : 'list';
  if (v instanceof Map) return 'dict';
  if (v instanceof Set) return 'set';
  if (v instanceof NdArray) return `ndarray of ${v.dtype.str}`;
  if (v instanceof NumpyDType) return 'dtype';
  if ((v as PyGlobal).pyType === 'global') return `${(v as PyGlobal).module}.${(v as PyGlobal).name}`;
  return (v as PyInstance).className;
}

/** Array elements as JS numbers (int64 values must be exact integers within 2^53). */
export function ndarrayToNumbers(a: NdArray, what = 'array'): number[] {
  if (!a.data) throw new PickleError(`${what} has dtype ${a.dtype.str}, not a numeric dtype`, 'pickle_unsupported');
  return typedToNumbers(a.data, what);
}

export function typedToNumbers(data: NumericArray, what = 'array'): number[] {
  const out = new Array<number>(data.length);
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (typeof x === 'bigint') {
      if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new PickleError(`${what}[${i}] = ${x} does not fit a JavaScript number exactly`, 'pickle_unsupported');
      }
      out[i] = Number(x);
    } else out[i] = x;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The allowlist

type GlobalKind =
  | 'class' // an allowed Python class: calling it yields a PyInstance record
  | 'ndarray' // numpy.ndarray: only as an argument (of _reconstruct, or joblib's `subclass`)
  | 'dtype' // numpy.dtype(descr, align, copy)
  | 'reconstruct' // numpy's _reconstruct(ndarray, shape, typecode): an empty array awaiting BUILD
  | 'scalar' // numpy's scalar(dtype, bytes)
  | 'frombuffer' // numpy's _frombuffer(buffer, dtype, shape, order): protocol 5 arrays
  | 'copyreg_reconstructor' // copyreg._reconstructor(cls, object, None): protocol 0/1 instances
  | 'object' // builtins.object: only as an argument of _reconstructor
  | 'codecs_encode' // _codecs.encode(str, 'latin1'): how protocol 2 spells bytes
  | 'bytes'
  | 'bytearray'
  | 'set'
  | 'frozenset'
  | 'ordered_dict';

const NUMPY_GLOBALS: [string, GlobalKind][] = [
  ['numpy.ndarray', 'ndarray'],
  ['numpy.dtype', 'dtype'],
  ['numpy.core.multiarray._reconstruct', 'reconstruct'],
  ['numpy._core.multiarray._reconstruct', 'reconstruct'],
  ['numpy.core.multiarray.scalar', 'scalar'],
  ['numpy._core.multiarray.scalar', 'scalar'],
  ['numpy.core.numeric._frombuffer', 'frombuffer'],
  ['numpy._core.numeric._frombuffer', 'frombuffer'],
];

/** joblib's NumpyArrayWrapper: its array's raw bytes follow its BUILD opcode in the stream. */
export const JOBLIB_ARRAY_WRAPPERS: readonly string[] = [
  'sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper',
  'joblib.numpy_pickle.NumpyArrayWrapper',
];

/** The scikit-learn classes this project reads, under their 0.19 and modern module paths. */
export const SKLEARN_CLASSES: readonly string[] = [
  'sklearn.tree.tree.DecisionTreeRegressor',
  'sklearn.tree._classes.DecisionTreeRegressor',
  'sklearn.tree._tree.Tree',
  'sklearn.preprocessing.data.StandardScaler',
  'sklearn.preprocessing._data.StandardScaler',
  'sklearn.linear_model.base.LinearRegression',
  'sklearn.linear_model._base.LinearRegression',
];

const BUILTIN_GLOBALS: [string, GlobalKind][] = [
  ['copyreg._reconstructor', 'copyreg_reconstructor'],
  ['builtins.object', 'object'],
  ['_codecs.encode', 'codecs_encode'],
  ['builtins.bytes', 'bytes'],
  ['builtins.bytearray', 'bytearray'],
  ['builtins.set', 'set'],
  ['builtins.frozenset', 'frozenset'],
  ['collections.OrderedDict', 'ordered_dict'],
];

/** Python 2 module names, as Python 3's unpickler maps them (`_compat_pickle`). */
const PY2_MODULES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

export interface PickleOptions {
  /** Further classes (`module.QualName`) to rebuild as {@link PyInstance} records. */
  extraClasses?: readonly string[];
  /** Cap on a joblib file's decompressed size (default 512 MiB). */
  maxDecompressedBytes?: number;
}

function buildAllowlist(extra: readonly string[] = []): Map<string, GlobalKind> {
  const m = new Map<string, GlobalKind>([...NUMPY_GLOBALS, ...BUILTIN_GLOBALS]);
  for (const c of [...SKLEARN_CLASSES, ...JOBLIB_ARRAY_WRAPPERS, ...extra]) m.set(c, 'class');
  return m;
}

const DEFAULT_ALLOWLIST = buildAllowlist();

// ---------------------------------------------------------------------------------------------
// Entry point

/**
 * Decode a pickle or a joblib file (plain, or zlib/gzip compressed as `joblib.dump(compress=...)`
 * writes). Returns the unpickled value; throws {@link PickleError}.
 */
export function loadPickle(input: Uint8Array, options: PickleOptions = {}): PyValue {
  // A plain Uint8Array view: Buffer#slice would share memory where we mean to copy.
  const plain = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const buf = decompressJoblib(plain, options.maxDecompressedBytes ?? 512 * 1024 * 1024);
  const allow = options.extraClasses?.length ? buildAllowlist(options.extraClasses) : DEFAULT_ALLOWLIST;
  return new Unpickler(buf, 0, allow).load().value;
}

function decompressJoblib(buf: Uint8Array, maxOutputLength: number): Uint8Array {
  if (buf.length === 0) throw new PickleError('empty file: not a pickle', 'pickle_truncated');
  const b0 = buf[0];
  const startsWith = (...bytes: number[]) => bytes.every((x, i) => buf[i] === x);
  let kind: string | null = null;
  if (b0 === 0x78) kind = 'zlib';
  else if (startsWith(0x1f, 0x8b)) kind = 'gzip';
  if (kind) {
    try {
      const out = kind === 'zlib' ? inflateSync(buf, { maxOutputLength }) : gunzipSync(buf, { maxOutputLength });
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    } catch (e) {
      throw new PickleError(`cannot decompress ${kind}-compressed joblib file: ${(e as Error).message}`, 'pickle_invalid');
    }
  }
  const unsupported: [number[], string][] = [
    [[0x42, 0x5a, 0x68], 'bz2'],
    [[0xfd, 0x37, 0x7a, 0x58, 0x5a], 'xz'],
    [[0x5d, 0x00], 'lzma'],
    [[0x04, 0x22, 0x4d, 0x18], 'lz4'],
    [[0x5a, 0x46], 'old joblib zlib (ZF)'],
  ];
  for (const [magic, name] of unsupported) {
    if (startsWith(...magic)) {
      throw new PickleError(`${name}-compressed joblib files are not supported: re-save with compress=0, zlib or gzip`, 'pickle_unsupported');
    }
  }
  return buf;
}

// ---------------------------------------------------------------------------------------------
// The machine

const OPCODE_NAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT',
  0x4a: 'BININT', 0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID',
  0x51: 'BINPERSID', 0x52: 'REDUCE', 0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND', 0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT',
  0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET', 0x69: 'INST', 0x6a: 'LONG_BINGET',
  0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT', 0x72: 'LONG_BINPUT',
  0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT',
  0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1',
  0x86: 'TUPLE2', 0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4',
  0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8',
  0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX',
  0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

function latin1ToBytes(s: string, what: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new PickleError(`${what}: character U+${c.toString(16)} is not latin-1`, 'pickle_invalid');
    out[i] = c;
  }
  return out;
}

function bytesToLatin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

function intFromBigint(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function tuple(items: PyValue[]): PyValue[] {
  return Object.freeze(items) as PyValue[];
}

function asKey(v: PyValue, at: string): PyKey {
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return v;
  throw new PickleError(`${at}: a ${pyTypeName(v)} as dict key or set member is not supported`, 'pickle_unsupported');
}

class Unpickler {
  private pos: number;
  private readonly view: DataView;
  private stack: PyValue[] = [];
  private readonly metaStack: PyValue[][] = [];
  private readonly memo = new Map<number, PyValue>();
  /** Offset of the opcode being executed, for error messages. */
  private opAt = 0;
  private op = 0;

  constructor(
    private readonly buf: Uint8Array,
    start: number,
    private readonly allow: Map<string, GlobalKind>,
    /** Whether joblib array wrappers read their data from the stream (not inside joblib's nested pickles). */
    private readonly joblibArrays = true,
  ) {
    this.pos = start;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  // ---- errors and raw reads

  private where(): string {
    return `${OPCODE_NAMES[this.op] ?? 'opcode'} at byte ${this.opAt}`;
  }

  private malformed(msg: string): PickleError {
    return new PickleError(`malformed pickle: ${msg} (${this.where()})`, 'pickle_invalid', { offset: this.opAt });
  }

  private need(n: number, what: string): void {
    if (!Number.isSafeInteger(n) || n < 0) throw this.malformed(`bad length ${n} for ${what}`);
    const left = this.buf.length - this.pos;
    if (n > left) {
      throw new PickleError(
        `truncated pickle: ${what} needs ${n} bytes at byte ${this.pos} but only ${left} remain (${this.where()})`,
        'pickle_truncated',
        { offset: this.pos },
      );
    }
  }

  private take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  private u8(): number {
    this.need(1, 'a 1-byte argument');
    return this.buf[this.pos++];
  }

  private u16(): number {
    this.need(2, 'a 2-byte argument');
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  private i32(): number {
    this.need(4, 'a 4-byte argument');
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  private u32(): number {
    this.need(4, 'a 4-byte argument');
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  private u64(): number {
    this.need(8, 'an 8-byte argument');
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.malformed(`length ${v} is too large`);
    return Number(v);
  }

  private line(): string {
    const end = this.buf.indexOf(0x0a, this.pos);
    if (end < 0) {
      throw new PickleError(`truncated pickle: no end of line after byte ${this.pos} (${this.where()})`, 'pickle_truncated');
    }
    const s = bytesToLatin1(this.buf.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  // ---- stack

  /** Push through a method: `this.stack.push(this.popMark())` would push onto the stack popMark replaced. */
  private push(v: PyValue): void {
    this.stack.push(v);
  }

  private pop(): PyValue {
    if (this.stack.length === 0) throw this.malformed('stack underflow');
    return this.stack.pop() as PyValue;
  }

  private top(): PyValue {
    if (this.stack.length === 0) throw this.malformed('stack underflow');
    return this.stack[this.stack.length - 1];
  }

  private popMark(): PyValue[] {
    const items = this.stack;
    const prev = this.metaStack.pop();
    if (!prev) throw this.malformed('no MARK on the stack');
    this.stack = prev;
    return items;
  }

  private memoGet(i: number): PyValue {
    if (!this.memo.has(i)) throw this.malformed(`memo key ${i} was never stored`);
    return this.memo.get(i) as PyValue;
  }

  // ---- the loop

  load(): { value: PyValue; end: number } {
    for (;;) {
      this.opAt = this.pos;
      if (this.pos >= this.buf.length) {
        throw new PickleError(`truncated pickle: ended at byte ${this.pos} before its STOP opcode`, 'pickle_truncated', {
          offset: this.pos,
        });
      }
      const op = (this.op = this.buf[this.pos++]);
      switch (op) {
        case 0x80: {
          const proto = this.u8();
          if (proto > 5) throw new PickleError(`unsupported pickle protocol ${proto} (this reader knows 0-5)`, 'pickle_unsupported');
          break;
        }
        case 0x95: // FRAME: framing only tells how the writer buffered; the payload follows inline.
          this.u64();
          break;
        case 0x2e: {
          const value = this.pop();
          return { value, end: this.pos };
        }
        case 0x28:
          this.metaStack.push(this.stack);
          this.stack = [];
          break;
        case 0x30:
          if (this.stack.length > 0) this.stack.pop();
          else this.popMark();
          break;
        case 0x31:
          this.popMark();
          break;
        case 0x32:
          this.push(this.top());
          break;
        case 0x4e:
          this.push(null);
          break;
        case 0x88:
          this.push(true);
          break;
        case 0x89:
          this.push(false);
          break;
        case 0x49: {
          const s = this.line();
          if (s === '01') this.push(true);
          else if (s === '00') this.push(false);
          else this.push(this.parseIntText(s));
          break;
        }
        case 0x4c:
          this.push(this.parseIntText(this.line().replace(/L$/, '')));
          break;
        case 0x4a:
          this.push(this.i32());
          break;
        case 0x4b:
          this.push(this.u8());
          break;
        case 0x4d:
          this.push(this.u16());
          break;
        case 0x8a:
          this.push(this.longBytes(this.take(this.u8(), 'LONG1 digits')));
          break;
        case 0x8b: {
          const n = this.i32();
          if (n < 0) throw this.malformed('negative LONG4 length');
          this.push(this.longBytes(this.take(n, 'LONG4 digits')));
          break;
        }
        case 0x46:
          this.push(this.parseFloatText(this.line()));
          break;
        case 0x47: {
          this.need(8, 'BINFLOAT');
          this.push(this.view.getFloat64(this.pos, false));
          this.pos += 8;
          break;
        }
        case 0x53:
          this.push(this.parseStringRepr(this.line()));
          break;
        case 0x54: {
          // Python 2 `str`: read as latin-1 text, like `pickle.load(encoding='latin1')`.
          const n = this.i32();
          if (n < 0) throw this.malformed('negative BINSTRING length');
          this.push(bytesToLatin1(this.take(n, 'BINSTRING')));
          break;
        }
        case 0x55:
          this.push(bytesToLatin1(this.take(this.u8(), 'SHORT_BINSTRING')));
          break;
        case 0x56:
          this.push(this.rawUnicodeEscape(this.line()));
          break;
        case 0x58:
          this.push(this.text(this.take(this.u32(), 'BINUNICODE')));
          break;
        case 0x8c:
          this.push(this.text(this.take(this.u8(), 'SHORT_BINUNICODE')));
          break;
        case 0x8d:
          this.push(this.text(this.take(this.u64(), 'BINUNICODE8')));
          break;
        case 0x42:
          this.push(this.take(this.u32(), 'BINBYTES').slice());
          break;
        case 0x43:
          this.push(this.take(this.u8(), 'SHORT_BINBYTES').slice());
          break;
        case 0x8e:
          this.push(this.take(this.u64(), 'BINBYTES8').slice());
          break;
        case 0x96:
          this.push(this.take(this.u64(), 'BYTEARRAY8').slice());
          break;
        case 0x97:
          throw new PickleError('pickle uses out-of-band buffers (protocol 5 NEXT_BUFFER), which are not supported', 'pickle_unsupported');
        case 0x98:
          this.top();
          break;
        case 0x29:
          this.push(tuple([]));
          break;
        case 0x74:
          this.push(tuple(this.popMark()));
          break;
        case 0x85:
          this.push(tuple([this.pop()]));
          break;
        case 0x86: {
          const b = this.pop();
          const a = this.pop();
          this.push(tuple([a, b]));
          break;
        }
        case 0x87: {
          const c = this.pop();
          const b = this.pop();
          const a = this.pop();
          this.push(tuple([a, b, c]));
          break;
        }
        case 0x5d:
          this.push([]);
          break;
        case 0x6c:
          this.push(this.popMark());
          break;
        case 0x61: {
          const v = this.pop();
          this.listOf(this.top()).push(v);
          break;
        }
        case 0x65: {
          const items = this.popMark();
          this.listOf(this.top()).push(...items);
          break;
        }
        case 0x7d:
          this.push(new Map());
          break;
        case 0x64: {
          const items = this.popMark();
          const d: PyDict = new Map();
          this.setItems(d, items);
          this.push(d);
          break;
        }
        case 0x73: {
          const v = this.pop();
          const k = this.pop();
          this.setItems(this.dictOf(this.top()), [k, v]);
          break;
        }
        case 0x75: {
          const items = this.popMark();
          this.setItems(this.dictOf(this.top()), items);
          break;
        }
        case 0x8f:
          this.push(new Set<PyKey>());
          break;
        case 0x90: {
          const items = this.popMark();
          const s = this.top();
          if (!(s instanceof Set)) throw this.malformed(`ADDITEMS on a ${pyTypeName(s)}`);
          for (const it of items) s.add(asKey(it, this.where()));
          break;
        }
        case 0x91: {
          const items = this.popMark();
          this.push(new Set(items.map((it) => asKey(it, this.where()))));
          break;
        }
        case 0x67:
          this.push(this.memoGet(this.parseIndexText(this.line())));
          break;
        case 0x68:
          this.push(this.memoGet(this.u8()));
          break;
        case 0x6a:
          this.push(this.memoGet(this.u32()));
          break;
        case 0x70:
          this.memo.set(this.parseIndexText(this.line()), this.top());
          break;
        case 0x71:
          this.memo.set(this.u8(), this.top());
          break;
        case 0x72:
          this.memo.set(this.u32(), this.top());
          break;
        case 0x94:
          this.memo.set(this.memo.size, this.top());
          break;
        case 0x63: {
          const module = this.line();
          const name = this.line();
          this.push(this.resolveGlobal(module, name));
          break;
        }
        case 0x93: {
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') throw this.malformed('STACK_GLOBAL needs two strings');
          this.push(this.resolveGlobal(module, name));
          break;
        }
        case 0x52: {
          const args = this.pop();
          const fn = this.pop();
          if (!isTuple(args)) throw this.malformed(`REDUCE arguments are a ${pyTypeName(args)}, not a tuple`);
          this.push(this.call(fn, args));
          break;
        }
        case 0x81: {
          const args = this.pop();
          const cls = this.pop();
          if (!isTuple(args)) throw this.malformed(`NEWOBJ arguments are a ${pyTypeName(args)}, not a tuple`);
          this.push(this.newObject(cls, args));
          break;
        }
        case 0x92: {
          const kwargs = this.pop();
          const args = this.pop();
          const cls = this.pop();
          if (!isTuple(args) || !(kwargs instanceof Map)) throw this.malformed('NEWOBJ_EX needs a tuple and a dict');
          this.push(this.newObject(cls, args, kwargs));
          break;
        }
        case 0x69: {
          const module = this.line();
          const name = this.line();
          const cls = this.resolveGlobal(module, name);
          this.push(this.newObject(cls, this.popMark()));
          break;
        }
        case 0x6f: {
          const items = this.popMark();
          if (items.length === 0) throw this.malformed('OBJ without a class');
          this.push(this.newObject(items[0], items.slice(1)));
          break;
        }
        case 0x62: {
          const state = this.pop();
          this.build(this.top(), state);
          break;
        }
        case 0x82:
        case 0x83:
        case 0x84:
          throw new PickleError(
            `pickle uses the copyreg extension registry (${OPCODE_NAMES[op]}), which can name any global: refused`,
            'pickle_forbidden_global',
          );
        case 0x50:
        case 0x51:
          throw new PickleError(`pickle uses persistent ids (${OPCODE_NAMES[op]}), which are not supported`, 'pickle_unsupported');
        default:
          throw new PickleError(
            `not a pickle, or corrupt: unknown opcode 0x${op.toString(16).padStart(2, '0')} at byte ${this.opAt}`,
            'pickle_invalid',
            { offset: this.opAt },
          );
      }
    }
  }

  // ---- scalars from text and bytes

  private text(b: Uint8Array): string {
    try {
      return utf8.decode(b);
    } catch {
      throw this.malformed('string is not valid UTF-8');
    }
  }

  private parseIntText(s: string): number | bigint {
    if (!/^[+-]?\d+$/.test(s.trim())) throw this.malformed(`bad integer ${JSON.stringify(s)}`);
    return intFromBigint(BigInt(s.trim()));
  }

  private parseIndexText(s: string): number {
    const v = this.parseIntText(s);
    if (typeof v !== 'number' || v < 0) throw this.malformed(`bad memo index ${JSON.stringify(s)}`);
    return v;
  }

  private parseFloatText(s: string): number {
    const t = s.trim().toLowerCase();
    if (t === 'inf' || t === '+inf') return Infinity;
    if (t === '-inf') return -Infinity;
    if (t === 'nan' || t === '-nan') return NaN;
    const v = Number(t);
    if (t === '' || Number.isNaN(v)) throw this.malformed(`bad float ${JSON.stringify(s)}`);
    return v;
  }

  /** Two's-complement little-endian integer (LONG1/LONG4). */
  private longBytes(b: Uint8Array): number | bigint {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return intFromBigint(v);
  }

  /** Protocol 0 STRING: a Python 2 `repr` of a str, read as latin-1 text. */
  private parseStringRepr(s: string): string {
    const q = s[0];
    if (s.length < 2 || (q !== "'" && q !== '"') || s[s.length - 1] !== q) throw this.malformed('STRING argument is not quoted');
    const body = s.slice(1, -1);
    let out = '';
    for (let i = 0; i < body.length; i++) {
      const c = body[i];
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = body[++i];
      const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v' };
      if (e in simple) out += simple[e];
      else if (e === 'x') {
        out += String.fromCharCode(parseInt(body.slice(i + 1, i + 3), 16));
        i += 2;
      } else if (e >= '0' && e <= '7') {
        const m = /^[0-7]{1,3}/.exec(body.slice(i)) as RegExpExecArray;
        out += String.fromCharCode(parseInt(m[0], 8) & 0xff);
        i += m[0].length - 1;
      } else out += '\\' + (e ?? '');
    }
    return out;
  }

  /** Protocol 0 UNICODE: raw-unicode-escape (only \uXXXX and \UXXXXXXXX are escapes). */
  private rawUnicodeEscape(s: string): string {
    return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, u4?: string, u8?: string) =>
      String.fromCodePoint(parseInt((u4 ?? u8) as string, 16)),
    );
  }

  // ---- containers

  private listOf(v: PyValue): PyValue[] {
    if (!Array.isArray(v) || Object.isFrozen(v)) throw this.malformed(`APPEND on a ${pyTypeName(v)}`);
    return v;
  }

  private dictOf(v: PyValue): PyDict {
    if (!(v instanceof Map)) throw this.malformed(`SETITEM on a ${pyTypeName(v)}`);
    return v;
  }

  private setItems(d: PyDict, items: PyValue[]): void {
    if (items.length % 2 !== 0) throw this.malformed('odd number of items for a dict');
    for (let i = 0; i < items.length; i += 2) d.set(asKey(items[i], this.where()), items[i + 1]);
  }

  // ---- globals and calls

  private resolveGlobal(rawModule: string, name: string): PyGlobal {
    const module = PY2_MODULES[rawModule] ?? rawModule;
    if (!this.allow.has(`${module}.${name}`)) {
      throw new PickleError(
        `pickle refers to ${module}.${name}, which is not an allowed class: this reader only rebuilds numpy arrays and the scikit-learn models it knows, and never runs code from a pickle`,
        'pickle_forbidden_global',
        { module, name },
      );
    }
    return { pyType: 'global', module, name };
  }

  private kindOf(v: PyValue): GlobalKind | null {
    if (typeof v !== 'object' || v === null || (v as PyGlobal).pyType !== 'global') return null;
    const g = v as PyGlobal;
    return this.allow.get(`${g.module}.${g.name}`) ?? null;
  }

  private newObject(cls: PyValue, args: readonly PyValue[], kwargs?: PyDict): PyValue {
    const kind = this.kindOf(cls);
    if (kind === 'class') {
      const g = cls as PyGlobal;
      const inst: PyInstance = { pyType: 'instance', className: `${g.module}.${g.name}`, args: tuple([...args]), state: undefined };
      return kwargs && kwargs.size > 0 ? { ...inst, kwargs } : inst;
    }
    if (kind === 'ordered_dict' || kind === 'set' || kind === 'frozenset' || kind === 'bytes' || kind === 'bytearray') {
      return this.call(cls, args);
    }
    throw this.malformed(`cannot create an instance of ${pyTypeName(cls)}`);
  }

  private call(fn: PyValue, args: readonly PyValue[]): PyValue {
    const kind = this.kindOf(fn);
    const name = pyTypeName(fn);
    const arity = (min: number, max = min) => {
      if (args.length < min || args.length > max) throw this.malformed(`${name} called with ${args.length} arguments`);
    };
    switch (kind) {
      case 'class':
        return this.newObject(fn, args);
      case 'dtype':
        arity(1, 3);
        if (typeof args[0] !== 'string') throw this.malformed(`numpy.dtype of a ${pyTypeName(args[0])}`);
        return parseDescr(args[0], (m) => this.malformed(m));
      case 'reconstruct': {
        arity(3);
        if (this.kindOf(args[0]) !== 'ndarray') {
          throw new PickleError(`numpy array subclass ${pyTypeName(args[0])} is not supported (only numpy.ndarray)`, 'pickle_unsupported');
        }
        return new NdArray();
      }
      case 'scalar':
        arity(1, 2);
        return this.numpyScalar(args[0], args[1]);
      case 'frombuffer': {
        arity(4);
        const [b, dtype, shape, order] = args;
        const bytes = typeof b === 'string' ? latin1ToBytes(b, '_frombuffer') : b;
        if (!(bytes instanceof Uint8Array) || !(dtype instanceof NumpyDType) || (order !== 'C' && order !== 'F')) {
          throw this.malformed('_frombuffer needs (bytes, dtype, shape, "C"|"F")');
        }
        const arr = new NdArray();
        this.fillArray(arr, this.shapeOf(shape), dtype, order === 'F', bytes);
        return arr;
      }
      case 'copyreg_reconstructor': {
        arity(3);
        if (this.kindOf(args[1]) !== 'object' || args[2] !== null) {
          throw new PickleError(`copyreg._reconstructor with base ${pyTypeName(args[1])} is not supported`, 'pickle_unsupported');
        }
        return this.newObject(args[0], []);
      }
      case 'codecs_encode': {
        arity(2);
        const [s, enc] = args;
        if (typeof s !== 'string' || (enc !== 'latin1' && enc !== 'latin-1')) throw this.malformed('_codecs.encode needs (str, "latin1")');
        return latin1ToBytes(s, '_codecs.encode');
      }
      case 'bytes':
      case 'bytearray': {
        arity(0, 2);
        if (args.length === 0) return new Uint8Array(0);
        const [s] = args;
        if (s instanceof Uint8Array) return s.slice();
        if (typeof s === 'string') return latin1ToBytes(s, name);
        if (Array.isArray(s) && s.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < 256)) {
          return Uint8Array.from(s as number[]);
        }
        throw this.malformed(`${name} of a ${pyTypeName(s)}`);
      }
      case 'set':
      case 'frozenset': {
        arity(0, 1);
        const items = args.length ? args[0] : [];
        if (!Array.isArray(items)) throw this.malformed(`${name} of a ${pyTypeName(items)}`);
        return new Set(items.map((it) => asKey(it, this.where())));
      }
      case 'ordered_dict': {
        arity(0, 1);
        const d: PyDict = new Map();
        const items = args.length ? args[0] : [];
        if (!Array.isArray(items)) throw this.malformed(`OrderedDict of a ${pyTypeName(items)}`);
        for (const pair of items) {
          if (!Array.isArray(pair) || pair.length !== 2) throw this.malformed('OrderedDict item is not a pair');
          d.set(asKey(pair[0], this.where()), pair[1]);
        }
        return d;
      }
      case 'ndarray':
        throw new PickleError('pickle calls numpy.ndarray directly, which is not supported', 'pickle_unsupported');
      default:
        throw this.malformed(`cannot call a ${name}`);
    }
  }

  // ---- BUILD

  private build(target: PyValue, state: PyValue): void {
    if (target instanceof NdArray) {
      this.buildArray(target, state);
      return;
    }
    if (target instanceof NumpyDType) {
      applyDTypeState(target, state, (m) => this.malformed(m));
      return;
    }
    if (isInstance(target)) {
      if (target.state instanceof Map && state instanceof Map) for (const [k, v] of state) target.state.set(k, v);
      else target.state = state;
      if (this.joblibArrays && JOBLIB_ARRAY_WRAPPERS.includes(target.className)) {
        // joblib writes the wrapped array's bytes right after this BUILD, outside pickle's
        // opcodes, and its unpickler replaces the wrapper by the array (joblib/numpy_pickle.py).
        this.stack[this.stack.length - 1] = this.readJoblibArray(target);
      }
      return;
    }
    if (target instanceof Map && state instanceof Map) {
      for (const [k, v] of state) target.set(k, v);
      return;
    }
    throw this.malformed(`BUILD on a ${pyTypeName(target)}`);
  }

  private shapeOf(v: PyValue): number[] {
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return [v];
    if (!Array.isArray(v)) throw this.malformed(`array shape is a ${pyTypeName(v)}`);
    return v.map((d) => {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) throw this.malformed(`bad array dimension ${String(d)}`);
      return d;
    });
  }

  /** ndarray.__setstate__: `(version, shape, dtype, is_fortran, rawdata)` or the 4-tuple without version. */
  private buildArray(arr: NdArray, state: PyValue): void {
    if (arr.built) throw this.malformed('array state set twice');
    if (!Array.isArray(state) || (state.length !== 5 && state.length !== 4)) {
      throw this.malformed(`ndarray state is a ${pyTypeName(state)}, not a 4- or 5-tuple`);
    }
    const [shape, dtype, fortran, raw] = state.length === 5 ? state.slice(1) : state;
    if (!(dtype instanceof NumpyDType)) throw this.malformed(`ndarray dtype is a ${pyTypeName(dtype)}`);
    const dims = this.shapeOf(shape);
    const isF = fortran === true || fortran === 1;
    if (dtype.kind === 'O') {
      if (!Array.isArray(raw)) throw this.malformed('object array data is not a list');
      arr.dtype = dtype;
      arr.shape = dims;
      arr.fortranOrder = isF;
      if (raw.length !== arr.size) throw this.malformed(`object array holds ${raw.length} items, shape needs ${arr.size}`);
      arr.objects = isF ? fortranToC(raw, dims) : [...raw];
      arr.built = true;
      return;
    }
    const bytes = typeof raw === 'string' ? latin1ToBytes(raw, 'array data') : raw;
    if (!(bytes instanceof Uint8Array)) throw this.malformed(`ndarray data is a ${pyTypeName(raw)}, not bytes`);
    this.fillArray(arr, dims, dtype, isF, bytes);
  }

  private fillArray(arr: NdArray, shape: number[], dtype: NumpyDType, fortran: boolean, bytes: Uint8Array): void {
    const count = shape.reduce((a, b) => a * b, 1);
    if (dtype.kind === 'O') throw new PickleError('object arrays stored as raw bytes cannot be read', 'pickle_unsupported');
    if (count * dtype.itemSize !== bytes.length) {
      throw this.malformed(`array of shape (${shape.join(', ')}) and dtype ${dtype.str} needs ${count * dtype.itemSize} bytes, got ${bytes.length}`);
    }
    arr.dtype = dtype;
    arr.shape = shape;
    arr.fortranOrder = fortran;
    const reorder = <T extends ArrayLike<unknown>>(a: T): T => (fortran ? fortranToC(a, shape) : a);
    if (dtype.fields) {
      const cols = new Map<string, NumericArray>();
      for (const f of dtype.fields) {
        if (f.offset < 0 || f.offset + f.dtype.itemSize > dtype.itemSize) throw this.malformed(`field ${f.name} lies outside its item`);
        cols.set(f.name, reorder(decodeElements(bytes, f.offset, dtype.itemSize, count, f.dtype)));
      }
      arr.fields = cols;
    } else {
      arr.data = reorder(decodeElements(bytes, 0, dtype.itemSize, count, dtype));
    }
    arr.built = true;
  }

  private numpyScalar(dtype: PyValue, raw: PyValue): PyValue {
    if (!(dtype instanceof NumpyDType)) throw this.malformed(`numpy scalar with dtype ${pyTypeName(dtype)}`);
    if (dtype.kind === 'O' || dtype.fields) throw new PickleError(`numpy scalar of dtype ${dtype.str} is not supported`, 'pickle_unsupported');
    const bytes = typeof raw === 'string' ? latin1ToBytes(raw, 'numpy scalar') : raw;
    if (!(bytes instanceof Uint8Array) || bytes.length !== dtype.itemSize) {
      throw this.malformed(`numpy scalar of dtype ${dtype.str} needs ${dtype.itemSize} bytes`);
    }
    const x = decodeElements(bytes, 0, dtype.itemSize, 1, dtype)[0];
    if (dtype.kind === 'b') return x !== 0;
    return typeof x === 'bigint' ? intFromBigint(x) : x;
  }

  /** The array behind a joblib NumpyArrayWrapper, read from the bytes after its BUILD. */
  private readJoblibArray(w: PyInstance): NdArray {
    const st = w.state;
    if (!(st instanceof Map)) throw this.malformed('NumpyArrayWrapper without a state dict');
    const shape = this.shapeOf(st.get('shape') ?? null);
    const order = st.get('order');
    const dtype = st.get('dtype');
    if (this.kindOf(st.get('subclass') ?? null) !== 'ndarray') {
      throw new PickleError(`joblib array subclass ${pyTypeName(st.get('subclass'))} is not supported (only numpy.ndarray)`, 'pickle_unsupported');
    }
    if (!(dtype instanceof NumpyDType) || (order !== 'C' && order !== 'F')) throw this.malformed('NumpyArrayWrapper needs a dtype and order C or F');
    if (dtype.kind === 'O') {
      // joblib pickles object arrays as a nested, ordinary pickle right here (read by the standard
      // unpickler, so wrappers inside it are not arrays).
      const nested = new Unpickler(this.buf, this.pos, this.allow, false).load();
      if (!(nested.value instanceof NdArray)) throw this.malformed('joblib object array is not an array');
      this.pos = nested.end;
      return nested.value;
    }
    // joblib >= 1.2 aligns the data: one byte giving the padding length, then that many bytes.
    const align = st.get('numpy_array_alignment_bytes');
    if (align !== undefined && align !== null) this.take(this.u8(), 'joblib alignment padding');
    const count = shape.reduce((a, b) => a * b, 1);
    const bytes = this.take(count * dtype.itemSize, `joblib array data (shape (${shape.join(', ')}), ${dtype.str})`);
    const arr = new NdArray();
    this.fillArray(arr, shape, dtype, order === 'F', bytes);
    return arr;
  }
}

// ---------------------------------------------------------------------------------------------
// numpy dtypes and element decoding

const NAMED_DTYPES: Record<string, string> = {
  float64: 'f8', float32: 'f4', float16: 'f2', int64: 'i8', int32: 'i4', int16: 'i2', int8: 'i1',
  uint64: 'u8', uint32: 'u4', uint16: 'u2', uint8: 'u1', bool: 'b1', object: 'O8',
};

function parseDescr(descr: string, err: (m: string) => Error): NumpyDType {
  const m = /^([<>|=]?)([biufcVOSUMm])(\d*)$/.exec(NAMED_DTYPES[descr] ?? descr);
  if (!m) throw err(`unknown numpy dtype ${JSON.stringify(descr)}`);
  const [, order, kind] = m;
  const size = m[3] === '' ? (kind === 'b' ? 1 : kind === 'O' ? 8 : 0) : Number(m[3]);
  if ('cMmSU'.includes(kind)) {
    throw new PickleError(`numpy dtype ${descr} is not supported (numeric, bool and structured dtypes only)`, 'pickle_unsupported');
  }
  const bo = (order || (size <= 1 || kind === 'V' || kind === 'O' ? '|' : '=')) as NumpyDType['byteOrder'];
  return new NumpyDType(kind, size, bo);
}

/** numpy's `dtype.__setstate__` (descriptor.c): tuples of 6 to 9 items. */
function applyDTypeState(dt: NumpyDType, state: PyValue, err: (m: string) => Error): void {
  if (!Array.isArray(state) || state.length < 6 || state.length > 9) throw err(`dtype state is a ${pyTypeName(state)}, not a 6- to 9-tuple`);
  const [, endian, subarray] = state;
  let names: PyValue;
  let fields: PyValue;
  let elsize: PyValue;
  if (state.length === 6) {
    fields = state[3];
    elsize = state[4];
    names = fields instanceof Map && fields.has(-1) ? (fields.get(-1) as PyValue) : fields instanceof Map ? [...fields.keys()] : null;
  } else {
    names = state[3];
    fields = state[4];
    elsize = state[5];
  }
  if (endian !== '<' && endian !== '>' && endian !== '|' && endian !== '=') throw err(`bad dtype byte order ${String(endian)}`);
  if (subarray !== null) throw new PickleError('numpy sub-array dtypes are not supported', 'pickle_unsupported');
  dt.byteOrder = endian;
  if (typeof elsize === 'number' && elsize > 0 && (dt.kind === 'V' || dt.kind === 'O')) dt.itemSize = elsize;
  if (fields !== null) {
    if (!(fields instanceof Map) || !Array.isArray(names)) throw err('structured dtype without names and fields');
    dt.fields = names.map((n) => {
      const f = typeof n === 'string' ? fields.get(n) : undefined;
      if (typeof n !== 'string' || !Array.isArray(f) || f.length < 2 || !(f[0] instanceof NumpyDType) || typeof f[1] !== 'number') {
        throw err(`structured dtype field ${String(n)} is not (dtype, offset)`);
      }
      if (f[0].fields) throw new PickleError('nested structured dtypes are not supported', 'pickle_unsupported');
      return { name: n, dtype: f[0], offset: f[1] };
    });
  }
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** `count` elements of a plain dtype, `stride` bytes apart starting at `offset`. */
function decodeElements(bytes: Uint8Array, offset: number, stride: number, count: number, dt: NumpyDType): NumericArray {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = dt.littleEndian;
  const key = `${dt.kind}${dt.itemSize}`;
  const fill = <T extends NumericArray>(out: T, get: (o: number) => number | bigint): T => {
    for (let i = 0, o = offset; i < count; i++, o += stride) (out as unknown as (number | bigint)[])[i] = get(o);
    return out;
  };
  switch (key) {
    case 'f8':
      return fill(new Float64Array(count), (o) => v.getFloat64(o, le));
    case 'f4':
      return fill(new Float32Array(count), (o) => v.getFloat32(o, le));
    case 'f2':
      return fill(new Float32Array(count), (o) => halfToFloat(v.getUint16(o, le)));
    case 'i1':
      return fill(new Int8Array(count), (o) => v.getInt8(o));
    case 'u1':
    case 'b1':
      return fill(new Uint8Array(count), (o) => v.getUint8(o));
    case 'i2':
      return fill(new Int16Array(count), (o) => v.getInt16(o, le));
    case 'u2':
      return fill(new Uint16Array(count), (o) => v.getUint16(o, le));
    case 'i4':
      return fill(new Int32Array(count), (o) => v.getInt32(o, le));
    case 'u4':
      return fill(new Uint32Array(count), (o) => v.getUint32(o, le));
    case 'i8':
      return fill(new BigInt64Array(count), (o) => v.getBigInt64(o, le));
    case 'u8':
      return fill(new BigUint64Array(count), (o) => v.getBigUint64(o, le));
    default:
      throw new PickleError(`numpy dtype ${dt.str} is not supported`, 'pickle_unsupported');
  }
}

/** Elements stored in Fortran (column-major) order, returned in C (row-major) order. */
function fortranToC<T extends ArrayLike<unknown>>(src: T, shape: number[]): T {
  const k = shape.length;
  const n = src.length;
  if (k < 2 || n === 0) return src;
  const dst = (Array.isArray(src) ? new Array(n) : new (src.constructor as new (n: number) => T)(n)) as unknown as unknown[];
  const fStride = new Array<number>(k);
  fStride[0] = 1;
  for (let d = 1; d < k; d++) fStride[d] = fStride[d - 1] * shape[d - 1];
  const idx = new Array<number>(k).fill(0);
  let f = 0;
  for (let c = 0; c < n; c++) {
    dst[c] = src[f];
    for (let d = k - 1; d >= 0; d--) {
      idx[d]++;
      f += fStride[d];
      if (idx[d] < shape[d]) break;
      f -= fStride[d] * shape[d];
      idx[d] = 0;
    }
  }
  return dst as unknown as T;
}
