#!/usr/bin/env python3
"""Builds the ONNX-ML test cases for crates/engine/tests/sklearn.rs: scikit-learn models trained
on seeded data and exported with skl2onnx (ZipMap off), plus hand-built ONNX-ML nodes covering
what exporters rarely emit (every branch mode, NaN routing, MIN/MAX/AVERAGE, base values, every
post-transform, double thresholds, opset-5 TreeEnsemble, integer and string encoders).

For each case it writes into OUT_DIR:
  <name>.onnx   the model
  <name>.json   {"inputs": {...}, "outputs": {...}} in Vouch's tensor JSON (dtype, shape, data;
                NaN written as "NaN"): onnxruntime's outputs (1 intra-op thread) on those inputs,
                several rows each, edge rows included
and for a model the engine must refuse, <name>.json is {"refuse": ["words", "the", "error", "has"]}.

Usage: python scripts/sklearn_cases.py OUT_DIR [--only NAME,NAME]
Requirements: scripts/requirements-test.txt (scikit-learn, skl2onnx, onnx, onnxruntime, numpy).
"""
import argparse
import json
import os
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

warnings.filterwarnings("ignore")
ML = "ai.onnx.ml"
OPSETS = {"": 17, ML: 3}
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


# ---------------------------------------------------------------------------------------------
# Output


def tensor_json(a):
    a = np.asarray(a)
    if a.dtype.kind in "OUS":
        return {"dtype": "string", "shape": list(a.shape), "data": [str(v) for v in a.ravel()]}
    dtype = {"float32": "float32", "float64": "float64", "int64": "int64", "int32": "int32",
             "int16": "int16",
             "bool": "bool", "uint8": "uint8", "int8": "int8"}[str(a.dtype)]
    data = a.ravel().tolist()
    if a.dtype.kind == "f":
        data = ["NaN" if v != v else ("Infinity" if v == float("inf") else
                ("-Infinity" if v == float("-inf") else v)) for v in data]
    elif a.dtype.kind == "b":
        data = [bool(v) for v in data]
    return {"dtype": dtype, "shape": list(a.shape), "data": data}


def run_ort(model_bytes, feeds):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def save(out, name, model, feeds, reference_model=None):
    """Writes the model and onnxruntime's outputs on `feeds` (from `reference_model` when given:
    an equivalent model onnxruntime reads the way the spec reads `model`)."""
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    with open(os.path.join(out, f"{name}.onnx"), "wb") as f:
        f.write(data)
    ref = reference_model.SerializeToString() if reference_model is not None else data
    outputs = run_ort(ref, feeds)
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump({"inputs": {k: tensor_json(v) for k, v in feeds.items()},
                   "outputs": {k: tensor_json(v) for k, v in outputs.items()}}, f)


def save_refusal(out, name, model, words):
    with open(os.path.join(out, f"{name}.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump({"refuse": words}, f)


def export(model, x, **kw):
    from skl2onnx import to_onnx

    options = kw.pop("options", None)
    if options is None and hasattr(model, "classes_"):
        options = {id(model): {"zipmap": False}}
    onx = to_onnx(model, x[:1], options=options, target_opset=dict(OPSETS), **kw)
    onx.producer_name = "vouch sklearn_cases (skl2onnx)"
    return onx


def one_input(model, x):
    return {model.graph.input[0].name: x}


# ---------------------------------------------------------------------------------------------
# Data


def data(seed, n=240, f=6, classes=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, f)).astype(np.float32)
    score = x[:, 0] + 0.5 * x[:, 1] * x[:, 2] - 0.3 * x[:, 3]
    cuts = np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])
    y = np.searchsorted(cuts, score)
    yr = (2 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2] ** 2 + 0.1 * rng.normal(size=n)).astype(np.float32)
    return x, y, yr


def probe_rows(x, seed, n=9):
    """Rows to evaluate: held-out-like rows, plus a zero row, a large row and a tiny row."""
    rng = np.random.default_rng(seed + 1000)
    rows = x[rng.choice(len(x), n - 3, replace=False)].copy()
    f = x.shape[1]
    edge = np.stack([np.zeros(f), np.full(f, 1e4), np.full(f, -1e-30)]).astype(x.dtype)
    return np.concatenate([rows, edge])


# ---------------------------------------------------------------------------------------------
# scikit-learn models


@case
def rf_classifier_binary(out):
    from sklearn.ensemble import RandomForestClassifier

    x, y, _ = data(1, classes=2)
    m = RandomForestClassifier(n_estimators=12, max_depth=6, random_state=0).fit(x, y)
    onx = export(m, x)
    save(out, "rf_classifier_binary", onx, one_input(onx, probe_rows(x, 1)))


@case
def rf_classifier_multiclass_labels(out):
    from sklearn.ensemble import RandomForestClassifier

    x, y, _ = data(2, classes=4)
    y = np.array([3, 7, 11, 42])[y]
    m = RandomForestClassifier(n_estimators=15, max_depth=7, random_state=0).fit(x, y)
    onx = export(m, x)
    save(out, "rf_classifier_multiclass_labels", onx, one_input(onx, probe_rows(x, 2)))


@case
def rf_classifier_string_labels(out):
    from sklearn.ensemble import RandomForestClassifier

    x, y, _ = data(3, classes=3)
    y = np.array(["cat", "dog", "emu"])[y]
    m = RandomForestClassifier(n_estimators=8, max_depth=5, random_state=0).fit(x, y)
    onx = export(m, x)
    save(out, "rf_classifier_string_labels", onx, one_input(onx, probe_rows(x, 3)))


@case
def rf_regressor(out):
    from sklearn.ensemble import RandomForestRegressor

    x, _, yr = data(4)
    m = RandomForestRegressor(n_estimators=12, max_depth=7, random_state=0).fit(x, yr)
    onx = export(m, x)
    save(out, "rf_regressor", onx, one_input(onx, probe_rows(x, 4)))


