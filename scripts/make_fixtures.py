#!/usr/bin/env python3
"""Regenerates the small models and inputs under tests/fixtures/ (committed; run this to rebuild).

Models are trained or built here from seeded data so anyone can reproduce them:
  iris_mlp.onnx      scikit-learn MLPClassifier on the iris data set, exported by skl2onnx
                     (ZipMap off, so probabilities come back as a plain tensor)
  mnist_cnn.onnx     an MNIST-sized CNN (1x28x28 -> conv5x5x8 -> relu -> maxpool -> conv5x5x16 ->
                     relu -> maxpool -> gemm 256x10 -> softmax) with seeded random weights, built
                     with onnx.helper (no deep-learning framework needed)
  mlp_784.onnx       a dense 784-128-64-10 MLP with seeded random weights (MatMul/Add/Relu/Softmax)
Inputs: *.input.json (Vouch's JSON form) and *.npy next to each model; *.ort_output.json holds
onnxruntime's outputs for those inputs, the reference the engine tests compare against.

Requirements: pip install numpy onnx==1.19.1 onnxruntime scikit-learn skl2onnx
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "models")
OPSET = 13


def save(model, name):
    onnx.checker.check_model(model)
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def tensor_json(array):
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": array.ravel().tolist()}


def save_input(stem, name, array):
    with open(os.path.join(OUT, f"{stem}.input.json"), "w") as f:
        json.dump({name: tensor_json(array)}, f)
        f.write("\n")
    np.save(os.path.join(OUT, f"{stem}.input.npy"), array)
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(os.path.join(OUT, f"{stem}.onnx"), opts, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {name: array})
    with open(os.path.join(OUT, f"{stem}.ort_output.json"), "w") as f:
        json.dump({o.name: tensor_json(np.asarray(v)) for o, v in zip(sess.get_outputs(), outs)}, f)
        f.write("\n")


def iris_mlp():
    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPClassifier
    from skl2onnx import to_onnx

    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=2000, random_state=0).fit(x, y)
    model = to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}},
                    target_opset={"": OPSET, "ai.onnx.ml": 3})
    model.producer_name = "vouch-fixtures (skl2onnx)"
    save(model, "iris_mlp.onnx")
    save_input("iris_mlp", model.graph.input[0].name, x[[0, 60, 120]])


def rand(rng, *shape, scale=0.1):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def mnist_cnn():
    rng = np.random.default_rng(1)
    inits = [
        numpy_helper.from_array(rand(rng, 8, 1, 5, 5, scale=0.2), "w1"),
        numpy_helper.from_array(rand(rng, 8), "b1"),
        numpy_helper.from_array(rand(rng, 16, 8, 5, 5, scale=0.07), "w2"),
        numpy_helper.from_array(rand(rng, 16), "b2"),
        numpy_helper.from_array(rand(rng, 256, 10, scale=0.06), "w3"),
        numpy_helper.from_array(rand(rng, 10), "b3"),
        numpy_helper.from_array(np.array([-1, 256], dtype=np.int64), "flat_shape"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[5, 5]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", kernel_shape=[5, 5]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["p2", "flat_shape"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "w3", "b3"], ["logits"], name="fc"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "mnist_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="vouch-fixtures (onnx.helper)")
    model.ir_version = 8
    save(model, "mnist_cnn.onnx")
    save_input("mnist_cnn", "image", rng.random((2, 1, 28, 28), dtype=np.float32))


def mlp_784():
    rng = np.random.default_rng(2)
    sizes = [784, 128, 64, 10]
    inits, nodes, prev = [], [], "x"
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        inits += [numpy_helper.from_array(rand(rng, a, b, scale=1 / np.sqrt(a)), f"w{i}"),
                  numpy_helper.from_array(rand(rng, b), f"b{i}")]
        nodes += [helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"], name=f"matmul{i}"),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"], name=f"add{i}")]
        prev = f"a{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [prev], [f"h{i}"], name=f"relu{i}"))
            prev = f"h{i}"
    nodes.append(helper.make_node("Softmax", [prev], ["y"], name="softmax", axis=-1))
    graph = helper.make_graph(
        nodes, "mlp_784",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 784])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="vouch-fixtures (onnx.helper)")
    model.ir_version = 8
    save(model, "mlp_784.onnx")
    save_input("mlp_784", "x", rng.random((1, 784), dtype=np.float32))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    iris_mlp()
    mnist_cnn()
    mlp_784()
    sys.exit(0)
