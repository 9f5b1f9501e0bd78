#!/usr/bin/env python3
"""Regenerates tests/fixtures/models/ops_zoo.onnx and its input (committed; run this to rebuild).

A small model with seeded random weights that puts every operation family the exact-fused
profile pins on one path, for the determinism matrix (crates/cli/tests/kernel_families.rs,
crates/engine/tests/exact_fused.rs):

  x [N,3,16,16] -> Conv 3x3 (3->8, pad 1, bias) -> Relu -> MaxPool 2x2
    -> depthwise Conv 3x3 (group 8, pad 1) -> Sigmoid -> AveragePool 2x2          [N,8,4,4]
    -> Flatten -> MatMul 128x48 + bias -> LayerNormalization -> Tanh
    -> Gelu (x * 0.5 * (1 + Erf(x / sqrt 2)))
    -> MatMul 48x10 + bias (a matrix-vector product when N = 1) -> Softmax        probs [N,10]
  the pooled features -> GlobalAveragePool -> Exp -> ReduceSum over channels       aux [N,1,1,1]

The batch axis is symbolic, so the same model runs a row alone and inside a batch.
Requirements: pip install numpy onnx==1.19.1
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "models")


def main():
    rng = np.random.default_rng(9)

    def init(name, shape, scale):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [
        init("c1_w", [8, 3, 3, 3], 0.3),
        init("c1_b", [8], 0.1),
        init("dw_w", [8, 1, 3, 3], 0.3),
        init("dw_b", [8], 0.1),
        init("fc1_w", [128, 48], 0.1),
        init("fc1_b", [48], 0.1),
        numpy_helper.from_array(np.ones(48, np.float32) * 1.5, "ln_scale"),
        init("ln_bias", [48], 0.1),
        init("fc2_w", [48, 10], 0.3),
        init("fc2_b", [10], 0.1),
        numpy_helper.from_array(np.array([1.4142135], np.float32), "sqrt2"),
        numpy_helper.from_array(np.array([0.5], np.float32), "half"),
        numpy_helper.from_array(np.array([1.0], np.float32), "one"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
    ]
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "c1_w", "c1_b"], ["c1"], pads=[1, 1, 1, 1]),
        n("Relu", ["c1"], ["r1"]),
        n("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["p1", "dw_w", "dw_b"], ["dw"], pads=[1, 1, 1, 1], group=8),
        n("Sigmoid", ["dw"], ["s1"]),
        n("AveragePool", ["s1"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Flatten", ["p2"], ["f"], axis=1),
        n("MatMul", ["f", "fc1_w"], ["m1"]),
        n("Add", ["m1", "fc1_b"], ["a1"]),
        n("LayerNormalization", ["a1", "ln_scale", "ln_bias"], ["ln"], axis=-1, epsilon=1e-5),
        n("Tanh", ["ln"], ["t"]),
        n("Div", ["t", "sqrt2"], ["g_div"]),
        n("Erf", ["g_div"], ["g_erf"]),
        n("Add", ["g_erf", "one"], ["g_add"]),
        n("Mul", ["t", "g_add"], ["g_mul"]),
        n("Mul", ["g_mul", "half"], ["gelu"]),
        n("MatMul", ["gelu", "fc2_w"], ["m2"]),
        n("Add", ["m2", "fc2_b"], ["logits"]),
        n("Softmax", ["logits"], ["probs"], axis=-1),
        n("GlobalAveragePool", ["p2"], ["gap"]),
        n("Exp", ["gap"], ["e"]),
        n("ReduceSum", ["e", "axis1"], ["aux"], keepdims=1),
    ]
    graph = helper.make_graph(
        nodes,
        "ops_zoo",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 10]),
            helper.make_tensor_value_info("aux", TensorProto.FLOAT, ["N", 1, 1, 1]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = os.path.join(OUT, "ops_zoo.onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    x = rng.uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32)
    np.save(os.path.join(OUT, "ops_zoo.input.npy"), x)


if __name__ == "__main__":
    main()
