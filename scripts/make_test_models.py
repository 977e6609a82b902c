"""Builds the models of tests/models/ with the onnx helper, in the shapes users' exporters
write, and stores ONNX Runtime's outputs beside them in ONNX's test-case layout
(model.onnx, test_data_set_<i>/input_<j>.pb, output_<j>.pb), which `smelt conformance` reads.

Run once when a model is added or changed (needs onnx, numpy, onnxruntime and
onnxconverter-common):
    python3 scripts/make_test_models.py tests/models [NAME ...]
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


def lrn_cnn():
    """AlexNet's shape: convolutions followed by LRN (AlexNet's k = 2, size 5, beta 0.75;
    then a beta that takes the general power; ONNX Runtime takes odd sizes only)."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[2, 2, 2, 2], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("LRN", ["r1"], ["n1"], size=5, alpha=1e-4, beta=0.75, bias=2.0),
        helper.make_node("MaxPool", ["n1"], ["p1"], kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("LRN", ["r2"], ["n2"], size=3, alpha=0.02, beta=0.6),
        helper.make_node("GlobalAveragePool", ["n2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"], transB=1),
    ]
    inits = [weight("w1", (16, 3, 5, 5)), weight("b1", (16,)), weight("w2", (24, 16, 3, 3)), weight("b2", (24,)),
             weight("fc", (10, 24)), weight("fcb", (10,))]
    m = model(nodes, "lrn_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    return m, [[(RNG.standard_normal((1, 3, 32, 32)) * 3).astype(np.float32)]]


def mod_kinds():
    """Mod on run-time data: integers with the divisor's sign (fmod 0) and the dividend's
    (fmod 1), and floats (fmod 1) broadcast, with large quotients and infinite divisors."""
    nodes = [
        helper.make_node("Mod", ["a", "b"], ["int_python"]),
        helper.make_node("Mod", ["a", "b"], ["int_c"], fmod=1),
        helper.make_node("Mod", ["x", "y"], ["float_c"], fmod=1),
    ]
    m = model(nodes, "mod_kinds", [
        helper.make_tensor_value_info("a", TensorProto.INT64, [3, 4]),
        helper.make_tensor_value_info("b", TensorProto.INT64, [4]),
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 5]),
        helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 1]),
    ], [
        helper.make_tensor_value_info("int_python", TensorProto.INT64, [3, 4]),
        helper.make_tensor_value_info("int_c", TensorProto.INT64, [3, 4]),
        helper.make_tensor_value_info("float_c", TensorProto.FLOAT, [2, 3, 5]),
    ], [])
    a = np.array([[-7, 7, -8, 9], [13, -13, 0, 5], [-1, 1, 100, -100]], np.int64)
    b = np.array([3, -3, 5, -7], np.int64)
    x = (RNG.standard_normal((2, 3, 5)) * 100).astype(np.float32)
    x[0, 0, :3] = [3.0e9, -7.5e20, 5.0]
    y = np.array([[2.5], [-0.3], [np.inf]], np.float32)
    return m, [[a, b, x, y]]