@case
def rf_regressor_multi_target(out):
    from sklearn.ensemble import RandomForestRegressor

    x, _, yr = data(5)
    y2 = np.stack([yr, x[:, 4] * 3 - x[:, 5]], axis=1)
    m = RandomForestRegressor(n_estimators=6, max_depth=5, random_state=0).fit(x, y2)
    onx = export(m, x)
    save(out, "rf_regressor_multi_target", onx, one_input(onx, probe_rows(x, 5)))


@case
def extra_trees_classifier(out):
    from sklearn.ensemble import ExtraTreesClassifier

    x, y, _ = data(6, classes=3)
    m = ExtraTreesClassifier(n_estimators=10, max_depth=6, random_state=0).fit(x, y)
    onx = export(m, x)
    save(out, "extra_trees_classifier", onx, one_input(onx, probe_rows(x, 6)))


@case
def gb_classifier_binary(out):
    from sklearn.ensemble import GradientBoostingClassifier

    x, y, _ = data(7, classes=2)
    m = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(x, y)
    onx = export(m, x)
    save(out, "gb_classifier_binary", onx, one_input(onx, probe_rows(x, 7)))


@case
def gb_classifier_multiclass(out):
    from sklearn.ensemble import GradientBoostingClassifier

    x, y, _ = data(8, classes=3)
    m = GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=0).fit(x, y)
    onx = export(m, x)
    save(out, "gb_classifier_multiclass", onx, one_input(onx, probe_rows(x, 8)))


@case
def gb_regressor(out):
    from sklearn.ensemble import GradientBoostingRegressor

    x, _, yr = data(9)
    m = GradientBoostingRegressor(n_estimators=25, max_depth=3, random_state=0).fit(x, yr)
    onx = export(m, x)
    save(out, "gb_regressor", onx, one_input(onx, probe_rows(x, 9)))


@case
def decision_tree_with_missing_values(out):
    from sklearn.tree import DecisionTreeClassifier

    x, y, _ = data(10, classes=3)
    x = x.copy()
    x[::7, 0] = np.nan
    x[::5, 2] = np.nan
    m = DecisionTreeClassifier(max_depth=6, random_state=0).fit(x, y)
    onx = export(m, x)
    rows = probe_rows(x, 10)
    rows[0, 0] = np.nan
    rows[1, 2] = np.nan
    rows[2, :] = np.nan
    save(out, "decision_tree_with_missing_values", onx, one_input(onx, rows))


@case
def svc_linear_multiclass(out):
    from sklearn.svm import SVC

    x, y, _ = data(11, n=150, classes=3)
    m = SVC(kernel="linear", C=0.5).fit(x, y)
    onx = export(m, x)
    save(out, "svc_linear_multiclass", onx, one_input(onx, probe_rows(x, 11)[:-2]))


@case
def svc_rbf_probability(out):
    from sklearn.svm import SVC

    x, y, _ = data(12, n=150, classes=3)
    m = SVC(kernel="rbf", probability=True, random_state=0).fit(x, y)
    onx = export(m, x)
    save(out, "svc_rbf_probability", onx, one_input(onx, probe_rows(x, 12)))


@case
def svc_rbf_binary(out):
    from sklearn.svm import SVC

    x, y, _ = data(13, n=150, classes=2)
    m = SVC(kernel="rbf", gamma=0.3).fit(x, y)
    onx = export(m, x)
    save(out, "svc_rbf_binary", onx, one_input(onx, probe_rows(x, 13)))


@case
def svc_poly_binary_probability(out):
    from sklearn.svm import SVC

    x, y, _ = data(14, n=150, classes=2)
    y = np.array([5, 9])[y]
    m = SVC(kernel="poly", degree=3, coef0=1.0, probability=True, random_state=0).fit(x, y)
    onx = export(m, x)
    save(out, "svc_poly_binary_probability", onx, one_input(onx, probe_rows(x, 14)[:-2]))


@case
def svc_sigmoid(out):
    from sklearn.svm import SVC

    x, y, _ = data(15, n=150, classes=3)
    m = SVC(kernel="sigmoid", gamma=0.05, coef0=0.1).fit(x, y)
    onx = export(m, x)
    save(out, "svc_sigmoid", onx, one_input(onx, probe_rows(x, 15)[:-2]))


@case
def svr_rbf(out):
    from sklearn.svm import SVR

    x, _, yr = data(16, n=150)
    m = SVR(kernel="rbf", C=2.0).fit(x, yr)
    onx = export(m, x)
    save(out, "svr_rbf", onx, one_input(onx, probe_rows(x, 16)))


@case
def svr_linear(out):
    from sklearn.svm import SVR

    x, _, yr = data(17, n=150)
    m = SVR(kernel="linear").fit(x, yr)
    onx = export(m, x)
    save(out, "svr_linear", onx, one_input(onx, probe_rows(x, 17)[:-2]))


@case
def linear_svc_multiclass(out):
    from sklearn.svm import LinearSVC

    x, y, _ = data(18, classes=3)
    m = LinearSVC(random_state=0).fit(x, y)
    onx = export(m, x, options={})
    save(out, "linear_svc_multiclass", onx, one_input(onx, probe_rows(x, 18)))


@case
def linear_svc_binary(out):
    from sklearn.svm import LinearSVC

    x, y, _ = data(19, classes=2)
    m = LinearSVC(random_state=0).fit(x, y)
    onx = export(m, x, options={})
    save(out, "linear_svc_binary", onx, one_input(onx, probe_rows(x, 19)))


@case
def logistic_regression_binary(out):
    from sklearn.linear_model import LogisticRegression

    x, y, _ = data(20, classes=2)
    m = LogisticRegression().fit(x, y)
    onx = export(m, x)
    save(out, "logistic_regression_binary", onx, one_input(onx, probe_rows(x, 20)))


