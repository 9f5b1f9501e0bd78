#!/usr/bin/env python3
"""Latency of Vouch's engine against onnxruntime on the same models and inputs, in one run.

For each model (see scripts/bench_models.py) it times, interleaved round by round:
  ORT      onnxruntime's session.run in this process: 1 intra-op thread, 1 inter-op thread,
           sequential execution, ORT_ENABLE_ALL graph optimisations
  exact    vouch-bench --profile exact-fused (engine alone: Model::run_without_trace); another
           exact profile with --exact-profile (exact = exact-portable/1)
  native   vouch-bench --profile native  (engine alone)
  receipt  the exact process's second path: Model::run (trace + commitments) + receipt + signature
and prints a Markdown table of p50 latencies and their ratios to ORT, with geometric means. Each
engine does the same warm-up and the same number of timed iterations; each vouch-bench process
loads its model once and is paced through stdin, and the order of the three engines rotates from
round to round so that all see the same machine conditions. Percentiles are nearest-rank, as in
vouch-bench.

Setup (done automatically into target/bench-venv when the packages are missing):
  python3 -m venv target/bench-venv
  target/bench-venv/bin/pip install onnxruntime==1.32.0 onnx==1.19.1 numpy==2.4.6

Usage:
  python3 scripts/bench_vs_ort.py            # all 13 models, ≈4 min on 2 cores (+1 min to make models)
  python3 scripts/bench_vs_ort.py --repeat 3 # the documented run: medians of 3 passes, ≈12 min
  python3 scripts/bench_vs_ort.py --quick    # CI smoke: iris_mlp and mnist_cnn, few iterations
  python3 scripts/bench_vs_ort.py --models light_resnet50,mlp_784 --scale 2
  python3 scripts/bench_vs_ort.py --exact-profile exact   # exact-portable/1 in the exact column
"""
import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time

# Importing bench_models must not leave a __pycache__ in the source tree.
sys.dont_write_bytecode = True

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
VENV = os.path.join(ROOT, "target", "bench-venv")
REQUIREMENTS = ["onnxruntime==1.32.0", "onnx==1.19.1", "numpy==2.4.6"]


def ensure_packages():
    """Re-runs this script in target/bench-venv (made on first use) unless the packages import."""
    try:
        import numpy  # noqa: F401
        import onnx
        import onnxruntime  # noqa: F401

        if onnx.__version__ == "1.19.1":
            return
    except ImportError:
        pass
    if os.environ.get("VOUCH_BENCH_IN_VENV"):
        sys.exit("bench_vs_ort: the venv lacks onnxruntime / onnx==1.19.1 / numpy")
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        print(f"bench_vs_ort: creating {VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", *REQUIREMENTS], check=True)
    env = dict(os.environ, VOUCH_BENCH_IN_VENV="1")
    os.execve(python, [python, *sys.argv], env)


# (warm-up, timed iterations, rounds) per model, identical for every engine. Chosen so that a
# pass over all models takes about 3 minutes here (vgg19 alone 70 s: 1.8 s a run under exact).
PLAN = {
    "identity": (200, 5000, 5),
    "iris_mlp": (200, 5000, 5),
    "mlp_784": (100, 2000, 5),
    "mnist_cnn": (50, 1000, 5),
    "light_squeezenet": (3, 40, 5),
    "light_shufflenet": (3, 40, 5),
    "light_inception_v1": (2, 15, 5),
    "light_inception_v2": (2, 15, 5),
    "light_resnet50": (2, 15, 5),
    "light_densenet121": (2, 15, 5),
    "light_bvlc_alexnet": (2, 15, 5),
    "light_zfnet512": (2, 15, 5),
    "light_vgg19": (1, 10, 5),
}
QUICK = {"iris_mlp": (20, 200, 2), "mnist_cnn": (5, 40, 2)}

# The vouch-bench --profile each engine column runs; "exact" is set from --exact-profile.
PROFILES = {"exact": "exact-fused", "native": "native"}


def percentile(sorted_us, p):
    """Nearest rank, as vouch-bench computes it."""
    if not sorted_us:
        return 0.0
    rank = math.ceil(p / 100 * len(sorted_us))
    return sorted_us[min(max(rank, 1), len(sorted_us)) - 1]