def attention_with_mod():
    """Self-attention whose head split is computed from the input's shape as TorchScript's
    exporter writes it: Shape, Gather, Div and Mod on int64, a symbolic sequence length."""
    e, h = 32, 4
    i64 = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Gather", ["shape", "one"], ["seq"], axis=0),
        helper.make_node("Gather", ["shape", "two"], ["embed"], axis=0),
        helper.make_node("Mod", ["embed", "heads"], ["rest"]),
        helper.make_node("Sub", ["embed", "rest"], ["whole"]),
        helper.make_node("Div", ["whole", "heads"], ["head_dim"]),
        helper.make_node("Unsqueeze", ["batch", "axis0"], ["b1"]),
        helper.make_node("Unsqueeze", ["seq", "axis0"], ["s1"]),
        helper.make_node("Unsqueeze", ["heads", "axis0"], ["h1"]),
        helper.make_node("Unsqueeze", ["head_dim", "axis0"], ["d1"]),
        helper.make_node("Concat", ["b1", "s1", "h1", "d1"], ["split_shape"], axis=0),
        helper.make_node("Unsqueeze", ["embed", "axis0"], ["e1"]),
        helper.make_node("Concat", ["b1", "s1", "e1"], ["merge_shape"], axis=0),
    ]
    for p in "qkv":
        nodes += [
            helper.make_node("MatMul", ["x", f"w{p}"], [f"{p}0"]),
            helper.make_node("Reshape", [f"{p}0", "split_shape"], [f"{p}1"]),
            helper.make_node("Transpose", [f"{p}1"], [f"{p}2"], perm=[0, 2, 3, 1] if p == "k" else [0, 2, 1, 3]),
        ]
    nodes += [
        helper.make_node("MatMul", ["q2", "k2"], ["scores"]),
        helper.make_node("Mul", ["scores", "scale"], ["scaled"]),
        helper.make_node("Softmax", ["scaled"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "v2"], ["ctx"]),
        helper.make_node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ctx_t", "merge_shape"], ["merged"]),
        helper.make_node("MatMul", ["merged", "wo"], ["y"]),
    ]
    inits = [weight(f"w{p}", (e, e), 0.2) for p in "qkvo"] + [
        i64("zero", 0), i64("one", 1), i64("two", 2), i64("heads", h), i64("axis0", [0]),
        numpy_helper.from_array(np.array(1 / np.sqrt(e // h), np.float32), "scale"),
    ]
    m = model(nodes, "attention_with_mod",
              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", e])],
              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seq", e])], inits)
    return m, [[RNG.standard_normal((1, 16, e)).astype(np.float32)],
               [RNG.standard_normal((1, 7, e)).astype(np.float32)]]


def unet_block():
    """A diffusion UNet's residual block (GroupNorm, SiLU as x * Sigmoid(x), 3x3 convolutions,
    a 1x1 skip), then a pixel-shuffle upsampler (DepthToSpace) and an InstanceNorm; opset 21,
    with a symbolic batch."""
    nodes = [
        helper.make_node("GroupNormalization", ["x", "g1", "b1"], ["n1"], num_groups=4, epsilon=1e-5),
        helper.make_node("Sigmoid", ["n1"], ["s1"]),
        helper.make_node("Mul", ["n1", "s1"], ["a1"]),
        helper.make_node("Conv", ["a1", "w1", "c1"], ["h1"], pads=[1, 1, 1, 1]),
        helper.make_node("GroupNormalization", ["h1", "g2", "b2"], ["n2"], num_groups=8, epsilon=1e-6),
        helper.make_node("Sigmoid", ["n2"], ["s2"]),
        helper.make_node("Mul", ["n2", "s2"], ["a2"]),
        helper.make_node("Conv", ["a2", "w2", "c2"], ["h2"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "ws", "cs"], ["skip"]),
        helper.make_node("Add", ["h2", "skip"], ["res"]),
        helper.make_node("DepthToSpace", ["res"], ["up"], blocksize=2, mode="CRD"),
        helper.make_node("InstanceNormalization", ["up", "gi", "bi"], ["y"], epsilon=1e-4),
    ]
    inits = [weight("g1", (16,), 1.0), weight("b1", (16,)), weight("w1", (32, 16, 3, 3), 0.1), weight("c1", (32,)),
             weight("g2", (32,), 1.0), weight("b2", (32,)), weight("w2", (32, 32, 3, 3), 0.1), weight("c2", (32,)),
             weight("ws", (32, 16, 1, 1)), weight("cs", (32,)), weight("gi", (8,), 1.0), weight("bi", (8,))]
    m = model(nodes, "unet_block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16, 12, 12])],
              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 24, 24])], inits, opset=21)
    return m, [[RNG.standard_normal((2, 16, 12, 12)).astype(np.float32)]]


def fp16_cnn():
    """The symbolic-batch CNN as onnxconverter-common's float16 converter writes it: weights
    and compute in f16, f32 inputs and outputs (`keep_io_types`)."""
    from onnxconverter_common import float16

    m, inputs = symbolic_batch_cnn()
    return float16.convert_float_to_float16(m, keep_io_types=True), inputs


def fp16_cnn_half_io():
    """As `fp16_cnn`, with f16 inputs and outputs too."""
    from onnxconverter_common import float16

    m, inputs = symbolic_batch_cnn()
    return float16.convert_float_to_float16(m), [[x.astype(np.float16) for x in s] for s in inputs]


def _residual_cnn(name):
    """A small residual CNN in f32 and seeded calibration inputs for it."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["s"]),
        helper.make_node("Relu", ["s"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p", "w3", "b3"], ["c3"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c3"], ["r3"]),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"], transB=1),
    ]
    inits = [weight("w1", (16, 3, 3, 3)), weight("b1", (16,)), weight("w2", (16, 16, 3, 3), 0.1), weight("b2", (16,)),
             weight("w3", (32, 16, 3, 3), 0.1), weight("b3", (32,)), weight("fc", (10, 32)), weight("fcb", (10,))]
    m = model(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    return m, [RNG.standard_normal((1, 3, 16, 16)).astype(np.float32) for _ in range(8)]


def _quantized(m, calibration, quant_format):
    """`m` through ONNX Runtime's `quantize_static`: int8 weights per channel, uint8
    activations per tensor, calibrated on `calibration`."""
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.left = iter({"x": c} for c in calibration)

        def get_next(self):
            return next(self.left, None)

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "f32.onnx"), os.path.join(tmp, "q.onnx")
        onnx.save(m, src)
        quantize_static(src, dst, Reader(), quant_format=quant_format, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        return onnx.load(dst)


def qdq_cnn():
    """A residual CNN quantized by ONNX Runtime's `quantize_static` to the QDQ form."""
    from onnxruntime.quantization import QuantFormat

    m, calibration = _residual_cnn("qdq_cnn")
    return _quantized(m, calibration, QuantFormat.QDQ), [[RNG.standard_normal((1, 3, 16, 16)).astype(np.float32)]]


def qoperator_cnn():
    """The same residual CNN quantized to the QOperator form: QLinearConv, QLinearMatMul and
    ONNX Runtime's com.microsoft QLinearAdd / QLinearGlobalAveragePool between Quantize- and
    DequantizeLinear."""
    from onnxruntime.quantization import QuantFormat

    m, calibration = _residual_cnn("qoperator_cnn")
    return _quantized(m, calibration, QuantFormat.QOperator), [[RNG.standard_normal((1, 3, 16, 16)).astype(np.float32)]]


def conv_transpose_decoder():
    """A segmentation / autoencoder decoder: stride-2 ConvTranspose upsamplers (one with
    output_padding, one grouped, one 1-D over a flattened map), ReLU between them."""
    nodes = [
        helper.make_node("ConvTranspose", ["x", "w1", "b1"], ["u1"], strides=[2, 2], pads=[1, 1, 1, 1],
                         output_padding=[1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["u1"], ["r1"]),
        helper.make_node("ConvTranspose", ["r1", "w2"], ["u2"], strides=[2, 2], kernel_shape=[4, 4], pads=[1, 1, 1, 1],
                         group=2),
        helper.make_node("Relu", ["u2"], ["r2"]),
        helper.make_node("Reshape", ["r2", "flat"], ["line"]),
        helper.make_node("ConvTranspose", ["line", "w3", "b3"], ["y"], strides=[3], dilations=[2], auto_pad="SAME_UPPER"),
    ]
    inits = [weight("w1", (16, 8, 3, 3)), weight("b1", (8,)), weight("w2", (8, 3, 4, 4)), weight("w3", (6, 2, 3)),
             weight("b3", (2,)), numpy_helper.from_array(np.array([1, 6, -1], np.int64), "flat")]
    m = model(nodes, "conv_transpose_decoder", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 5, 5])],
              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 1200])], inits)
    return m, [[RNG.standard_normal((1, 16, 5, 5)).astype(np.float32)]]