@case
def logistic_regression_multiclass(out):
    from sklearn.linear_model import LogisticRegression

    x, y, _ = data(21, classes=4)
    m = LogisticRegression(max_iter=500).fit(x, y)
    onx = export(m, x)
    save(out, "logistic_regression_multiclass", onx, one_input(onx, probe_rows(x, 21)))


@case
def linear_regression(out):
    from sklearn.linear_model import LinearRegression

    x, _, yr = data(22)
    m = LinearRegression().fit(x, yr)
    onx = export(m, x)
    save(out, "linear_regression", onx, one_input(onx, probe_rows(x, 22)))


@case
def ridge_multi_target(out):
    from sklearn.linear_model import Ridge

    x, _, yr = data(23)
    m = Ridge(alpha=0.5).fit(x, np.stack([yr, -yr + x[:, 0]], axis=1))
    onx = export(m, x)
    save(out, "ridge_multi_target", onx, one_input(onx, probe_rows(x, 23)))


@case
def pipeline_impute_scale_onehot_logistic(out):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x, y, _ = data(24, classes=3)
    rng = np.random.default_rng(24)
    cats = rng.integers(0, 4, size=(len(x), 2)).astype(np.float32)
    xa = np.hstack([x[:, :4], cats])
    xa[::6, 1] = np.nan
    y = (y + cats[:, 0].astype(int)) % 3
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), [0, 1, 2, 3]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), [4, 5]),
    ])
    m = make_pipeline(pre, LogisticRegression(max_iter=500)).fit(xa, y)
    onx = export(m, xa, options={id(m): {"zipmap": False}})
    rows = probe_rows(xa, 24)[:-2]
    rows[0, 1] = np.nan
    rows[1, 4] = 9.0  # a category never seen in training
    save(out, "pipeline_impute_scale_onehot_logistic", onx, one_input(onx, rows))


@case
def pipeline_minmax_random_forest(out):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    x, y, _ = data(25, classes=3)
    m = make_pipeline(MinMaxScaler(), RandomForestClassifier(n_estimators=6, max_depth=5,
                                                             random_state=0)).fit(x, y)
    onx = export(m, x, options={id(m): {"zipmap": False}})
    save(out, "pipeline_minmax_random_forest", onx, one_input(onx, probe_rows(x, 25)))


@case
def pipeline_scalers_svc(out):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MaxAbsScaler, RobustScaler, StandardScaler
    from sklearn.svm import SVC

    x, y, _ = data(26, n=150, classes=2)
    m = make_pipeline(StandardScaler(), RobustScaler(), MaxAbsScaler(),
                      SVC(probability=True, random_state=0)).fit(x, y)
    onx = export(m, x, options={id(m): {"zipmap": False}})
    save(out, "pipeline_scalers_svc", onx, one_input(onx, probe_rows(x, 26)[:-2]))


@case
def binarizer(out):
    from sklearn.preprocessing import Binarizer

    x, _, _ = data(27)
    m = Binarizer(threshold=0.25).fit(x)
    onx = export(m, x)
    save(out, "binarizer", onx, one_input(onx, probe_rows(x, 27)))


@case
def normalizers(out):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    x, _, _ = data(28)
    for norm in ["l1", "l2", "max"]:
        m = make_pipeline(Normalizer(norm=norm)).fit(x)
        onx = export(m, x)
        rows = probe_rows(x, 28)
        save(out, f"normalizer_{norm}", onx, one_input(onx, rows))


@case
def one_hot_encoder_strings(out):
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(29)
    x = np.array(["red", "green", "blue", "teal"])[rng.integers(0, 4, size=(60, 2))]
    m = OneHotEncoder(handle_unknown="ignore").fit(x)
    from skl2onnx import to_onnx

    onx = to_onnx(m, initial_types=[("X", StringTensorType([None, 2]))], target_opset=dict(OPSETS))
    rows = np.array([["red", "blue"], ["teal", "green"], ["mauve", "red"], ["", "teal"]])
    save(out, "one_hot_encoder_strings", onx, {"X": rows})


@case
def label_encoders(out):
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import Int64TensorType, StringTensorType
    from sklearn.preprocessing import LabelEncoder, OrdinalEncoder

    le = LabelEncoder().fit(np.array([3, 7, 9, 7, 12]))
    onx = to_onnx(le, initial_types=[("X", Int64TensorType([None]))], target_opset=dict(OPSETS))
    save(out, "label_encoder_int", onx, {"X": np.array([3, 9, 12, 7, 5], dtype=np.int64)})
    le = LabelEncoder().fit(np.array(["b", "a", "c"]))
    onx = to_onnx(le, initial_types=[("X", StringTensorType([None]))], target_opset=dict(OPSETS))
    save(out, "label_encoder_string", onx, {"X": np.array(["c", "a", "zzz", "b"])})
    oe = OrdinalEncoder().fit(np.array([[1, 10], [2, 20], [3, 10]], dtype=np.int64))
    onx = to_onnx(oe, initial_types=[("X", Int64TensorType([None, 2]))], target_opset=dict(OPSETS))
    save(out, "ordinal_encoder", onx, {"X": np.array([[3, 20], [1, 10], [2, 10]], dtype=np.int64)})


@case
def zipmap_refused(out):
    from sklearn.ensemble import RandomForestClassifier

    x, y, _ = data(30, classes=2)
    m = RandomForestClassifier(n_estimators=2, max_depth=2, random_state=0).fit(x, y)
    onx = export(m, x, options={})  # ZipMap left on
    save_refusal(out, "zipmap_refused", onx, ["ZipMap", "ai.onnx.ml"])


# ---------------------------------------------------------------------------------------------
# Hand-built nodes


def graph_model(nodes, inputs, outputs, opsets=None, initializers=()):
    for i, node in enumerate(nodes):
        node.name = node.name or f"{node.op_type}_{i}"
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    ops = dict(OPSETS) if opsets is None else opsets
    m = helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in ops.items()])
    m.ir_version = 8 if ops.get(ML, 3) < 5 else 10
    return m


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]
GRID = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 2.0], dtype=np.float32)


