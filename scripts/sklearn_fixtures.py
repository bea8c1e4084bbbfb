#!/usr/bin/python3
"""Generate the scikit-learn 1.2.1 DecisionTreeRegressor fixtures in test/fixtures/sklearn/.

Run with Debian's interpreter, which has scikit-learn 1.2.1, numpy and pandas 1.5.3:

    /usr/bin/python3 scripts/sklearn_fixtures.py                 # synthetic + reference trees
    /usr/bin/python3 scripts/sklearn_fixtures.py --count 500 --out /tmp/stress --no-reference

(a) synthetic_NNN.json: small data sets built to provoke ties (integer-valued, duplicated,
    constant and near-constant columns, values one float32 ulp apart, -0.0 next to 0.0, values
    distinct in float64 but equal in float32, duplicated rows, integer targets with equal split
    scores), grown best-first and depth-first with several settings. Each holds X (float64 as repr),
    y, the parameters, the fitted tree in the project's TreeState shape and predictions on some rows.
(b) reference_*.json: trees grown on the reference fold (MSFT_X_learn.csv rows 0..5249, read with
    pandas' legacy float parser, degree-2 PolynomialFeatures). Only the trees are stored, never the
    data (the data stays in ../shared/reference).

Floats are written with Python's repr (shortest round trip), so JSON.parse gives the exact doubles.
"""
import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np
import sklearn
from sklearn.tree import DecisionTreeRegressor

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(REPO, 'test', 'fixtures', 'sklearn')
REFERENCE = os.path.join(os.path.dirname(REPO), 'shared', 'reference')


def num(v):
    """A JSON-safe float: repr round-trips; non-finite values become strings."""
    v = float(v)
    if math.isnan(v):
        return 'NaN'
    if math.isinf(v):
        return 'Infinity' if v > 0 else '-Infinity'
    return v


def tree_state(est):
    t = est.tree_
    return {
        'kind': 'decision_tree_regressor',
        'nFeatures': int(est.n_features_in_),
        'maxDepth': int(t.max_depth),
        'nodeCount': int(t.node_count),
        'leftChild': [int(v) for v in t.children_left],
        'rightChild': [int(v) for v in t.children_right],
        'feature': [int(v) for v in t.feature],
        'threshold': [num(v) for v in t.threshold],
        'impurity': [num(v) for v in t.impurity],
        'nNodeSamples': [int(v) for v in t.n_node_samples],
        'weightedNNodeSamples': [num(v) for v in t.weighted_n_node_samples],
        'value': [num(v) for v in t.value[:, 0, 0]],
    }


def params_json(p):
    return {
        'maxDepth': p['max_depth'],
        'minSamplesSplit': p['min_samples_split'],
        'minSamplesLeaf': p['min_samples_leaf'],
        'maxLeafNodes': p['max_leaf_nodes'],
        'randomState': p['random_state'],
    }


def f32_ulp_steps(c, k):
    """c rounded to float32, then k float32 ulps up."""
    v = np.float32(c)
    for _ in range(int(k)):
        v = np.nextafter(v, np.float32(np.inf), dtype=np.float32)
    return float(v)


def make_column(rng, n, kind, cols):
    if kind == 'int':
        return rng.randint(0, rng.randint(2, 7), n).astype(float)
    if kind == 'cont':
        return rng.randn(n)
    if kind == 'round':
        return np.round(rng.randn(n), 1)
    if kind == 'dup' and cols:
        src = cols[rng.randint(len(cols))]
        return src.copy() if rng.rand() < 0.7 else -src
    if kind == 'const':
        return np.full(n, float(np.round(rng.randn() * 3, 2)))
    if kind == 'nearconst':
        c = rng.randn() * 2
        return np.array([f32_ulp_steps(c, k) for k in rng.randint(0, 3, n)])
    if kind == 'ulp':
        # a few clusters; inside a cluster values are one float32 ulp apart (all within 1e-7
        # when |c| is small, so the scan skips them like ties)
        centers = rng.randn(rng.randint(2, 5)) * rng.choice([1e-3, 1.0, 100.0])
        return np.array([f32_ulp_steps(centers[rng.randint(len(centers))], rng.randint(0, 4)) for _ in range(n)])
    if kind == 'tiny':
        # distinct values 3e-8 apart: chains of gaps below FEATURE_THRESHOLD
        return rng.randint(0, 12, n) * 3e-8 + rng.choice([0.0, 1e-6, 5e-7])
    if kind == 'zeros':
        choices = np.array([-0.0, 0.0, 0.0, 1.0, -1.0, 2.5])
        return choices[rng.randint(0, len(choices), n)]
    if kind == 'f32collide':
        # distinct doubles, many of which round to the same float32
        return 1e6 + rng.randint(0, 40, n) * 0.01
    if kind == 'big':
        return rng.randn(n) * 1e30
    # fallback
    return rng.randn(n)