def einsum_attention():
    """Attention written with Einsum as some exporters do ('bhqd,bhkd->bhqk', then
    'bhqk,bhkd->bhqd'), plus an implicit-output product and an outer product."""
    nodes = [
        helper.make_node("Einsum", ["q", "k"], ["scores"], equation="bhqd,bhkd->bhqk"),
        helper.make_node("Softmax", ["scores"], ["p"], axis=-1),
        helper.make_node("Einsum", ["p", "v"], ["ctx"], equation="bhqk,bhkd->bhqd"),
        helper.make_node("Einsum", ["ctx", "w"], ["y"], equation="bhqd,de"),
        helper.make_node("Einsum", ["a", "c"], ["outer"], equation="i,j->ij"),
    ]
    shape = [2, 3, 5, 4]
    m = model(nodes, "einsum_attention", [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in "qkv"
    ] + [helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 6]),
         helper.make_tensor_value_info("a", TensorProto.FLOAT, [3]),
         helper.make_tensor_value_info("c", TensorProto.FLOAT, [4])], [
        helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 6, 3, 5]),  # implicit: labels alphabetically
        helper.make_tensor_value_info("outer", TensorProto.FLOAT, [3, 4]),
    ], [], opset=17)
    return m, [[RNG.standard_normal(s).astype(np.float32) for s in [shape, shape, shape, [4, 6], [3], [4]]]]