def random_trees(rng, n_trees, n_features, n_targets, depth, modes=MODES, missing=True,
                 one_id=None, positive=False):
    """V3 attribute lists for random trees over a grid of thresholds (so EQ/NEQ fire)."""
    a = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values",
                         "nodes_modes", "nodes_truenodeids", "nodes_falsenodeids",
                         "nodes_missing_value_tracks_true", "ids", "nodeids", "treeids",
                         "weights"]}
    for t in range(n_trees):
        counter = [0]

        def grow(d):
            me = counter[0]
            counter[0] += 1
            slot = len(a["nodes_nodeids"])
            for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values",
                      "nodes_modes", "nodes_truenodeids", "nodes_falsenodeids",
                      "nodes_missing_value_tracks_true"]:
                a[k].append(0)
            a["nodes_treeids"][slot] = t
            a["nodes_nodeids"][slot] = me
            if d == depth or (d > 0 and rng.random() < 0.25):
                a["nodes_modes"][slot] = "LEAF"
                for _ in range(1 if n_targets == 1 else int(rng.integers(1, 3))):
                    a["ids"].append(one_id if one_id is not None else int(rng.integers(0, n_targets)))
                    a["nodeids"].append(me)
                    a["treeids"].append(t)
                    w = float(rng.normal())
                    a["weights"].append(abs(w) if positive else w)
                return me
            a["nodes_modes"][slot] = str(rng.choice(modes))
            a["nodes_featureids"][slot] = int(rng.integers(0, n_features))
            a["nodes_values"][slot] = float(rng.choice(GRID))
            a["nodes_missing_value_tracks_true"][slot] = int(missing and rng.random() < 0.5)
            a["nodes_truenodeids"][slot] = grow(d + 1)
            a["nodes_falsenodeids"][slot] = grow(d + 1)
            return me

        grow(0)
    return a


def grid_rows(rng, n, f, dtype=np.float32):
    rows = rng.choice(np.concatenate([GRID, GRID + 0.25]), size=(n, f)).astype(dtype)
    rows[rng.random(size=(n, f)) < 0.1] = np.nan
    return rows


@case
def tree_regressor_modes_and_aggregates(out):
    """Every mode, NaN routing, each aggregate, base values and post-transforms, 1 and 3 targets."""
    rng = np.random.default_rng(31)
    variants = [(agg, post, nt) for agg in ["SUM", "AVERAGE", "MIN", "MAX"]
                for post, nt in [("NONE", 1), ("PROBIT", 1), ("NONE", 3), ("SOFTMAX", 3),
                                 ("LOGISTIC", 3), ("SOFTMAX_ZERO", 3)]]
    for i, (agg, post, nt) in enumerate(variants):
        a = random_trees(rng, 5, 4, nt, 3)
        kw = {}
        if i % 2 == 0:
            kw["base_values"] = [float(v) for v in rng.normal(size=nt)]
        if post == "PROBIT":  # probit's domain is (0, 1)
            a["weights"] = [0.5 + 0.4 * np.tanh(w) / 5 for w in a["weights"]]
            kw.pop("base_values", None)
        node = helper.make_node(
            "TreeEnsembleRegressor", ["X"], ["Y"], domain=ML, n_targets=nt,
            aggregate_function=agg, post_transform=post,
            **{k: v for k, v in a.items() if k.startswith("nodes_")},
            target_ids=a["ids"], target_nodeids=a["nodeids"], target_treeids=a["treeids"],
            target_weights=a["weights"], **kw)
        m = graph_model([node], [vi("X", TensorProto.FLOAT, [None, 4])],
                        [vi("Y", TensorProto.FLOAT, [None, nt])])
        save(out, f"tree_regressor_{agg.lower()}_{post.lower()}_{nt}", m,
             {"X": grid_rows(rng, 12, 4)})


@case
def tree_classifier_variants(out):
    """Binary conventions (one class id, positive or mixed weights, 0/1/2 base values), multiclass
    with base values, every post-transform, string labels, int and double inputs."""
    rng = np.random.default_rng(32)
    variants = []
    for post in ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"]:
        for base in [0, 1, 2]:
            for positive in [True, False]:
                variants.append(("binary_one_id", post, base, positive, 2))
        variants.append(("binary_two_ids", post, 0, False, 2))
        variants.append(("binary_two_ids", post, 2, False, 2))
        variants.append(("multiclass", post, 0, False, 4))
        variants.append(("multiclass", post, 4, False, 4))
    for i, (kind, post, base, positive, n) in enumerate(variants):
        a = random_trees(rng, 4, 4, n, 3, one_id=0 if kind == "binary_one_id" else None,
                         positive=positive)
        kw = {}
        if base:
            kw["base_values"] = [float(v) for v in rng.normal(size=base)]
        strings = i % 5 == 4
        if strings:
            kw["classlabels_strings"] = [f"class{k}" for k in range(n)]
        else:
            kw["classlabels_int64s"] = [int(v) for v in rng.choice(100, size=n, replace=False)]
        in_type = [TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64][i % 3]
        node = helper.make_node(
            "TreeEnsembleClassifier", ["X"], ["label", "scores"], domain=ML, post_transform=post,
            **{k: v for k, v in a.items() if k.startswith("nodes_")},
            class_ids=a["ids"], class_nodeids=a["nodeids"], class_treeids=a["treeids"],
            class_weights=a["weights"], **kw)
        m = graph_model([node], [vi("X", in_type, [None, 4])],
                        [vi("label", TensorProto.STRING if strings else TensorProto.INT64, [None]),
                         vi("scores", TensorProto.FLOAT, [None, n])])
        rows = grid_rows(rng, 10, 4, np.float64 if in_type == TensorProto.DOUBLE else np.float32)
        if in_type == TensorProto.INT64:
            rows = np.nan_to_num(rows * 2, nan=3).astype(np.int64)
        save(out, f"tree_classifier_{i:02}_{kind}_{post.lower()}_base{base}", m, {"X": rows})


