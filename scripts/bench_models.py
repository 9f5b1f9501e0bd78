#!/usr/bin/env python3
"""Prepares the models and inputs of the engine benchmark (scripts/bench_vs_ort.py) in a git-ignored
cache, target/bench-models/ by default, and writes a manifest.json there.

Models:
  iris_mlp, mlp_784, mnist_cnn   the repo's fixtures (tests/fixtures/models), with their .npy inputs
  identity                       one Identity node on a float32 [1, 4]: the per-call floor of each engine
  light_*                        the 9 `light` models of the onnx==1.19.1 wheel
                                 (onnx/backend/test/data/light), reseeded: see `reseed`

The `light` models replace every weight by a ConstantOfShape node filled with 0.02, so every input
gives the same output and a comparison of outputs says nothing. `reseed` turns each ConstantOfShape
fed by a constant shape into an initializer of seeded random values of that shape, and redraws the
few float initializers, so the graph, the shapes and so the work are those of the original model.
Values are drawn by the role of the tensor (He-scaled conv/gemm weights, small biases, batch-norm
scales and variances in [0.5, 1.5]); then `calibrate` sets every batch norm's statistics to those
of its actual input and scales the classifier so the softmax is not saturated, as in a trained
network. The wheel has no input data for these models: each gets a seeded standard-normal input.

Seeds: one per model (crc32 of its name), so each model is reproducible alone.

Requirements: pip install numpy onnx==1.19.1 onnxruntime  (scripts/bench_vs_ort.py sets up a venv with them)
"""
import argparse
import json
import os
import re
import shutil
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "models")
DEFAULT_OUT = os.path.join(ROOT, "target", "bench-models")
LIGHT = ["squeezenet", "shufflenet", "bvlc_alexnet", "zfnet512", "resnet50", "inception_v1",
         "inception_v2", "densenet121", "vgg19"]
ONNX_VERSION = "1.19.1"
# Bumped whenever what this script writes changes, so stale caches are rebuilt.
FORMAT = 3


def seed_of(name):
    return zlib.crc32(name.encode())


def file_stem(name):
    """A file name for a tensor name (ONNX names may hold '/')."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def light_dir():
    if onnx.__version__ != ONNX_VERSION:
        sys.exit(f"bench_models: needs onnx=={ONNX_VERSION} (its wheel ships the light models), "
                 f"found {onnx.__version__}")
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def consumers_of(graph):
    uses = {}
    for node in graph.node:
        for slot, name in enumerate(node.input):
            uses.setdefault(name, []).append((node, slot))
    return uses


# Ops a weight passes through before the op that gives it its role.
PASS_THROUGH = {"Unsqueeze", "Reshape", "Identity", "Squeeze", "Flatten"}


def role_of(name, uses, depth=0):
    """(op, input slot, node) of the first real consumer of `name`."""
    for node, slot in uses.get(name, []):
        if node.op_type in PASS_THROUGH and slot == 0 and depth < 4:
            found = role_of(node.output[0], uses, depth + 1)
            if found:
                return found
        else:
            return node.op_type, slot, node
    return None


def draw(rng, shape, role):
    """Seeded values for a weight of `shape` used as `role`."""
    shape = tuple(int(d) for d in shape)
    op, slot, node = role if role else ("", -1, None)
    if op == "Conv" and slot == 1:
        fan_in = int(np.prod(shape[1:])) or 1
        return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    if op in ("Gemm", "MatMul") and slot == 1:
        trans_b = op == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute)
        fan_in = shape[-1] if trans_b else shape[0]
        return rng.standard_normal(shape) * np.sqrt(2.0 / max(fan_in, 1))
    if op == "BatchNormalization" and slot in (1, 4):  # scale, variance
        return rng.uniform(0.5, 1.5, shape)
    if op == "Mul":  # densenet/inception_v2 scale after batch norm
        return rng.uniform(0.5, 1.5, shape)
    return rng.standard_normal(shape) * 0.05  # biases, means, shifts


def reseed(model, seed):
    """A copy of a `light` model with seeded random weights (see the module doc)."""
    rng = np.random.default_rng(seed)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    uses = consumers_of(graph)

    new_inits, kept_nodes, dropped = [], [], set()
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            dtype = helper.tensor_dtype_to_np_dtype(value.data_type) if value is not None \
                else np.float32
            if np.issubdtype(dtype, np.floating):
                shape = numpy_helper.to_array(inits[node.input[0]])
                arr = draw(rng, shape, role_of(node.output[0], uses)).astype(dtype)
                new_inits.append(numpy_helper.from_array(arr, node.output[0]))
                dropped.add(node.input[0])
                continue
        kept_nodes.append(node)

    still_used = {i for n in kept_nodes for i in n.input}
    for init in graph.initializer:
        if init.name in dropped and init.name not in still_used:
            continue
        if init.name not in still_used:
            continue  # dead initializers (resnet50's "imagenet1k_blobs_queue")
        if init.data_type in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16):
            old = numpy_helper.to_array(init)
            arr = draw(rng, old.shape, role_of(init.name, uses)).astype(old.dtype)
            new_inits.append(numpy_helper.from_array(arr, init.name))
        else:
            new_inits.append(init)

    init_names = {i.name for i in new_inits}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    del g.node[:]
    g.node.extend(kept_nodes)
    del g.initializer[:]
    g.initializer.extend(new_inits)
    # IR 3 lists every initializer as a graph input too (dead ones included); from IR 4 on they
    # are constants only, as in today's exports, and both engines fold them.
    inputs = [i for i in g.input if i.name not in inits and i.name not in init_names]
    del g.input[:]
    g.input.extend(inputs)
    out.ir_version = max(out.ir_version, 4)
    out.producer_name = "vouch bench_models.py (reseeded onnx light model)"
    onnx.checker.check_model(out)
    return out


def _session(model, outputs):
    """An onnxruntime session on `model` that returns the tensors named `outputs`."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    probe.graph.output.extend(helper.make_empty_tensor_value_info(n) for n in outputs)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(probe.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _bn_levels(graph, bns):
    """Groups batch norms by how many batch norms lie upstream of them, so that each group's
    inputs are final once every earlier group is calibrated."""
    depth, level = {}, {}
    for node in graph.node:
        d = max((depth.get(i, 0) for i in node.input[:1 if node in bns else None]), default=0)
        if node in bns:
            level[node.name or node.output[0]] = d
            d += 1
        for o in node.output:
            depth[o] = d
    groups = {}
    for n in bns:
        groups.setdefault(level[n.name or n.output[0]], []).append(n)
    return [groups[k] for k in sorted(groups)]