def volume_decoder():
    """A 3-D decoder (volumetric segmentation, video): transposed 3-D convolutions with
    per-axis strides, dilations, pads and output_padding, grouped, with and without bias."""
    nodes = [
        helper.make_node("ConvTranspose", ["x", "w1", "b1"], ["u1"], strides=[2, 1, 2], dilations=[1, 2, 1],
                         pads=[1, 0, 1, 0, 1, 1], output_padding=[1, 0, 1], group=2),
        helper.make_node("Relu", ["u1"], ["r1"]),
        helper.make_node("ConvTranspose", ["r1", "w2"], ["y"], kernel_shape=[2, 2, 2], strides=[2, 2, 2]),
    ]
    inits = [weight("w1", (4, 3, 3, 2, 3)), weight("b1", (6,)), weight("w2", (6, 2, 2, 2, 2))]
    m = model(nodes, "volume_decoder", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 4, 5])],
              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 14, 10, 20])], inits)
    return m, [[RNG.standard_normal((1, 4, 3, 4, 5)).astype(np.float32)]]


def einsum_diagonals():
    """Einsum with a label repeated in one operand: a diagonal ('ii->i'), batched traces by
    the implicit output ('bii'), and a diagonal feeding a product ('ij,jj->i')."""
    nodes = [
        helper.make_node("Einsum", ["a"], ["diagonal"], equation="ii->i"),
        helper.make_node("Einsum", ["m"], ["traces"], equation="bii"),
        helper.make_node("Einsum", ["c", "a"], ["scaled"], equation="ij,jj->i"),
    ]
    m = model(nodes, "einsum_diagonals", [
        helper.make_tensor_value_info("a", TensorProto.FLOAT, [4, 4]),
        helper.make_tensor_value_info("m", TensorProto.FLOAT, [3, 5, 5]),
        helper.make_tensor_value_info("c", TensorProto.FLOAT, [2, 4]),
    ], [helper.make_tensor_value_info(n, TensorProto.FLOAT, [d]) for n, d in [("diagonal", 4), ("traces", 3), ("scaled", 2)]],
        [])
    return m, [[RNG.standard_normal(s).astype(np.float32) for s in [[4, 4], [3, 5, 5], [2, 4]]]]