@case
def tree_regressor_double_thresholds(out):
    """nodes_values_as_tensor / target_weights_as_tensor: thresholds and sums in double."""
    rng = np.random.default_rng(33)
    a = random_trees(rng, 6, 3, 2, 4, modes=["BRANCH_LEQ", "BRANCH_GT"])
    vals = np.array(a["nodes_values"], dtype=np.float64) + 1e-9  # not representable in float
    node = helper.make_node(
        "TreeEnsembleRegressor", ["X"], ["Y"], domain=ML, n_targets=2,
        nodes_values_as_tensor=numpy_helper.from_array(vals),
        target_weights_as_tensor=numpy_helper.from_array(np.array(a["weights"], np.float64)),
        **{k: v for k, v in a.items() if k.startswith("nodes_") and k != "nodes_values"},
        target_ids=a["ids"], target_nodeids=a["nodeids"], target_treeids=a["treeids"])
    m = graph_model([node], [vi("X", TensorProto.DOUBLE, [None, 3])],
                    [vi("Y", TensorProto.FLOAT, [None, 2])])
    rows = grid_rows(rng, 10, 3, np.float64)
    rows[:4] += 1e-9  # exactly on the double thresholds
    save(out, "tree_regressor_double_thresholds", m, {"X": rows})


def v3_to_v5(attrs, n_targets, dtype, agg, post):
    """Rewrites V3 regressor attributes as an opset-5 TreeEnsemble node's attributes."""
    tids, nids = attrs["nodes_treeids"], attrs["nodes_nodeids"]
    pos = {(t, n): i for i, (t, n) in enumerate(zip(tids, nids))}
    interior = [i for i, mde in enumerate(attrs["nodes_modes"]) if mde != "LEAF"]
    leaves = [i for i, mde in enumerate(attrs["nodes_modes"]) if mde == "LEAF"]
    ipos = {i: k for k, i in enumerate(interior)}
    lpos = {i: k for k, i in enumerate(leaves)}
    leaf_w = {i: (0, 0.0) for i in leaves}
    for t, n, tid, w in zip(attrs["treeids"], attrs["nodeids"], attrs["ids"], attrs["weights"]):
        leaf_w[pos[(t, n)]] = (tid, w)
    out = {k: [] for k in ["nodes_featureids", "nodes_splits", "nodes_modes", "nodes_truenodeids",
                           "nodes_trueleafs", "nodes_falsenodeids", "nodes_falseleafs",
                           "nodes_missing_value_tracks_true"]}
    for i in interior:
        t = tids[i]
        out["nodes_featureids"].append(attrs["nodes_featureids"][i])
        out["nodes_splits"].append(attrs["nodes_values"][i])
        out["nodes_modes"].append(MODES.index(attrs["nodes_modes"][i]))
        out["nodes_missing_value_tracks_true"].append(attrs["nodes_missing_value_tracks_true"][i])
        for side in ["true", "false"]:
            c = pos[(t, attrs[f"nodes_{side}nodeids"][i])]
            leaf = c in lpos
            out[f"nodes_{side}nodeids"].append(lpos[c] if leaf else ipos[c])
            out[f"nodes_{side}leafs"].append(int(leaf))
    roots = [ipos[pos[(t, 0)]] for t in sorted(set(tids))]
    return dict(
        n_targets=n_targets, aggregate_function=agg, post_transform=post, tree_roots=roots,
        nodes_featureids=out["nodes_featureids"],
        nodes_splits=numpy_helper.from_array(np.array(out["nodes_splits"], dtype)),
        nodes_modes=numpy_helper.from_array(np.array(out["nodes_modes"], np.uint8)),
        nodes_truenodeids=out["nodes_truenodeids"], nodes_trueleafs=out["nodes_trueleafs"],
        nodes_falsenodeids=out["nodes_falsenodeids"], nodes_falseleafs=out["nodes_falseleafs"],
        nodes_missing_value_tracks_true=out["nodes_missing_value_tracks_true"],
        leaf_targetids=[leaf_w[i][0] for i in leaves],
        leaf_weights=numpy_helper.from_array(np.array([leaf_w[i][1] for i in leaves], dtype)))


@case
def tree_ensemble_v5(out):
    """Opset-5 TreeEnsemble, float and double, each aggregate and post-transform, set membership.

    onnxruntime 1.32 reads post_transform 1 as LOGISTIC and 2 as SOFTMAX, the reverse of the
    operator spec (1 = SOFTMAX, 2 = LOGISTIC), which Vouch follows: the reference outputs come
    from the same model with those two codes swapped."""
    rng = np.random.default_rng(34)
    opsets = {"": 21, ML: 5}
    for dtype, elem in [(np.float32, TensorProto.FLOAT), (np.float64, TensorProto.DOUBLE)]:
        for agg in range(4):
            for post in [0, 1, 2, 3]:
                a = random_trees(rng, 4, 4, 3, 3, one_id=None)
                # One leaf vote per leaf in V5.
                seen, keep = set(), []
                for k, key in enumerate(zip(a["treeids"], a["nodeids"])):
                    if key not in seen:
                        seen.add(key)
                        keep.append(k)
                for key in ["ids", "nodeids", "treeids", "weights"]:
                    a[key] = [a[key][k] for k in keep]
                attrs = v3_to_v5(a, 3, dtype, agg, post)
                ref = dict(attrs, post_transform={1: 2, 2: 1}.get(post, post))
                name = f"tree_ensemble_v5_{np.dtype(dtype).name}_agg{agg}_post{post}"
                m, r = [graph_model([helper.make_node("TreeEnsemble", ["X"], ["Y"], domain=ML, **at)],
                                    [vi("X", elem, [None, 4])], [vi("Y", elem, [None, 3])], opsets)
                        for at in (attrs, ref)]
                save(out, name, m, {"X": grid_rows(rng, 10, 4, dtype)}, reference_model=r)
    # Set membership: feature 0 in {0.5, 2.0}, then feature 1 in {3.0}, NaN goes true.
    attrs = dict(
        n_targets=1, aggregate_function=1, post_transform=0, tree_roots=[0],
        nodes_featureids=[0, 1], nodes_modes=numpy_helper.from_array(np.array([6, 6], np.uint8)),
        nodes_splits=numpy_helper.from_array(np.array([0.0, 0.0], np.float32)),
        membership_values=numpy_helper.from_array(np.array([0.5, 2.0, np.nan, 3.0], np.float32)),
        nodes_truenodeids=[0, 1], nodes_trueleafs=[1, 1],
        nodes_falsenodeids=[1, 2], nodes_falseleafs=[0, 1],
        nodes_missing_value_tracks_true=[0, 1],
        leaf_targetids=[0, 0, 0],
        leaf_weights=numpy_helper.from_array(np.array([10.0, 20.0, 30.0], np.float32)))
    m = graph_model([helper.make_node("TreeEnsemble", ["X"], ["Y"], domain=ML, **attrs)],
                    [vi("X", TensorProto.FLOAT, [None, 2])], [vi("Y", TensorProto.FLOAT, [None, 1])],
                    opsets)
    rows = np.array([[0.5, 0], [2.0, 1], [1.0, 0], [np.nan, 0], [1.0, np.nan], [0.0, 3.0]],
                    np.float32)
    save(out, "tree_ensemble_v5_membership", m, {"X": rows})