def calibrate(model, feeds):
    """Sets each batch norm's mean and variance to the statistics of its input on `feeds`, and
    scales a Gemm that feeds a Softmax so the logits' standard deviation is 2.

    Random weights make residual sums grow layer after layer (resnet50 reached 7e4, shufflenet 1e6)
    and saturate the final softmax to exactly 0 and 1, which would hide numeric differences
    between engines; a trained network's batch norms keep activations normalised. Batch norms are
    fixed in dependency order: the statistics are fed as inputs of one session, group by group.
    """
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    bns = [n for n in g.node if n.op_type == "BatchNormalization" and len(n.input) == 5
           and n.input[3] in inits and n.input[4] in inits]
    if bns:
        stat_names = [name for n in bns for name in n.input[3:5]]
        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        kept = [i for i in probe.graph.initializer if i.name not in stat_names]
        del probe.graph.initializer[:]
        probe.graph.initializer.extend(kept)
        for name in stat_names:
            arr = numpy_helper.to_array(inits[name])
            probe.graph.input.append(helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(arr.dtype), arr.shape))
        sess = _session(probe, [n.input[0] for n in bns])
        stats = {name: numpy_helper.to_array(inits[name]) for name in stat_names}
        groups = _bn_levels(g, bns)
        for group in groups:
            xs = dict(zip([n.input[0] for n in bns], sess.run(None, {**feeds, **stats})))
            for n in group:
                x = xs[n.input[0]].astype(np.float64)
                axes = tuple(i for i in range(x.ndim) if i != 1)
                dtype = stats[n.input[3]].dtype
                stats[n.input[3]] = x.mean(axis=axes).astype(dtype)
                stats[n.input[4]] = (x.var(axis=axes) + 1e-3).astype(dtype)
        for name, arr in stats.items():
            inits[name].CopyFrom(numpy_helper.from_array(arr, name))
        print(f"bench_models:   {len(bns)} batch norms calibrated in {len(groups)} runs",
              file=sys.stderr)

    producer = {o: n for n in g.node for o in n.output}
    for sm in (n for n in g.node if n.op_type == "Softmax"):
        gemm = producer.get(sm.input[0])
        if gemm is None or gemm.op_type != "Gemm" or gemm.input[1] not in inits:
            continue
        (logits,) = _session(model, [sm.input[0]]).run(None, feeds)
        factor = 2.0 / max(float(np.std(logits)), 1e-12)
        for name in gemm.input[1:]:
            if name in inits:
                arr = numpy_helper.to_array(inits[name])
                inits[name].CopyFrom(numpy_helper.from_array((arr * factor).astype(arr.dtype), name))
    return model


