#!/usr/bin/python3
"""Generate the small pickles and expected values under test/fixtures/pickles/.

Run with Debian's Python and scikit-learn 1.2.1 (apt-get install python3-sklearn):

    /usr/bin/python3 scripts/make_pickle_fixtures.py

The TypeScript tests (test/interop, test/models) read what this writes:
- scaler_*.pkl + scaler.json: one StandardScaler pickled by plain pickle (protocols 2, 4, 5) and by
  joblib.dump (modern `joblib.numpy_pickle.NumpyArrayWrapper`, plain and zlib-compressed).
- tree.pkl, tree_joblib.pkl + tree.json: a small DecisionTreeRegressor (sklearn 1.2.1 module
  paths) and its expected tree_ arrays; tree_multi.pkl: a two-output tree (must be refused).
- linear.pkl + linear.json: a LinearRegression; linear_multi.pkl: two outputs (must be refused).
- arrays_*.pkl + arrays.json: assorted numpy arrays and scalars (Fortran order, big-endian,
  structured, float16, bool, object) and plain Python values, by pickle (protocols 0-5) and by joblib.
- malicious_*.pkl + malicious.json: hand-written pickles naming os.system & co. They are written
  byte by byte and never loaded.
- linear_cases.json, cv.json, metrics.json: scikit-learn's answers on synthetic data, to compare
  LinearRegression, TimeSeriesSplit and the regression metrics against.

Floats go to JSON as Python's shortest round-trip repr, which JavaScript parses to the same double.
Everything is seeded: re-running gives the same files (for the same library versions).
"""
import json
import os
import pickle
import pickletools
import sys

import joblib
import numpy as np
import sklearn
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import TimeSeriesSplit
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from sklearn.tree import DecisionTreeRegressor

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'pickles')

if sklearn.__version__ != '1.2.1':
    print(f'warning: scikit-learn {sklearn.__version__}, the fixtures were made with 1.2.1', file=sys.stderr)


def path(name):
    return os.path.join(OUT, name)


def write_json(name, obj):
    with open(path(name), 'w') as f:
        json.dump(obj, f, indent=1, allow_nan=False)
        f.write('\n')


def write_pickle(name, obj, protocol):
    with open(path(name), 'wb') as f:
        pickle.dump(obj, f, protocol=protocol)


def floats(a):
    return [float(x) for x in np.asarray(a, dtype=np.float64).ravel()]


def tree_params(m):
    p = m.get_params()
    return {k: p[k] for k in sorted(p)}


def make_scaler():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(40, 5)) * [1, 10, 0.01, 1000, 3] + [0, 5, -1, 1e6, 0]
    X[:, 4] = 2.5  # a constant column: scale_ 1, var_ 0
    s = StandardScaler().fit(X)
    for proto in (2, 4, 5):
        write_pickle(f'scaler_p{proto}.pkl', s, proto)
    joblib.dump(s, path('scaler_joblib.pkl'))
    joblib.dump(s, path('scaler_joblib_zlib.pkl'), compress=('zlib', 3))
    write_json('scaler.json', {
        'class': 'sklearn.preprocessing._data.StandardScaler',
        'sklearn_version': sklearn.__version__,
        'mean': floats(s.mean_),
        'var': floats(s.var_),
        'scale': floats(s.scale_),
        'n_samples_seen': int(s.n_samples_seen_),
    })


def make_tree():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 4))
    y = X[:, 0] * 2 - X[:, 2] ** 2 + rng.normal(scale=0.1, size=60)
    m = DecisionTreeRegressor(max_leaf_nodes=9, min_samples_split=4, random_state=3).fit(X, y)
    write_pickle('tree.pkl', m, 4)
    joblib.dump(m, path('tree_joblib.pkl'))
    t = m.tree_
    Xq = np.round(rng.normal(size=(8, 4)), 6)
    write_json('tree.json', {
        'class': 'sklearn.tree._classes.DecisionTreeRegressor',
        'sklearn_version': sklearn.__version__,
        'params': tree_params(m),
        'n_features_in': int(m.n_features_in_),
        'node_count': int(t.node_count),
        'max_depth': int(t.max_depth),
        'n_leaves': int(m.get_n_leaves()),
        'children_left': t.children_left.tolist(),
        'children_right': t.children_right.tolist(),
        'feature': t.feature.tolist(),
        'threshold': floats(t.threshold),
        'impurity': floats(t.impurity),
        'n_node_samples': t.n_node_samples.tolist(),
        'weighted_n_node_samples': floats(t.weighted_n_node_samples),
        'value': floats(t.value[:, 0, 0]),
        'X_query': Xq.tolist(),
        'predictions': floats(m.predict(Xq)),
    })
    multi = DecisionTreeRegressor(max_depth=2, random_state=0).fit(X, np.c_[y, -y])
    write_pickle('tree_multi.pkl', multi, 4)