@case
def svm_hand_built(out):
    """SVMClassifier with string labels and each kernel; SVMRegressor linear mode (no support
    vectors) and one-class."""
    rng = np.random.default_rng(35)
    sv = rng.normal(size=(7, 3)).astype(np.float32)
    for kernel, params in [("LINEAR", [0.0, 0.0, 0.0]), ("POLY", [0.5, 1.0, 2.0]),
                           ("RBF", [0.4, 0.0, 0.0]), ("SIGMOID", [0.2, 0.1, 0.0])]:
        node = helper.make_node(
            "SVMClassifier", ["X"], ["label", "scores"], domain=ML, kernel_type=kernel,
            kernel_params=params, vectors_per_class=[3, 2, 2],
            support_vectors=sv.ravel().tolist(),
            coefficients=rng.normal(size=14).tolist(), rho=rng.normal(size=3).tolist(),
            classlabels_strings=["a", "b", "c"])
        m = graph_model([node], [vi("X", TensorProto.FLOAT, [None, 3])],
                        [vi("label", TensorProto.STRING, [None]), vi("scores", TensorProto.FLOAT, [None, 3])])
        save(out, f"svm_classifier_{kernel.lower()}_strings", m,
             {"X": rng.normal(size=(8, 3)).astype(np.float32)})
    for n, labels in [(3, {"classlabels_ints": [4, 5, 6]}), (2, {"classlabels_ints": [0, 1]})]:
        # liblinear mode: no support vectors, one coefficient row per class.
        node = helper.make_node(
            "SVMClassifier", ["X"], ["label", "scores"], domain=ML, kernel_type="LINEAR",
            kernel_params=[0.0, 0.0, 0.0],
            coefficients=rng.normal(size=3 * n).tolist(), rho=[0.2], post_transform="NONE", **labels)
        m = graph_model([node], [vi("X", TensorProto.FLOAT, [None, 3])],
                        [vi("label", TensorProto.INT64, [None]), vi("scores", TensorProto.FLOAT, [None, n])])
        save(out, f"svm_classifier_liblinear_{n}_classes", m,
             {"X": rng.normal(size=(8, 3)).astype(np.float32)})
    for one_class in [0, 1]:
        node = helper.make_node(
            "SVMRegressor", ["X"], ["Y"], domain=ML, kernel_type="RBF", kernel_params=[0.3, 0, 0],
            n_supports=7, support_vectors=sv.ravel().tolist(),
            coefficients=rng.normal(size=7).tolist(), rho=[0.25], one_class=one_class)
        m = graph_model([node], [vi("X", TensorProto.FLOAT, [None, 3])],
                        [vi("Y", TensorProto.FLOAT, [None, 1])])
        save(out, f"svm_regressor_one_class{one_class}", m,
             {"X": rng.normal(size=(8, 3)).astype(np.float32)})
    node = helper.make_node("SVMRegressor", ["X"], ["Y"], domain=ML, kernel_type="LINEAR",
                            kernel_params=[0.0, 0.0, 0.0], n_supports=0,
                            coefficients=[0.5, -1.0, 2.0], rho=[0.1])
    m = graph_model([node], [vi("X", TensorProto.FLOAT, [None, 3])],
                    [vi("Y", TensorProto.FLOAT, [None, 1])])
    save(out, "svm_regressor_linear_mode", m, {"X": rng.normal(size=(5, 3)).astype(np.float32)})