def graph_inputs(model):
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def input_array(rng, value_info):
    t = value_info.type.tensor_type
    shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in t.shape.dim]
    dtype = helper.tensor_dtype_to_np_dtype(t.elem_type)
    return rng.standard_normal(shape).astype(dtype)


def write_entry(out, name, model_bytes, inputs, source):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    model_path = os.path.join(d, "model.onnx")
    with open(model_path, "wb") as f:
        f.write(model_bytes)
    files = {}
    for in_name, arr in inputs.items():
        p = os.path.join(d, f"{file_stem(in_name)}.npy")
        np.save(p, arr)
        files[in_name] = os.path.relpath(p, out)
    return {"name": name, "model": os.path.relpath(model_path, out), "inputs": files,
            "source": source, "model_bytes": len(model_bytes)}


def fixture_entries(out):
    entries = []
    for stem in ["iris_mlp", "mlp_784", "mnist_cnn"]:
        with open(os.path.join(FIXTURES, f"{stem}.onnx"), "rb") as f:
            data = f.read()
        model = onnx.load_from_string(data)
        (only,) = graph_inputs(model)
        arr = np.load(os.path.join(FIXTURES, f"{stem}.input.npy"))
        entries.append(write_entry(out, stem, data, {only.name: arr},
                                   f"tests/fixtures/models/{stem}.onnx"))
    return entries


def identity_entry(out):
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"], name="identity")], "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="vouch bench_models.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    arr = np.random.default_rng(seed_of("identity")).standard_normal((1, 4)).astype(np.float32)
    return write_entry(out, "identity", model.SerializeToString(), {"x": arr},
                       "generated: one Identity node")


def light_entry(out, short):
    name = f"light_{short}"
    src = os.path.join(light_dir(), f"{name}.onnx")
    seeded = reseed(onnx.load(src), seed_of(name))
    rng = np.random.default_rng(seed_of(name) + 1)
    inputs = {vi.name: input_array(rng, vi) for vi in graph_inputs(seeded)}
    calibrate(seeded, inputs)
    return write_entry(out, name, seeded.SerializeToString(), inputs,
                       f"onnx=={ONNX_VERSION} wheel: onnx/backend/test/data/light/{name}.onnx, "
                       f"weights reseeded (seed {seed_of(name)})")


ALL = ["identity", "iris_mlp", "mlp_784", "mnist_cnn"] + [f"light_{m}" for m in LIGHT]


def prepare(out, names=None):
    """Writes the models named (all by default) under `out`; returns the manifest entries in
    the order asked. Cached entries of the same FORMAT are reused."""
    names = names or ALL
    manifest_path = os.path.join(out, "manifest.json")
    cached = {}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            m = json.load(f)
        if m.get("format") == FORMAT:
            cached = {e["name"]: e for e in m["models"]
                      if os.path.exists(os.path.join(out, e["model"]))}
    os.makedirs(out, exist_ok=True)
    fixtures = None
    for name in names:
        if name in cached:
            continue
        if name in ("iris_mlp", "mlp_784", "mnist_cnn"):
            fixtures = fixtures or {e["name"]: e for e in fixture_entries(out)}
            cached[name] = fixtures[name]
        elif name == "identity":
            cached[name] = identity_entry(out)
        elif name.startswith("light_") and name[len("light_"):] in LIGHT:
            print(f"bench_models: reseeding {name}", file=sys.stderr)
            cached[name] = light_entry(out, name[len("light_"):])
        else:
            sys.exit(f"bench_models: unknown model {name!r} (known: {', '.join(ALL)})")
    with open(manifest_path, "w") as f:
        json.dump({"format": FORMAT, "models": [cached[k] for k in sorted(cached)]}, f, indent=1)
    return [dict(cached[n], dir=out) for n in names]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="cache directory [%(default)s]")
    ap.add_argument("--clean", action="store_true", help="delete the cache first")
    ap.add_argument("models", nargs="*", help=f"models to prepare [all: {' '.join(ALL)}]")
    a = ap.parse_args()
    if a.clean and os.path.isdir(a.out):
        shutil.rmtree(a.out)
    for e in prepare(a.out, a.models or None):
        print(f"{e['name']:<24} {e['model_bytes']:>12,} bytes  {os.path.join(a.out, e['model'])}")


if __name__ == "__main__":
    main()