def latency(samples_us):
    s = sorted(samples_us)
    return {"iterations": len(s), "p50_us": percentile(s, 50), "p90_us": percentile(s, 90),
            "p99_us": percentile(s, 99), "mean_us": sum(s) / len(s) if s else 0.0,
            "min_us": s[0] if s else 0.0, "max_us": s[-1] if s else 0.0}


class Ort:
    """onnxruntime on one model, timed in this process."""

    def __init__(self, model_path, feeds):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        start = time.perf_counter()
        self.session = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
        self.load_ms = (time.perf_counter() - start) * 1e3
        self.feeds = feeds
        self.names = [o.name for o in self.session.get_outputs()]
        self.samples = []
        self.outputs = dict(zip(self.names, self.session.run(self.names, feeds)))

    def warm_up(self, n):
        for _ in range(n):
            self.session.run(self.names, self.feeds)

    def measure(self, n):
        run, feeds, names, clock = self.session.run, self.feeds, self.names, time.perf_counter_ns
        for _ in range(n):
            start = clock()
            run(names, feeds)
            self.samples.append((clock() - start) / 1e3)


class Vouch:
    """A vouch-bench process under one profile, paced round by round through its stdin."""

    def __init__(self, binary, model_path, inputs, profile, warmup, outputs_dir):
        cmd = [binary, model_path, "--profile", profile, "--warmup", str(warmup), "--paced",
               "--save-outputs", outputs_dir]
        for name, path in inputs.items():
            cmd += ["--input", f"{name}={path}"]
        self.profile = profile
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.error = None
        self.report = None
        self._expect("ready")

    def _expect(self, event):
        line = self.proc.stdout.readline()
        if not line:
            self._fail()
            return
        if json.loads(line).get("event") != event:
            self.error = f"unexpected message from vouch-bench: {line.strip()}"
            self.proc.kill()

    def _fail(self):
        self.proc.wait()
        err = self.proc.stderr.read().strip().splitlines()
        self.error = err[-1] if err else f"vouch-bench exited with status {self.proc.returncode}"

    def measure(self, n):
        if self.error:
            return
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        self._expect("measured")

    def finish(self):
        if self.error:
            return
        self.proc.stdin.close()
        out = self.proc.stdout.read().strip().splitlines()
        self.proc.wait()
        if self.proc.returncode not in (0, 3) or not out:
            self._fail()
            return
        self.report = json.loads(out[-1])


def max_abs_diff(ort_outputs, vouch_report):
    """Largest |ORT − vouch| over the float outputs; count of differing elements otherwise."""
    import numpy as np

    worst, mismatched = 0.0, 0
    for o in vouch_report["outputs"]:
        ours = np.load(o["file"])
        theirs = np.asarray(ort_outputs[o["name"]])
        if ours.shape != theirs.shape:
            theirs = theirs.reshape(ours.shape)
        if ours.dtype.kind == "f":
            worst = max(worst, float(np.max(np.abs(ours.astype(np.float64) - theirs))))
        else:
            mismatched += int(np.sum(ours != theirs))
    return worst, mismatched


def bench_model(entry, plan, binary, out_dir, log):
    import numpy as np

    warmup, iters, rounds = plan
    base = entry["dir"]
    model_path = os.path.join(base, entry["model"])
    inputs = {name: os.path.join(base, p) for name, p in entry["inputs"].items()}
    feeds = {name: np.load(p) for name, p in inputs.items()}
    result = {"name": entry["name"], "warmup": warmup, "iterations": iters, "rounds": rounds,
              "model_bytes": entry["model_bytes"], "source": entry["source"], "errors": {}}
    start = time.time()

    ort = Ort(model_path, feeds)
    ort.warm_up(warmup)
    tools = {"ort": ort}
    for profile in ("exact", "native"):
        outputs_dir = os.path.join(out_dir, "outputs", entry["name"], profile)
        v = Vouch(binary, model_path, inputs, PROFILES[profile], warmup, outputs_dir)
        if v.error:
            result["errors"][profile] = v.error
        tools[profile] = v

    order = ["ort", "exact", "native"]
    for r in range(rounds):
        n = iters // rounds + (1 if r < iters % rounds else 0)
        for name in order[r % 3:] + order[:r % 3]:
            tools[name].measure(n)
    result["ort"] = latency(ort.samples)
    result["ort_load_ms"] = ort.load_ms
    for profile in ("exact", "native"):
        v = tools[profile]
        v.finish()
        if v.error:
            result["errors"][profile] = v.error
            continue
        result[profile] = v.report
        result[f"{profile}_vs_ort"] = max_abs_diff(ort.outputs, v.report)
    result["seconds"] = time.time() - start
    log(f"{entry['name']}: {result['seconds']:.1f} s"
        + "".join(f"; {p} failed: {e}" for p, e in result["errors"].items()))
    return result