def make_linear():
    rng = np.random.default_rng(7)
    X = np.round(rng.normal(size=(25, 3)), 6)
    y = X @ [1.5, -2.0, 0.25] + 3.0 + np.round(rng.normal(scale=0.05, size=25), 6)
    m = LinearRegression().fit(X, y)
    write_pickle('linear.pkl', m, 4)
    Xq = np.round(rng.normal(size=(5, 3)), 6)
    write_json('linear.json', {
        'class': 'sklearn.linear_model._base.LinearRegression',
        'sklearn_version': sklearn.__version__,
        'coef': floats(m.coef_),
        'intercept': float(m.intercept_),
        'X_query': Xq.tolist(),
        'predictions': floats(m.predict(Xq)),
    })
    multi = LinearRegression().fit(X, np.c_[y, 2 * y])
    write_pickle('linear_multi.pkl', multi, 4)


def expected_array(a):
    a = np.asarray(a)
    out = {'dtype': a.dtype.str, 'shape': list(a.shape), 'fortran': bool(a.flags.f_contiguous and not a.flags.c_contiguous)}
    flat = a.ravel(order='C')
    if a.dtype.names:
        out['fields'] = {n: flat[n].tolist() for n in a.dtype.names}
    elif a.dtype.kind == 'O':
        out['objects'] = flat.tolist()
    elif a.dtype.kind == 'b':
        out['data'] = [int(x) for x in flat]
    elif a.dtype.kind == 'f':
        out['data'] = [float(x) for x in flat]
    else:
        out['data'] = [int(x) for x in flat]
    return out


def make_arrays():
    rng = np.random.default_rng(3)
    c2 = np.round(rng.normal(size=(3, 4)), 6)
    packed = np.zeros(4, dtype=[('a', '<i8'), ('b', '<f8'), ('c', '<f4'), ('d', 'u1')])
    packed['a'] = [-1, 2, 3, -2]
    packed['b'] = [0.5, -1.25, 3.0, 1e-300]
    packed['c'] = [1.5, 2.5, -0.125, 7.0]
    packed['d'] = [0, 255, 7, 1]
    aligned = np.zeros(3, dtype=np.dtype([('x', 'u1'), ('y', '>f8'), ('z', '<i4')], align=True))
    aligned['x'] = [1, 2, 3]
    aligned['y'] = [0.1, 0.2, 0.3]
    aligned['z'] = [-7, 8, 9]
    arrays = {
        'f8_c': c2,
        'f8_f': np.asfortranarray(c2),
        'f8_3d_f': np.asfortranarray(np.arange(24, dtype='<f8').reshape(2, 3, 4) / 8),
        'i4_be': np.array([[1, -2], [70000, -70000]], dtype='>i4'),
        'f8_be': np.array([1.0 / 3, -2.5e-10], dtype='>f8'),
        'u1': np.array([0, 1, 128, 255], dtype='u1'),
        'bool': np.array([True, False, True]),
        'f4': np.array([0.1, -2.5, 3e38], dtype='<f4'),
        'f2': np.array([0.5, -2.0, 65504.0, 1e-7], dtype='<f2'),
        'i8': np.array([-(2 ** 53) + 1, 0, 2 ** 53 - 1], dtype='<i8'),
        'u2': np.array([0, 65535], dtype='<u2'),
        'zero_d': np.array(3.75),
        'empty': np.zeros((0, 3)),
        'packed': packed,
        'aligned': aligned,
    }
    scalars = {
        'np_int64': np.int64(-42),
        'np_float64': np.float64(0.1),
        'np_float32': np.float32(0.1),
        'np_bool': np.bool_(True),
        'np_uint8': np.uint8(200),
    }
    plain = {
        'none': None,
        'true': True,
        'small_int': 7,
        'neg_int': -300,
        'int32': 2 ** 31 - 1,
        'big_int': 2 ** 70,
        'neg_big_int': -(2 ** 64),
        'float': 2.5e-310,
        'text': 'h\u00e9llo \u2603',
        'bytes': b'\x00\x01\xff',
        'list': [1, 'two', 3.0, None],
        'tuple': (1, (2, 3)),
        'nested': {'k': [1, {'z': False}]},
        'set': {1, 2, 3},
    }
    obj = {'arrays': arrays, 'scalars': scalars, 'plain': plain}
    for proto in (0, 1, 2, 3, 4, 5):
        write_pickle(f'arrays_p{proto}.pkl', obj, proto)
    joblib_obj = dict(obj)
    joblib_obj['arrays'] = dict(arrays, objects=np.array(['a', 'bc', None], dtype=object))
    joblib.dump(joblib_obj, path('arrays_joblib.pkl'))
    expected = {
        'arrays': {k: expected_array(v) for k, v in joblib_obj['arrays'].items()},
        'scalars': {k: v.item() for k, v in scalars.items()},
        'plain': {k: v for k, v in plain.items() if k not in ('big_int', 'neg_big_int', 'bytes', 'tuple', 'set')},
        'plain_special': {'big_int': str(2 ** 70), 'neg_big_int': str(-(2 ** 64)), 'bytes': [0, 1, 255],
                          'tuple': [1, [2, 3]], 'set': [1, 2, 3]},
    }
    expected['scalars']['np_float32'] = float(np.float32(0.1))
    write_json('arrays.json', expected)


