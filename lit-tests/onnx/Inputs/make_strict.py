"""Writes the small ONNX files lit-tests/onnx/strict.mlir and errors.mlir import: graphs ONNX
Runtime refuses, which Smelt must refuse too, and one with an operator Smelt does not support.
Run with the onnx package: python make_strict.py"""
import numpy as np
import onnx
from onnx import TensorProto as T, helper as h, numpy_helper as nh


def save(name, nodes, inputs, outputs, inits=()):
    graph = h.make_graph(nodes, name, inputs, outputs, list(inits))
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]), name + ".onnx")


x = h.make_tensor_value_info("x", T.FLOAT, [4])
y = h.make_tensor_value_info("y", T.FLOAT, [4])
save("two-producers", [h.make_node("Relu", ["x"], ["y"], name="first"), h.make_node("Neg", ["x"], ["y"], name="second")], [x], [y])
save("writes-its-input", [h.make_node("Relu", ["x"], ["x"], name="relu")], [x], [x])
w = nh.from_array(np.ones((1, 1, 3, 3), np.float32), "w")
x4 = h.make_tensor_value_info("x4", T.FLOAT, [1, 1, 8, 8])
save("kernel-shape", [h.make_node("Conv", ["x4", "w"], ["y4"], kernel_shape=[5, 5], name="conv")], [x4],
     [h.make_tensor_value_info("y4", T.FLOAT, None)], [w])
s = nh.from_array(np.array([-1, 3], np.int64), "s")
save("negative-shape", [h.make_node("ConstantOfShape", ["s"], ["z"], name="fill")], [],
     [h.make_tensor_value_info("z", T.FLOAT, None)], [s])
save("unique", [h.make_node("Unique", ["x"], ["u"], sorted=1)], [x], [h.make_tensor_value_info("u", T.FLOAT, None)])