# The p50s that are reported; with --repeat, the median over the passes.
P50_PATHS = [("ort",), ("exact", "engine_alone"), ("exact", "with_receipt"),
             ("exact", "run_with_trace"), ("exact", "receipt_and_sign"),
             ("native", "engine_alone"), ("native", "with_receipt")]


def _get(r, path):
    for k in path:
        if r is None or k not in r:
            return None
        r = r[k]
    return r


def aggregate(runs):
    """One model's result over several passes: the median of each p50, the spread of each ratio
    to ORT, and every error and output check. Other fields are the first pass's (the results
    JSON keeps every pass too)."""
    import copy
    import statistics

    merged = copy.deepcopy(runs[0])
    merged["passes"] = len(runs)
    for path in P50_PATHS:
        values = [v["p50_us"] for v in (_get(r, path) for r in runs) if v]
        target = _get(merged, path)
        if target and len(values) == len(runs):
            target["p50_us"] = statistics.median(values)
    spread = {}
    for key, path in (("exact", ("exact", "engine_alone")), ("native", ("native", "engine_alone")),
                      ("receipt", ("exact", "with_receipt"))):
        ratios = [_get(r, path)["p50_us"] / r["ort"]["p50_us"] for r in runs if _get(r, path)]
        if len(ratios) == len(runs) > 1:
            spread[key] = (min(ratios), max(ratios))
    merged["ratio_spread"] = spread
    for r in runs[1:]:
        merged["errors"].update(r["errors"])
        for p in ("exact", "native"):
            if p in merged and p in r:
                merged[p]["outputs_identical"] &= r[p]["outputs_identical"]
    merged["seconds"] = sum(r["seconds"] for r in runs)
    return merged


def onnx_intermediate_mib(model_path, input_shapes):
    """MiB of all node outputs of the ONNX graph on inputs of these shapes (by shape inference):
    about what the trace hashes per run (tract's optimised graph fuses some nodes, adds others)."""
    import numpy as np
    import onnx
    from onnx import helper

    model = onnx.load(model_path)
    for i in model.graph.input:
        if i.name in input_shapes:
            dims = i.type.tensor_type.shape.dim
            for d, n in zip(dims, input_shapes[i.name]):
                d.ClearField("dim_param")
                d.dim_value = n
    model = onnx.shape_inference.infer_shapes(model)
    g = model.graph
    infos = {v.name: v for v in list(g.value_info) + list(g.output)}
    total = 0
    for node in g.node:
        if node.op_type == "Constant":
            continue
        for o in node.output:
            t = infos.get(o)
            if t is None or not t.type.tensor_type.HasField("shape"):
                continue
            dims = [d.dim_value for d in t.type.tensor_type.shape.dim]
            if all(d > 0 for d in dims):
                size = np.dtype(helper.tensor_dtype_to_np_dtype(t.type.tensor_type.elem_type))
                total += int(np.prod(dims)) * size.itemsize
    return total / 2**20


def fmt_us(us):
    if us is None:
        return "–"
    return f"{us:,.1f}" if us < 100 else f"{us:,.0f}"


def fmt_ratio(r, spread=None):
    if r is None:
        return "–"
    return f"{r:.2f}×" + (f" ({spread[0]:.2f}–{spread[1]:.2f})" if spread else "")


def p50(result, key, path="engine_alone"):
    r = result.get(key)
    return None if r is None else r[path]["p50_us"]


