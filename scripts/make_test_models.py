"""Builds the models of tests/models/ with the onnx helper, in the shapes users' exporters
write, and stores ONNX Runtime's outputs beside them in ONNX's test-case layout
(model.onnx, test_data_set_<i>/input_<j>.pb, output_<j>.pb), which `smelt conformance` reads.

Run once when a model is added or changed (needs onnx, numpy, onnxruntime):
    python3 scripts/make_test_models.py tests/models
"""

import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(20261207)


def weight(name, shape, scale=0.3):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def model(nodes, name, inputs, outputs, initializers, opset=17):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializers)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def symbolic_batch_cnn():
    """A CNN exported with a symbolic batch (`N`), run on batches 4 and 2."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"], transB=1),
    ]
    inits = [weight("w1", (8, 3, 3, 3)), weight("b1", (8,)), weight("w2", (16, 8, 3, 3)), weight("b2", (16,)),
             weight("fc", (10, 16)), weight("fcb", (10,))]
    m = model(nodes, "symbolic_batch_cnn",
              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], inits)
    return m, [[RNG.standard_normal((4, 3, 16, 16)).astype(np.float32)],
               [RNG.standard_normal((2, 3, 16, 16)).astype(np.float32)]]


MODELS = [symbolic_batch_cnn]


def write_case(root, build):
    m, input_sets = build()
    folder = os.path.join(root, build.__name__)
    os.makedirs(folder, exist_ok=True)
    onnx.save(m, os.path.join(folder, "model.onnx"))
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    for k, inputs in enumerate(input_sets):
        case = os.path.join(folder, f"test_data_set_{k}")
        os.makedirs(case, exist_ok=True)
        outputs = session.run(None, dict(zip(names, inputs)))
        for j, (name, x) in enumerate(zip(names, inputs)):
            with open(os.path.join(case, f"input_{j}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(x, name).SerializeToString())
        for j, (info, y) in enumerate(zip(session.get_outputs(), outputs)):
            with open(os.path.join(case, f"output_{j}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(y, info.name).SerializeToString())


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else "tests/models"
    for build in MODELS:
        write_case(root, build)
        print(f"wrote {root}/{build.__name__}")