# Cases from wider runs (--first/--count) kept because they catch a specific mistake: 2104 has two
# features whose best splits tie exactly once the tie groups are summed in introsort's order (a
# scan in any other order picks the wrong feature at the root).
EXTRA_CASES = [2104]

COLUMN_KINDS = ['int', 'int', 'cont', 'round', 'dup', 'const', 'nearconst', 'ulp', 'tiny', 'zeros', 'f32collide', 'big']


def make_case(i):
    rng = np.random.RandomState(10_000 + i)
    n = int(rng.choice([rng.randint(2, 30), rng.randint(20, 120), rng.randint(100, 320)]))
    F = int(rng.randint(1, 11))
    cols = []
    kinds = []
    for _ in range(F):
        kind = COLUMN_KINDS[rng.randint(len(COLUMN_KINDS))]
        cols.append(make_column(rng, n, kind, cols))
        kinds.append(kind)
    X = np.column_stack(cols)

    ykind = ['int', 'int', 'int', 'cont', 'cont', 'linear', 'linear', 'offset', 'offset', 'binary'][rng.randint(10)]
    if rng.rand() < 0.03:
        ykind = 'const'
    if ykind == 'int':
        y = rng.randint(0, rng.randint(2, 6), n).astype(float)
    elif ykind == 'cont':
        y = rng.randn(n)
    elif ykind == 'linear':
        w = rng.randn(F)
        Xs = np.where(np.abs(X) > 1e10, 0.0, X)
        y = Xs @ w + 0.1 * rng.randn(n)
    elif ykind == 'offset':
        y = 1e4 + rng.randn(n)  # offset: forward and backward criterion updates differ in the last bits
    elif ykind == 'const':
        y = np.full(n, 0.25)
    else:
        y = (rng.rand(n) < 0.5).astype(float)

    # duplicated rows (same X, sometimes same y)
    if rng.rand() < 0.35 and n >= 4:
        k = rng.randint(1, max(2, n // 3))
        src = rng.randint(0, n, k)
        dst = rng.randint(0, n, k)
        X[dst] = X[src]
        if rng.rand() < 0.5:
            y[dst] = y[src]

    best_first = rng.rand() < 0.5
    p = {
        'max_depth': None,
        'min_samples_split': int(rng.choice([2, 2, 2, 3, 5, 10])),
        'min_samples_leaf': int(rng.choice([1, 1, 1, 1, 2, 3, 5])),
        'max_leaf_nodes': None,
        'random_state': int(rng.choice([0, 1, 2, 7, 42, 12345, 4294967295])),
    }
    if best_first:
        p['max_leaf_nodes'] = int(rng.randint(2, 41))
        if rng.rand() < 0.4:
            p['max_depth'] = int(rng.randint(1, 12))
    elif rng.rand() < 0.6:
        p['max_depth'] = int(rng.randint(1, 14))

    est = DecisionTreeRegressor(**p).fit(X, y)

    # prediction rows: some training rows, thresholds themselves, and random mixes of column values
    rows = [X[j] for j in rng.randint(0, n, min(n, 8))]
    t = est.tree_
    for node in range(t.node_count):
        if t.feature[node] >= 0 and len(rows) < 24:
            r = X[rng.randint(n)].copy()
            r[t.feature[node]] = t.threshold[node]
            rows.append(r)
    for _ in range(8):
        rows.append(np.array([cols[c][rng.randint(n)] for c in range(F)]))
    PX = np.array(rows)
    py = est.predict(PX)

    return {
        'name': 'synthetic_%03d' % i,
        'description': 'n=%d F=%d columns=%s y=%s %s' % (
            n, F, ','.join(kinds), ykind, 'best-first' if best_first else 'depth-first'),
        'sklearnVersion': sklearn.__version__,
        'params': params_json(p),
        'X': [[num(v) for v in row] for row in X],
        'y': [num(v) for v in y],
        'tree': tree_state(est),
        'predict': {'X': [[num(v) for v in row] for row in PX], 'y': [num(v) for v in py]},
    }


def sha256(path):
    with open(path, 'rb') as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def reference_trees(out):
    import pandas as pd
    from sklearn.preprocessing import PolynomialFeatures

    x_path = os.path.join(REFERENCE, 'MSFT_X_learn.csv')
    y_path = os.path.join(REFERENCE, 'MSFT_y_learn.csv')
    if not (os.path.exists(x_path) and os.path.exists(y_path)):
        print('reference data not found in %s: skipping the reference trees' % REFERENCE)
        return
    X = pd.read_csv(x_path, float_precision='legacy').values
    y = pd.read_csv(y_path, float_precision='legacy').values[:, 0]
    Xp = PolynomialFeatures(degree=2).fit_transform(X)
    Xtr, ytr = Xp[:5250], y[:5250]
    settings = [
        ('reference_fold', 'the reference model: FEATURES.md section 5, best-first',
         dict(max_depth=19, min_samples_split=5, max_leaf_nodes=50, random_state=1)),
        ('reference_depth_first', 'reference fold, depth-first, max_depth=14',
         dict(max_depth=14, min_samples_split=5, random_state=7)),
        ('reference_best_first_leaf3', 'reference fold, best-first 120 leaves, min_samples_leaf=3',
         dict(max_leaf_nodes=120, min_samples_leaf=3, random_state=0)),
    ]
    for name, description, kw in settings:
        p = dict(max_depth=None, min_samples_split=2, min_samples_leaf=1, max_leaf_nodes=None, random_state=0)
        p.update(kw)
        est = DecisionTreeRegressor(**p).fit(Xtr, ytr)
        doc = {
            'name': name,
            'description': description,
            'sklearnVersion': sklearn.__version__,
            'data': {
                'X': 'MSFT_X_learn.csv', 'y': 'MSFT_y_learn.csv', 'rows': [0, 5250],
                'parser': "pandas float_precision='legacy'", 'expansion': 'PolynomialFeatures(degree=2)',
                'sha256': {'MSFT_X_learn.csv': sha256(x_path), 'MSFT_y_learn.csv': sha256(y_path)},
            },
            'params': params_json(p),
            'tree': tree_state(est),
        }
        write(out, name, doc)


def write(out, name, doc):
    path = os.path.join(out, name + '.json')
    with open(path, 'w') as fh:
        json.dump(doc, fh, separators=(',', ':'), allow_nan=False)
        fh.write('\n')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--count', type=int, default=150)
    ap.add_argument('--first', type=int, default=0)
    ap.add_argument('--out', default=DEFAULT_OUT)
    ap.add_argument('--no-reference', action='store_true')
    args = ap.parse_args()
    if sklearn.__version__ != '1.2.1':
        sys.exit('scikit-learn 1.2.1 is required (found %s): run with /usr/bin/python3' % sklearn.__version__)
    os.makedirs(args.out, exist_ok=True)
    cases = list(range(args.first, args.first + args.count))
    if args.out == DEFAULT_OUT:
        cases += [i for i in EXTRA_CASES if i not in cases]
    for i in cases:
        write(args.out, 'synthetic_%03d' % i, make_case(i))
    if not args.no_reference:
        reference_trees(args.out)


if __name__ == '__main__':
    main()