def geomean(values):
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def table(results):
    head = ("| model | ORT p50 µs | exact p50 µs | exact/ORT | native p50 µs | native/ORT "
            "| exact+trace+receipt p50 µs | /ORT | trace+receipt overhead µs (% of exact) "
            "| max abs diff vs ORT, exact / native | (a)=(b) exact, native |")
    lines = [head, "|" + "---|" * head.count(" |")]
    ratios = {"exact": [], "native": [], "receipt": []}
    light = {"exact": [], "native": [], "receipt": []}
    for r in results:
        ort = r["ort"]["p50_us"]
        exact, native = p50(r, "exact"), p50(r, "native")
        receipt = p50(r, "exact", "with_receipt")
        row_ratios = {"exact": exact and exact / ort, "native": native and native / ort,
                      "receipt": receipt and receipt / ort}
        if r["name"] != "identity":  # the call floor, not a model
            for k, v in row_ratios.items():
                ratios[k].append(v)
                if r["name"].startswith("light_"):
                    light[k].append(v)
        overhead = "–"
        if exact and receipt:
            overhead = f"{fmt_us(receipt - exact)} ({100 * (receipt - exact) / exact:.0f}%)"
        diffs = " / ".join(
            ("–" if f"{p}_vs_ort" not in r else
             f"{r[f'{p}_vs_ort'][0]:.1e}" + (f" ({r[f'{p}_vs_ort'][1]} ints differ)"
                                           if r[f"{p}_vs_ort"][1] else ""))
            for p in ("exact", "native"))
        same = " ".join("yes" if r[p]["outputs_identical"] else "**NO**"
                        for p in ("exact", "native") if p in r) or "–"
        name = r["name"] + (" (call floor)" if r["name"] == "identity" else "")
        sp = r.get("ratio_spread", {})
        lines.append(f"| {name} | {fmt_us(ort)} | {fmt_us(exact)} "
                     f"| {fmt_ratio(row_ratios['exact'], sp.get('exact'))} "
                     f"| {fmt_us(native)} | {fmt_ratio(row_ratios['native'], sp.get('native'))} "
                     f"| {fmt_us(receipt)} | {fmt_ratio(row_ratios['receipt'], sp.get('receipt'))} "
                     f"| {overhead} | {diffs} | {same} |")
    gm = {k: geomean(v) for k, v in ratios.items()}
    gl = {k: geomean(v) for k, v in light.items()}
    lines.append(f"| **geometric mean** (models, floor excluded) | | | **{fmt_ratio(gm['exact'])}** "
                 f"| | **{fmt_ratio(gm['native'])}** | | **{fmt_ratio(gm['receipt'])}** | | | |")
    if any(light.values()):
        lines.append(f"| geometric mean, light models only | | | {fmt_ratio(gl['exact'])} | "
                     f"| {fmt_ratio(gl['native'])} | | {fmt_ratio(gl['receipt'])} | | | |")
    return "\n".join(lines), {"all": gm, "light": gl}