@case
def linear_hand_built(out):
    """LinearClassifier: one score column with two labels, every post-transform, string and int
    labels, int and double inputs; LinearRegressor with several targets and PROBIT."""
    rng = np.random.default_rng(36)
    i = 0
    for post in ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"]:
        for targets, labels in [(1, 2), (3, 3)]:
            if post == "PROBIT" and targets == 1 and labels == 2:
                continue  # refused (see linear_classifier_probit_refused)
            kw = ({"classlabels_strings": [f"c{k}" for k in range(labels)]} if i % 2
                  else {"classlabels_ints": [int(v) for v in rng.choice(50, labels, replace=False)]})
            coef = rng.normal(size=targets * 3) * (0.1 if post == "PROBIT" else 1)
            node = helper.make_node("LinearClassifier", ["X"], ["label", "scores"], domain=ML,
                                    coefficients=coef.tolist(),
                                    intercepts=(rng.normal(size=targets) * 0.1).tolist(),
                                    post_transform=post, multi_class=0, **kw)
            cols = 2 if (targets == 1 and labels == 2) else targets
            in_type, np_type = [(TensorProto.FLOAT, np.float32), (TensorProto.DOUBLE, np.float64),
                                (TensorProto.INT64, np.int64), (TensorProto.INT32, np.int32)][i % 4]
            m = graph_model([node], [vi("X", in_type, [None, 3])],
                            [vi("label", TensorProto.STRING if i % 2 else TensorProto.INT64, [None]),
                             vi("scores", TensorProto.FLOAT, [None, cols])])
            x = rng.normal(size=(7, 3)) * (3 if np_type in (np.int64, np.int32) else 1)
            if post == "PROBIT":
                x = np.abs(x) * 0.2
            save(out, f"linear_classifier_{i:02}_{post.lower()}_{targets}t{labels}l", m,
                 {"X": x.astype(np_type)})
            i += 1
    for post, targets in [("NONE", 3), ("PROBIT", 1), ("SOFTMAX", 2)]:
        node = helper.make_node("LinearRegressor", ["X"], ["Y"], domain=ML,
                                coefficients=(rng.normal(size=targets * 3) * 0.1).tolist(),
                                intercepts=(0.5 + 0.01 * rng.normal(size=targets)).tolist(),
                                targets=targets, post_transform=post)
        m = graph_model([node], [vi("X", TensorProto.FLOAT, [None, 3])],
                        [vi("Y", TensorProto.FLOAT, [None, targets])])
        save(out, f"linear_regressor_{post.lower()}_{targets}", m,
             {"X": (rng.normal(size=(6, 3)) * 0.5).astype(np.float32)})


@case
def preprocessing_hand_built(out):
    """Scaler with one value, Imputer on int64 and with a per-feature value, Binarizer, Normalizer
    on int input, FeatureVectorizer, ArrayFeatureExtractor, LabelEncoder float and
    string->string with defaults, opset-4 tensors."""
    rng = np.random.default_rng(37)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    node = helper.make_node("Scaler", ["X"], ["Y"], domain=ML, offset=[0.5], scale=[2.0])
    m = graph_model([node], [vi("X", TensorProto.INT64, [None, 3])], [vi("Y", TensorProto.FLOAT, [None, 3])])
    save(out, "scaler_int_input_one_value", m, {"X": np.array([[1, -2, 3], [0, 5, 9]], np.int64)})
    node = helper.make_node("Scaler", ["X"], ["Y"], domain=ML, offset=[0.5, 1, -1], scale=[2.0, 0.1, 3])
    m = graph_model([node], [vi("X", TensorProto.DOUBLE, [None, 3])], [vi("Y", TensorProto.FLOAT, [None, 3])])
    save(out, "scaler_double_input", m, {"X": x.astype(np.float64) * 1e3})
    node = helper.make_node("Imputer", ["X"], ["Y"], domain=ML, imputed_value_int64s=[7],
                            replaced_value_int64=-1)
    m = graph_model([node], [vi("X", TensorProto.INT64, [None, 3])], [vi("Y", TensorProto.INT64, [None, 3])])
    save(out, "imputer_int64", m, {"X": np.array([[1, -1, 3], [-1, -1, 0]], np.int64)})
    node = helper.make_node("Imputer", ["X"], ["Y"], domain=ML, imputed_value_floats=[1.5, 2.5, 3.5],
                            replaced_value_float=0.0)
    m = graph_model([node], [vi("X", TensorProto.FLOAT, [None, 3])], [vi("Y", TensorProto.FLOAT, [None, 3])])
    save(out, "imputer_value_per_feature", m,
         {"X": np.array([[0.0, 1, np.nan], [2, 0.0, -0.0]], np.float32)})
    node = helper.make_node("Normalizer", ["X"], ["Y"], domain=ML, norm="L2")
    m = graph_model([node], [vi("X", TensorProto.INT32, [None, 3])], [vi("Y", TensorProto.FLOAT, [None, 3])])
    save(out, "normalizer_l2_int32", m, {"X": np.array([[3, 4, 0], [0, 0, 0], [-1, 2, -2]], np.int32)})
    node = helper.make_node("FeatureVectorizer", ["A", "B"], ["Y"], domain=ML, inputdimensions=[2, 3])
    m = graph_model([node], [vi("A", TensorProto.FLOAT, [None, 2]), vi("B", TensorProto.FLOAT, [None, 3])],
                    [vi("Y", TensorProto.FLOAT, [None, 5])])
    save(out, "feature_vectorizer", m, {"A": x[2:4, :2], "B": x[:2]})
    node = helper.make_node("FeatureVectorizer", ["A", "B"], ["Y"], domain=ML, inputdimensions=[1, 2])
    m = graph_model([node], [vi("A", TensorProto.INT64, [None, 1]), vi("B", TensorProto.INT64, [None, 2])],
                    [vi("Y", TensorProto.FLOAT, [None, 3])])
    save(out, "feature_vectorizer_int64", m,
         {"A": np.array([[1], [3]], np.int64), "B": np.array([[5, -6], [7, 2**40]], np.int64)})
    idx = numpy_helper.from_array(np.array([2, 0], np.int64), "idx")
    node = helper.make_node("ArrayFeatureExtractor", ["X", "idx"], ["Y"], domain=ML)
    m = graph_model([node], [vi("X", TensorProto.FLOAT, [None, 3])], [vi("Y", TensorProto.FLOAT, [None, 2])],
                    initializers=[idx])
    save(out, "array_feature_extractor", m, {"X": x})
    node = helper.make_node("LabelEncoder", ["X"], ["Y"], domain=ML, keys_strings=["a", "b"],
                            values_strings=["A", "B"], default_string="?")
    m = graph_model([node], [vi("X", TensorProto.STRING, [None])], [vi("Y", TensorProto.STRING, [None])],
                    opsets={"": 17, ML: 2})
    save(out, "label_encoder_string_to_string", m, {"X": np.array(["a", "c", "b"])})
    node = helper.make_node("LabelEncoder", ["X"], ["Y"], domain=ML, keys_floats=[0.5, -0.0, 2.0],
                            values_int64s=[1, 2, 3], default_int64=-9)
    m = graph_model([node], [vi("X", TensorProto.FLOAT, [None])], [vi("Y", TensorProto.INT64, [None])],
                    opsets={"": 17, ML: 2})
    save(out, "label_encoder_float_to_int", m, {"X": np.array([0.5, 0.0, 2.0, 7.0, np.nan], np.float32)})
    node = helper.make_node(
        "LabelEncoder", ["X"], ["Y"], domain=ML,
        keys_tensor=numpy_helper.from_array(np.array([1, 5, 9], np.int64)),
        values_tensor=numpy_helper.from_array(np.array([0.25, 0.5, 0.75], np.float64)),
        default_tensor=numpy_helper.from_array(np.array([-1.0], np.float64)))
    m = graph_model([node], [vi("X", TensorProto.INT64, [None])], [vi("Y", TensorProto.DOUBLE, [None])],
                    opsets={"": 21, ML: 4})
    save(out, "label_encoder_tensors", m, {"X": np.array([5, 1, 3, 9], np.int64)})
    node = helper.make_node(
        "LabelEncoder", ["X"], ["Y"], domain=ML,
        keys_tensor=numpy_helper.from_array(np.array(["a", "b", "c"], dtype=object)),
        values_tensor=numpy_helper.from_array(np.array([7, -3, 300], np.int16)),
        default_tensor=numpy_helper.from_array(np.array([42], np.int16)))
    m = graph_model([node], [vi("X", TensorProto.STRING, [None])], [vi("Y", TensorProto.INT16, [None])],
                    opsets={"": 21, ML: 4})
    save(out, "label_encoder_string_to_int16", m, {"X": np.array(["c", "zz", "a"])})
    node = helper.make_node("OneHotEncoder", ["X"], ["Y"], domain=ML, cats_int64s=[4, 2, 8], zeros=1)
    m = graph_model([node], [vi("X", TensorProto.DOUBLE, [None, 2])], [vi("Y", TensorProto.FLOAT, [None, 2, 3])])
    save(out, "one_hot_encoder_double_input", m, {"X": np.array([[2.0, 8.9], [4.0, 5.0]], np.float64)})
    node = helper.make_node("Binarizer", ["X"], ["Y"], domain=ML, threshold=-0.5)
    m = graph_model([node], [vi("X", TensorProto.FLOAT, [None, 3])], [vi("Y", TensorProto.FLOAT, [None, 3])])
    save(out, "binarizer_negative_threshold", m, {"X": x})