def make_malicious():
    """Hand-written hostile pickles. Written as bytes, never unpickled here or anywhere."""
    cases = {
        # protocol 3: GLOBAL 'posix system', REDUCE with ('echo pwned',)
        'malicious_posix_system.pkl': (b'\x80\x03cposix\nsystem\nq\x00X\x0a\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.', 'posix.system'),
        # protocol 4: STACK_GLOBAL 'os' 'system'
        'malicious_os_system.pkl': (b'\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94.', 'os.system'),
        # protocol 2, Python 2 module name: __builtin__.eval
        'malicious_builtin_eval.pkl': (b'\x80\x02c__builtin__\neval\nq\x00X\x03\x00\x00\x001+1q\x01\x85q\x02Rq\x03.', 'builtins.eval'),
        # protocol 0 INST: subprocess.Popen('ls')
        'malicious_inst_popen.pkl': (b"(S'ls'\nisubprocess\nPopen\np0\n.", 'subprocess.Popen'),
        # an otherwise plausible StandardScaler whose mean_ is posix.system('id')
        'malicious_nested_scaler.pkl': (
            b'\x80\x03csklearn.preprocessing._data\nStandardScaler\nq\x00)\x81q\x01}q\x02(X\x05\x00\x00\x00mean_q\x03'
            b'cposix\nsystem\nq\x04X\x02\x00\x00\x00idq\x05\x85q\x06Rq\x07ub.',
            'posix.system',
        ),
    }
    index = {}
    for name, (data, target) in cases.items():
        with open(path(name), 'wb') as f:
            f.write(data)
        # pickletools only parses opcodes; it imports and calls nothing. Checks the bytes are well formed.
        list(pickletools.genops(data))
        index[name] = target
    write_json('malicious.json', index)


def lin_case(name, X, y, fit_intercept=True):
    m = LinearRegression(fit_intercept=fit_intercept).fit(X, y)
    return {
        'name': name,
        'fit_intercept': fit_intercept,
        'X': X.tolist(),
        'y': [float(v) for v in y],
        'coef': floats(m.coef_),
        'intercept': float(m.intercept_),
        'rank': int(m.rank_),
        'predictions': floats(m.predict(X)),
    }


def make_linear_cases():
    rng = np.random.default_rng(2024)
    r = lambda *shape: np.round(rng.normal(size=shape), 6)
    cases = []
    X = r(50, 4)
    cases.append(lin_case('well_conditioned', X, np.round(X @ [1, -2, 3, 0.5] + 4 + r(50) * 0.1, 6)))
    X = r(40, 3) * [1, 100, 0.001] + [1e4, -50, 7]
    cases.append(lin_case('offsets_and_scales', np.round(X, 6), np.round(X @ [0.01, 0.2, 300] + r(40), 6)))
    X = r(30, 5)
    X[:, 0] = 1.0
    cases.append(lin_case('constant_column', X, np.round(X[:, 1:] @ [1, 2, 3, 4] + 0.5 + r(30) * 0.01, 6)))
    X = r(6, 9)
    cases.append(lin_case('more_columns_than_rows', X, r(6)))
    X = r(30, 3)
    X = np.c_[X, X[:, 1]]
    cases.append(lin_case('duplicated_column', X, np.round(X[:, :3] @ [1, -1, 2] + r(30) * 0.1, 6)))
    Z = StandardScaler().fit_transform(r(200, 3))
    P = PolynomialFeatures(2).fit_transform(Z)
    y = np.round(Z[:, 0] - 0.5 * Z[:, 1] * Z[:, 2] + 0.3 * Z[:, 2] ** 2 + r(200) * 0.2, 6)
    cases.append(lin_case('polynomial_with_bias_column', P, y))
    X = r(20, 2)
    cases.append(lin_case('no_intercept', X, np.round(X @ [2, -3] + 1 + r(20) * 0.1, 6), fit_intercept=False))
    X = r(15, 1)
    cases.append(lin_case('single_feature', X, np.round(3 * X[:, 0] - 1, 6)))
    X = r(3, 2)
    cases.append(lin_case('three_rows', X, r(3)))
    write_json('linear_cases.json', cases)