def breakdown(results):
    """Where (b)'s time goes, under the exact profile."""
    lines = ["| model | trace nodes | engine alone p50 µs | run with trace p50 µs "
             "| receipt + sign p50 µs | trace cost as MiB of SHA-256 | ONNX intermediates MiB "
             "| exact load ms | ORT load ms |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        e = r.get("exact")
        if not e:
            continue
        trace_us = e["run_with_trace"]["p50_us"] - e["engine_alone"]["p50_us"]
        lines.append(f"| {r['name']} | {e['trace_nodes']} | {fmt_us(e['engine_alone']['p50_us'])} "
                     f"| {fmt_us(e['run_with_trace']['p50_us'])} "
                     f"| {fmt_us(e['receipt_and_sign']['p50_us'])} "
                     f"| {trace_us * e['hash_mib_per_s'] / 1e6:,.2f} "
                     f"| {r['onnx_intermediate_mib']:,.2f} | {e['load_ms']:,.0f} "
                     f"| {r['ort_load_ms']:,.0f} |")
    return "\n".join(lines)


def machine():
    import numpy
    import onnx
    import onnxruntime

    cpu = "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(),
            "python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
            "onnx": onnx.__version__, "numpy": numpy.__version__, "rustc": rustc,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "loadavg_start": os.getloadavg()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="CI smoke: iris_mlp and mnist_cnn, few iterations (≈10 s after the build)")
    ap.add_argument("--models", help=f"comma-separated subset of: {', '.join(PLAN)}")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply warm-up and timed iterations by this [%(default)s]")
    ap.add_argument("--repeat", type=int, default=1,
                    help="measure every model this many times, one pass over all models after "
                         "another, and report the medians of the p50s [%(default)s]")
    ap.add_argument("--bin", help="vouch-bench binary [build it: cargo build --release -p vouch-bench]")
    ap.add_argument("--exact-profile", default=PROFILES["exact"],
                    help="the exact profile measured (exact-fused, or exact for exact-portable/1) "
                         "[%(default)s]")
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "bench-results"),
                    help="where results JSON and outputs go [%(default)s]")
    a = ap.parse_args()
    PROFILES["exact"] = a.exact_profile
    ensure_packages()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_models

    plans = dict(QUICK if a.quick else PLAN)
    if a.models:
        plans = {m: PLAN.get(m) or QUICK.get(m) for m in a.models.split(",")}
        unknown = [m for m, p in plans.items() if p is None]
        if unknown:
            sys.exit(f"bench_vs_ort: unknown models {unknown}; known: {', '.join(PLAN)}")
    plans = {m: (max(1, round(w * a.scale)), max(r, round(n * a.scale)), r)
             for m, (w, n, r) in plans.items()}

    def log(msg):
        print(f"bench_vs_ort: {msg}", file=sys.stderr, flush=True)

    binary = a.bin
    if not binary:
        log("cargo build --release -p vouch-bench")
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "vouch-bench"], cwd=ROOT,
                       check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        binary = os.path.join(target, "release", "vouch-bench")

    started = time.time()
    entries = bench_models.prepare(bench_models.DEFAULT_OUT, list(plans))
    prepared = time.time()
    os.makedirs(a.out, exist_ok=True)
    info = machine()
    import numpy as np

    passes = []
    for rep in range(a.repeat):
        if a.repeat > 1:
            log(f"pass {rep + 1} of {a.repeat}")
        passes.append([bench_model(e, plans[e["name"]], binary, a.out, log) for e in entries])
    results = [aggregate([p[i] for p in passes]) for i in range(len(entries))]
    for r, e in zip(results, entries):
        r["onnx_intermediate_mib"] = onnx_intermediate_mib(
            os.path.join(e["dir"], e["model"]),
            {n: np.load(os.path.join(e["dir"], f), mmap_mode="r").shape
             for n, f in e["inputs"].items()})
    finished = time.time()
    info["loadavg_end"] = os.getloadavg()

    md, gm = table(results)
    kernel = {p: next((r[p]["kernel_isa"] for r in results if p in r), "?")
              for p in ("exact", "native")}
    errors = [f"- {r['name']} under {p}: {e}" for r in results for p, e in r["errors"].items()]
    text = "\n".join([
        f"{info['date']}; {info['cpu']}, {info['cores']} cores; load average at start "
        f"{info['loadavg_start'][0]:.1f}, at end {info['loadavg_end'][0]:.1f}",
        f"onnxruntime {info['onnxruntime']}, onnx {info['onnx']}, numpy {info['numpy']}, "
        f"Python {info['python']}; {info['rustc']}; "
        + next((r["exact"]["engine"] for r in results if "exact" in r), "vouch-engine ?"),
        "profiles: exact = "
        + next((r["exact"]["profile"] for r in results if "exact" in r), PROFILES["exact"])
        + f", native = native/1; tract kernels: exact = {kernel['exact']}, "
        f"native = {kernel['native']}; 1 thread each; "
        + (f"medians of {a.repeat} passes (ratio range over the passes in brackets)"
           if a.repeat > 1 else "one pass"),
        "",
        md,
        "",
        "Exact profile, where the receipt path's time goes (p50"
        + (f", medians of {a.repeat} passes" if a.repeat > 1 else "") + "). The trace's cost "
        "(run with trace − engine alone) is shown as the MiB that SHA-256 hashes in that time "
        f"here ({results[0].get('exact', {}).get('hash_mib_per_s', 0):,.0f} MiB/s), next to the "
        "size of all intermediate tensors of the ONNX graph:",
        "",
        breakdown(results),
        "",
        f"Models prepared in {prepared - started:.0f} s, measured in {finished - prepared:.0f} s.",
        *(["", "Errors:", *errors] if errors else []),
    ])
    print(text)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(a.out, f"bench-{'quick-' if a.quick else ''}{stamp}.json")
    with open(path, "w") as f:
        json.dump({"machine": info, "plans": plans, "geometric_means": gm, "results": results,
                   "passes": passes, "markdown": text}, f, indent=1)
    log(f"results in {path}")
    identical = all(r[p]["outputs_identical"] for r in results for p in ("exact", "native") if p in r)
    sys.exit(0 if identical and not errors else 1)


if __name__ == "__main__":
    main()