def antialiased_resize():
    """Downsampling with antialias = 1 (torchvision's resize with antialias=True exports it):
    linear by non-integer scales and cubic to given sizes, then a plain upsampling."""
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["small"], mode="linear", antialias=1),
        helper.make_node("Resize", ["x", "", "", "sizes"], ["tiny"], mode="cubic", antialias=1,
                         coordinate_transformation_mode="pytorch_half_pixel"),
        helper.make_node("Resize", ["tiny", "", "up"], ["y"], mode="linear", antialias=1),
    ]
    inits = [numpy_helper.from_array(np.array([1, 1, 0.6, 0.45], np.float32), "scales"),
             numpy_helper.from_array(np.array([1, 3, 5, 3], np.int64), "sizes"),
             numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "up")]
    m = model(nodes, "antialiased_resize", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 13])],
              [helper.make_tensor_value_info("small", TensorProto.FLOAT, [1, 3, 9, 5]),
               helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 10, 6])], inits, opset=18)
    return m, [[RNG.standard_normal((1, 3, 16, 13)).astype(np.float32)]]


def qoperator_mixed():
    """QOperator forms of the other quantized operators ONNX Runtime writes: QLinearMatMul,
    and com.microsoft QLinearMul, QLinearConcat, QLinearSigmoid, QLinearLeakyRelu and
    QLinearAveragePool."""
    from onnxruntime.quantization import QuantFormat

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("LeakyRelu", ["c1"], ["l1"], alpha=0.1),
        helper.make_node("AveragePool", ["l1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Sigmoid", ["p1"], ["s1"]),
        helper.make_node("Mul", ["p1", "s1"], ["m1"]),
        helper.make_node("Concat", ["m1", "p1"], ["cat"], axis=1),
        helper.make_node("Reshape", ["cat", "flat"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["y"]),
    ]
    inits = [weight("w1", (8, 4, 3, 3)), weight("b1", (8,)), weight("fc", (256, 10), 0.1),
             numpy_helper.from_array(np.array([1, 256], np.int64), "flat")]
    m = model(nodes, "qoperator_mixed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    calibration = [RNG.standard_normal((1, 4, 8, 8)).astype(np.float32) for _ in range(8)]
    return _quantized(m, calibration, QuantFormat.QOperator), [[RNG.standard_normal((1, 4, 8, 8)).astype(np.float32)]]


def dynamic_quantized():
    """ONNX Runtime's `quantize_dynamic` output: DynamicQuantizeLinear on the activations,
    MatMulInteger and ConvInteger products, Cast and scale Mul after them."""
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Reshape", ["r", "rows"], ["t"]),
        helper.make_node("MatMul", ["t", "w2"], ["h"]),
        helper.make_node("Relu", ["h"], ["y"]),
    ]
    inits = [weight("w1", (8, 3, 3, 3)), weight("b1", (8,)), weight("w2", (64, 12), 0.1),
             numpy_helper.from_array(np.array([1, 8, 64], np.int64), "rows")]
    m = model(nodes, "dynamic_quantized", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 12])], inits)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "f32.onnx"), os.path.join(tmp, "q.onnx")
        onnx.save(m, src)
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul", "Conv"])
        q = onnx.load(dst)
    return q, [[RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)]]


MODELS = [symbolic_batch_cnn, lrn_cnn, mod_kinds, attention_with_mod, unet_block, fp16_cnn, fp16_cnn_half_io, qdq_cnn,
          conv_transpose_decoder, einsum_attention, volume_decoder, einsum_diagonals, antialiased_resize, qoperator_cnn,
          qoperator_mixed, dynamic_quantized]


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
    only = sys.argv[2:]  # model names; all where none are given
    for build in MODELS:
        # Every model is built, so that each draws the same random numbers whichever are written.
        if only and build.__name__ not in only:
            build()
            continue
        write_case(root, build)
        print(f"wrote {root}/{build.__name__}")