@case
def refusals(out):
    """Models the engine must refuse at load, naming the operator and the problem."""
    node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain=ML, n_targets=1,
                            nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2],
                            nodes_featureids=[0, 0, 0], nodes_values=[0.5, 0, 0],
                            nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
                            nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[5, 0, 0],
                            target_ids=[0, 0], target_nodeids=[1, 2], target_treeids=[0, 0],
                            target_weights=[1.0, 2.0])
    m = graph_model([node], [vi("X", TensorProto.FLOAT, [None, 1])], [vi("Y", TensorProto.FLOAT, [None, 1])])
    save_refusal(out, "refuse_dangling_node", m, ["TreeEnsembleRegressor", "nodes_falsenodeids[0]", "5"])
    node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain=ML, n_targets=1,
                            nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2],
                            nodes_featureids=[0, 0, 0], nodes_values=[0.5, 0.1, 0],
                            nodes_modes=["BRANCH_LEQ", "BRANCH_LEQ", "LEAF"],
                            nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 2, 0],
                            target_ids=[0], target_nodeids=[2], target_treeids=[0],
                            target_weights=[1.0])
    m = graph_model([node], [vi("X", TensorProto.FLOAT, [None, 1])], [vi("Y", TensorProto.FLOAT, [None, 1])])
    save_refusal(out, "refuse_cycle", m, ["TreeEnsembleRegressor", "cycle"])
    node = helper.make_node("LinearClassifier", ["X"], ["label", "scores"], domain=ML,
                            coefficients=[1.0, 2.0], intercepts=[0.5], classlabels_ints=[0, 1],
                            post_transform="PROBIT")
    m = graph_model([node], [vi("X", TensorProto.FLOAT, [None, 2])],
                    [vi("label", TensorProto.INT64, [None]), vi("scores", TensorProto.FLOAT, [None, 2])])
    save_refusal(out, "refuse_linear_classifier_binary_probit", m, ["LinearClassifier", "PROBIT"])
    node = helper.make_node("SVMClassifier", ["X"], ["label", "scores"], domain=ML, kernel_type="RBF",
                            kernel_params=[0.5, 0, 0], vectors_per_class=[2, 2],
                            support_vectors=[0.0] * 8, coefficients=[1.0] * 3, rho=[0.0],
                            classlabels_ints=[0, 1])
    m = graph_model([node], [vi("X", TensorProto.FLOAT, [None, 2])],
                    [vi("label", TensorProto.INT64, [None]), vi("scores", TensorProto.FLOAT, [None, 2])])
    save_refusal(out, "refuse_svm_coefficient_count", m, ["SVMClassifier", "coefficients"])
    node = helper.make_node("DictVectorizer", ["X"], ["Y"], domain=ML, string_vocabulary=["a"])
    m = graph_model([node], [vi("X", TensorProto.FLOAT, [None, 1])], [vi("Y", TensorProto.FLOAT, [None, 1])])
    save_refusal(out, "refuse_dict_vectorizer", m, ["DictVectorizer", "ai.onnx.ml"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--only", help="comma-separated case functions to run")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    names = args.only.split(",") if args.only else list(CASES)
    for name in names:
        if name not in CASES:
            sys.exit(f"unknown case {name}; known: {', '.join(CASES)}")
        CASES[name](args.out)


if __name__ == "__main__":
    main()
