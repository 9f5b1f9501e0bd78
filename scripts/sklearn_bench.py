#!/usr/bin/env python3
"""Latency of Vouch's tree-ensemble operators against onnxruntime, in one run (docs/benchmarks-onnx-ml.md).

Trains three scikit-learn models on seeded data and exports them with skl2onnx (ZipMap off):
  rf_classifier   RandomForestClassifier, 100 trees, max_depth 10, 20 features, 3 classes
  gb_classifier   GradientBoostingClassifier, 100 rounds x 3 classes (300 trees), max_depth 3
  gb_regressor    GradientBoostingRegressor, 200 trees, max_depth 5
then times each on 1 row and on a batch of 100 rows with scripts/bench_vs_ort.py's harness:
onnxruntime's session.run in this process (1 intra-op and 1 inter-op thread, sequential, all graph
optimisations) interleaved round by round with vouch-bench under the exact and native profiles
(engine alone: Model::run_without_trace, and the receipt path). Prints a Markdown table of p50s
and the ratios to onnxruntime, and checks that both engines agree (labels exactly, scores within
1e-5).

Usage (release build: cargo build --release -p vouch-bench):
  VOUCH_PYTHON=.venv/bin/python; $VOUCH_PYTHON scripts/sklearn_bench.py [--scale 0.2] [--repeat 3]
Requirements: scripts/requirements-test.txt (scikit-learn, skl2onnx, onnx, onnxruntime, numpy).
"""
import argparse
import json
import os
import statistics
import sys
import time
import warnings

sys.dont_write_bytecode = True
warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import bench_vs_ort  # noqa: E402  (the shared harness: Ort, Vouch, bench_model, machine)

import numpy as np  # noqa: E402

OUT = os.path.join(ROOT, "target", "bench-onnx-ml")
# (warm-up, timed iterations, rounds) per batch size.
PLAN = {1: (300, 6000, 6), 100: (30, 600, 6)}


def train(seed=0):
    from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor,
                                  RandomForestClassifier)

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(6000, 20)).astype(np.float32)
    score = x[:, 0] + x[:, 1] * x[:, 2] - 0.5 * x[:, 3] + 0.3 * np.sin(3 * x[:, 4])
    y = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    yr = (score + 0.1 * rng.normal(size=len(x))).astype(np.float32)
    return x, {
        "rf_classifier": RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0,
                                                n_jobs=1).fit(x, y),
        "gb_classifier": GradientBoostingClassifier(n_estimators=100, max_depth=3,
                                                    random_state=0).fit(x[:3000], y[:3000]),
        "gb_regressor": GradientBoostingRegressor(n_estimators=200, max_depth=5,
                                                  random_state=0).fit(x[:3000], yr[:3000]),
    }


def prepare(out):
    from skl2onnx import to_onnx

    x, models = train()
    rng = np.random.default_rng(1)
    entries = []
    for name, m in models.items():
        options = {id(m): {"zipmap": False}} if hasattr(m, "classes_") else None
        onx = to_onnx(m, x[:1], options=options, target_opset={"": 17, "ai.onnx.ml": 3})
        data = onx.SerializeToString()
        nodes = sum(len(a.ints) for n in onx.graph.node for a in n.attribute if a.name == "nodes_nodeids")
        for rows in PLAN:
            feed = x[rng.choice(len(x), rows, replace=False)]
            entry = bench_vs_ort_entry(out, f"{name}_{rows}row{'s' if rows > 1 else ''}", data,
                                       {onx.graph.input[0].name: feed},
                                       f"{type(m).__name__}, {nodes} nodes")
            entry["rows"] = rows
            entries.append(entry)
    return entries


def bench_vs_ort_entry(out, name, data, inputs, source):
    """Writes model and .npy inputs the way scripts/bench_models.py does."""
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(data)
    files = {}
    for k, v in inputs.items():
        np.save(os.path.join(d, f"{k}.npy"), v)
        files[k] = os.path.join(name, f"{k}.npy")
    return {"name": name, "model": os.path.join(name, "model.onnx"), "inputs": files,
            "source": source, "model_bytes": len(data), "dir": out}


def agree(result):
    """Vouch's saved outputs against onnxruntime's: labels exact, scores within 1e-5."""
    for profile in ("exact", "native"):
        worst, mismatched = result.get(f"{profile}_vs_ort", (None, None))
        if worst is None or worst > 1e-5 or mismatched:
            return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply iterations [%(default)s]")
    ap.add_argument("--repeat", type=int, default=1, help="passes; medians reported [%(default)s]")
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR",
                                                                 os.path.join(ROOT, "target")),
                                                  "release", "vouch-bench"))
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"sklearn_bench: no {a.bin}; build it with cargo build --release -p vouch-bench")

    def log(msg):
        print(f"sklearn_bench: {msg}", file=sys.stderr, flush=True)

    log("training and exporting")
    entries = prepare(OUT)
    info = bench_vs_ort.machine()
    passes = []
    for rep in range(a.repeat):
        results = []
        for e in entries:
            w, n, r = PLAN[e["rows"]]
            plan = (max(1, round(w * a.scale)), max(r, round(n * a.scale)), r)
            results.append(bench_vs_ort.bench_model(e, plan, a.bin, OUT, log))
        passes.append(results)
    info["loadavg_end"] = os.getloadavg()

    def p50(r, *path):
        for k in path:
            r = r.get(k) if r else None
        return r

    lines = [
        f"{info['date']}; {info['cpu']}, {info['cores']} cores; load average at start "
        f"{info['loadavg_start'][0]:.1f}, at end {info['loadavg_end'][0]:.1f}",
        f"onnxruntime {info['onnxruntime']} (Python, 1 thread); {info['rustc']}; "
        f"{'medians of %d passes' % a.repeat if a.repeat > 1 else 'one pass'}",
        "",
        "| model | rows | ORT p50 µs | Vouch exact p50 µs | exact / ORT | Vouch native p50 µs "
        "| native / ORT | exact + receipt p50 µs | outputs agree |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    summary = []
    for i, e in enumerate(entries):
        runs = [p[i] for p in passes]
        med = lambda *path: statistics.median(v for v in (p50(r, *path) for r in runs) if v is not None)  # noqa: E731
        ort = med("ort", "p50_us")
        exact = med("exact", "engine_alone", "p50_us")
        native = med("native", "engine_alone", "p50_us")
        receipt = med("exact", "with_receipt", "p50_us")
        ok = all(agree(r) for r in runs)
        model = e["name"].rsplit("_", 1)[0]
        lines.append(f"| {model} ({e['source']}) | {e['rows']} | {ort:,.1f} | {exact:,.1f} | "
                     f"{exact / ort:.2f} | {native:,.1f} | {native / ort:.2f} | {receipt:,.1f} | "
                     f"{'yes' if ok else 'NO'} |")
        summary.append({"name": e["name"], "ort_p50_us": ort, "exact_p50_us": exact,
                        "native_p50_us": native, "exact_receipt_p50_us": receipt, "agree": ok})
    text = "\n".join(lines)
    print(text)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"bench-onnx-ml-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump({"machine": info, "summary": summary, "passes": passes, "markdown": text}, f,
                  indent=1)
    log(f"results in {path}")
    sys.exit(0 if all(s["agree"] for s in summary) else 1)


if __name__ == "__main__":
    main()