def make_cv():
    configs = [
        {'n_samples': 7000, 'n_splits': 3},
        {'n_samples': 7000, 'n_splits': 5},
        {'n_samples': 10, 'n_splits': 3},
        {'n_samples': 11, 'n_splits': 2},
        {'n_samples': 4, 'n_splits': 3},
        {'n_samples': 1001, 'n_splits': 4, 'max_train_size': 300},
        {'n_samples': 100, 'n_splits': 3, 'test_size': 10},
        {'n_samples': 100, 'n_splits': 3, 'gap': 5},
        {'n_samples': 100, 'n_splits': 4, 'test_size': 20, 'gap': 3, 'max_train_size': 15},
        {'n_samples': 961, 'n_splits': 10},
    ]
    out = []
    for c in configs:
        kw = {k: v for k, v in c.items() if k != 'n_samples'}
        folds = []
        for train, test in TimeSeriesSplit(**kw).split(np.zeros(c['n_samples'])):
            assert (np.diff(train) == 1).all() and (np.diff(test) == 1).all()
            folds.append({'train': [int(train[0]), int(train[-1]) + 1], 'test': [int(test[0]), int(test[-1]) + 1]})
        out.append(dict(c, folds=folds))
    errors = []
    for c in [{'n_samples': 3, 'n_splits': 3}, {'n_samples': 10, 'n_splits': 3, 'test_size': 4},
              {'n_samples': 10, 'n_splits': 2, 'gap': 6}]:
        kw = {k: v for k, v in c.items() if k != 'n_samples'}
        try:
            list(TimeSeriesSplit(**kw).split(np.zeros(c['n_samples'])))
            raise AssertionError(c)
        except ValueError as e:
            errors.append(dict(c, message=str(e)))
    write_json('cv.json', {'splits': out, 'errors': errors})


def make_metrics():
    rng = np.random.default_rng(99)
    cases = []

    def add(name, yt, yp):
        yt = np.asarray(yt, dtype=np.float64)
        yp = np.asarray(yp, dtype=np.float64)
        cases.append({
            'name': name,
            'y_true': floats(yt),
            'y_pred': floats(yp),
            'mae': float(mean_absolute_error(yt, yp)),
            'mse': float(mean_squared_error(yt, yp)),
            # scikit-learn answers NaN (with a warning) for fewer than two samples: null here.
            'r2': None if len(yt) < 2 else float(r2_score(yt, yp)),
        })

    yt = 1 + rng.normal(scale=0.02, size=961)
    add('returns_961', yt, 1 + rng.normal(scale=0.005, size=961))
    add('returns_7', yt[:7], yt[:7] + rng.normal(scale=0.01, size=7))
    add('large_300', rng.normal(loc=1e6, scale=1e3, size=300), rng.normal(loc=1e6, scale=1e3, size=300))
    add('perfect', yt[:50], yt[:50])
    add('constant_perfect', [2.0] * 5, [2.0] * 5)
    add('constant_imperfect', [2.0] * 5, [2.0, 2.0, 2.5, 2.0, 1.0])
    add('single', [1.5], [1.0])
    add('worse_than_mean', [1.0, 2.0, 3.0], [3.0, 2.0, 1.0])
    write_json('metrics.json', cases)


def main():
    os.makedirs(OUT, exist_ok=True)
    make_scaler()
    make_tree()
    make_linear()
    make_arrays()
    make_malicious()
    make_linear_cases()
    make_cv()
    make_metrics()
    print(f'wrote fixtures to {os.path.normpath(OUT)} (scikit-learn {sklearn.__version__}, numpy {np.__version__}, joblib {joblib.__version__})')


if __name__ == '__main__':
    main()
