#!/usr/bin/env python3
"""Model files of architectures the shared exports do not cover, built with the `onnx` helper
as PyTorch's exporter writes them, with seeded random weights inline:

    python3 benches/models.py [--out DIR] [resnet50 efficientnet_b0 convnext_tiny ...]

- `resnet50`: torchvision's ResNet-50 at inference, BatchNorms folded into the convolutions
  (bottleneck blocks, 1x1 / 3x3 / 1x1, stride on the 3x3).
- `efficientnet_b0`: EfficientNet-B0, BatchNorms folded: MBConv blocks with SiLU as
  `x * Sigmoid(x)`, squeeze-excite (`GlobalAveragePool`, two 1x1 convolutions, `Sigmoid`,
  `Mul`), depthwise 3x3 and 5x5.
- `convnext_tiny`: ConvNeXt-T: 7x7 depthwise convolutions, `LayerNormalization` over channels
  between `Transpose`s (channels last), `MatMul` + `Add` linears, exact `Gelu` (opset 20), layer
  scale and residual adds.

- `alexnet`: the ONNX model zoo's BVLC AlexNet: 11x11 stride-4 and grouped convolutions,
  `LRN` (size 5) after the first two, three fully connected layers.

- `inception_v1`: GoogLeNet (Inception-v1) without its auxiliary heads: nine inception modules
  of four branches (1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1) joined by `Concat`; the
  three 1x1 convolutions reading a module's input are what `merge-parallel-convs` merges.

- `dcgan_generator`: DCGAN's generator from a 4x4 map: stride-2 4x4 `ConvTranspose`s 512 ->
  256 -> 128 -> 64 -> 3 with ReLU, `Tanh` at the end (64x64 output).

All but `dcgan_generator` take `input` [1, 3, 224, 224] and give `logits` [1, 1000]. `compare_onnxruntime.py` runs
them beside the shared models. Needs `onnx` and `numpy` (the compare script's venv has them).
"""

import argparse
import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "target" / "ort-models"


class Graph:
    """Nodes and initializers under construction, names made unique by a counter."""

    def __init__(self, seed):
        self.nodes, self.inits, self.rng, self.n = [], [], np.random.default_rng(seed), 0

    def name(self, prefix):
        self.n += 1
        return f"{prefix}_{self.n}"

    def weight(self, shape, scale=None):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        scale = scale if scale is not None else (2.0 / fan_in) ** 0.5
        w = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        name = self.name("w")
        self.inits.append(numpy_helper.from_array(w, name))
        return name

    def const(self, values, dtype=np.float32):
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    def op(self, op_type, inputs, **attrs):
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.name(f"node_{op_type}"), **attrs))
        return out

    def conv(self, x, cin, cout, k, stride=1, group=1, bias=True):
        w = self.weight([cout, cin // group, k, k])
        inputs = [x, w] + ([self.weight([cout], 0.05)] if bias else [])
        pad = k // 2
        return self.op("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=group)

    def linear(self, x, cin, cout):
        y = self.op("MatMul", [x, self.weight([cin, cout])])
        return self.op("Add", [y, self.weight([cout], 0.05)])

    def silu(self, x):
        return self.op("Mul", [x, self.op("Sigmoid", [x])])

    def head(self, x, channels, classes=1000):
        pooled = self.op("GlobalAveragePool", [x])
        flat = self.op("Flatten", [pooled], axis=1)
        y = self.op("Gemm", [flat, self.weight([classes, channels]), self.weight([classes], 0.05)], transB=1)
        self.nodes[-1].output[0] = "logits"
        return y

    def model(self, opset=17):
        graph = helper.make_graph(
            self.nodes,
            "model",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])],
            self.inits,
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="smelt-benches")
        onnx.checker.check_model(m)
        return m


def resnet50():
    g = Graph(50)
    x = g.op("Relu", [g.conv("input", 3, 64, 7, stride=2)])
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for width, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for b in range(blocks):
            s = stride if b == 0 else 1
            y = g.op("Relu", [g.conv(x, cin, width, 1)])
            y = g.op("Relu", [g.conv(y, width, width, 3, stride=s)])
            y = g.conv(y, width, 4 * width, 1)
            shortcut = g.conv(x, cin, 4 * width, 1, stride=s) if b == 0 else x
            x = g.op("Relu", [g.op("Add", [y, shortcut])])
            cin = 4 * width
    g.head(x, cin)
    return g.model()


def efficientnet_b0():
    g = Graph(0)
    x = g.silu(g.conv("input", 3, 32, 3, stride=2))
    cin = 32
    for expand, cout, repeats, stride, k in [
        (1, 16, 1, 1, 3),
        (6, 24, 2, 2, 3),
        (6, 40, 2, 2, 5),
        (6, 80, 3, 2, 3),
        (6, 112, 3, 1, 5),
        (6, 192, 4, 2, 5),
        (6, 320, 1, 1, 3),
    ]:
        for r in range(repeats):
            s = stride if r == 0 else 1
            hidden = cin * expand
            y = g.silu(g.conv(x, cin, hidden, 1)) if expand != 1 else x
            y = g.silu(g.conv(y, hidden, hidden, k, stride=s, group=hidden))
            squeezed = max(1, cin // 4)
            se = g.op("GlobalAveragePool", [y])
            se = g.silu(g.conv(se, hidden, squeezed, 1))
            se = g.op("Sigmoid", [g.conv(se, squeezed, hidden, 1)])
            y = g.op("Mul", [y, se])
            y = g.conv(y, hidden, cout, 1)
            x = g.op("Add", [y, x]) if s == 1 and cin == cout else y
            cin = cout
    x = g.silu(g.conv(x, cin, 1280, 1))
    g.head(x, 1280)
    return g.model()


def convnext_tiny():
    g = Graph(7)

    def layer_norm(x, c):
        return g.op("LayerNormalization", [x, g.weight([c], 0.1), g.weight([c], 0.05)], axis=-1, epsilon=1e-6)

    def norm_channels_first(x, c):
        y = g.op("Transpose", [x], perm=[0, 2, 3, 1])
        return g.op("Transpose", [layer_norm(y, c)], perm=[0, 3, 1, 2])

    stem = g.op("Conv", ["input", g.weight([96, 3, 4, 4]), g.weight([96], 0.05)], kernel_shape=[4, 4], strides=[4, 4])
    x = norm_channels_first(stem, 96)
    dims, depths = [96, 192, 384, 768], [3, 3, 9, 3]
    for stage, (dim, depth) in enumerate(zip(dims, depths)):
        if stage > 0:
            x = norm_channels_first(x, dims[stage - 1])
            x = g.op("Conv", [x, g.weight([dim, dims[stage - 1], 2, 2]), g.weight([dim], 0.05)],
                     kernel_shape=[2, 2], strides=[2, 2])
        for _ in range(depth):
            y = g.conv(x, dim, dim, 7, group=dim)
            y = g.op("Transpose", [y], perm=[0, 2, 3, 1])
            y = layer_norm(y, dim)
            y = g.op("Gelu", [g.linear(y, dim, 4 * dim)])
            y = g.linear(y, 4 * dim, dim)
            y = g.op("Mul", [y, g.weight([dim], 0.1)])
            y = g.op("Transpose", [y], perm=[0, 3, 1, 2])
            x = g.op("Add", [x, y])
    pooled = g.op("GlobalAveragePool", [x])
    flat = g.op("Flatten", [pooled], axis=1)
    flat = layer_norm(flat, 768)
    y = g.op("Gemm", [flat, g.weight([1000, 768]), g.weight([1000], 0.05)], transB=1)
    g.nodes[-1].output[0] = "logits"
    return g.model(opset=20)


def alexnet():
    g = Graph(2012)

    def conv(x, cin, cout, k, stride=1, pad=0, group=1):
        w, b = g.weight([cout, cin // group, k, k]), g.weight([cout], 0.05)
        return g.op("Relu", [g.op("Conv", [x, w, b], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4,
                                  group=group)])

    def lrn(x):
        return g.op("LRN", [x], size=5, alpha=1e-4, beta=0.75, bias=1.0)

    def pool(x):
        return g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2])

    x = pool(lrn(conv("input", 3, 96, 11, stride=4, pad=2)))
    x = pool(lrn(conv(x, 96, 256, 5, pad=2, group=2)))
    x = conv(x, 256, 384, 3, pad=1)
    x = conv(x, 384, 384, 3, pad=1, group=2)
    x = pool(conv(x, 384, 256, 3, pad=1, group=2))
    x = g.op("Flatten", [x], axis=1)
    for cin, cout in [(256 * 6 * 6, 4096), (4096, 4096)]:
        x = g.op("Relu", [g.op("Gemm", [x, g.weight([cout, cin]), g.weight([cout], 0.05)], transB=1)])
    g.op("Gemm", [x, g.weight([1000, 4096]), g.weight([1000], 0.05)], transB=1)
    g.nodes[-1].output[0] = "logits"
    return g.model()


def inception_v1():
    g = Graph(2014)

    def conv(x, cin, cout, k, stride=1):
        return g.op("Relu", [g.conv(x, cin, cout, k, stride)])

    def pool(x, k=3, stride=2):
        return g.op("MaxPool", [x], kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4)

    def inception(x, cin, c1, c3r, c3, c5r, c5, cp):
        b1 = conv(x, cin, c1, 1)
        b3 = conv(conv(x, cin, c3r, 1), c3r, c3, 3)
        b5 = conv(conv(x, cin, c5r, 1), c5r, c5, 5)
        bp = conv(pool(x, 3, 1), cin, cp, 1)
        return g.op("Concat", [b1, b3, b5, bp], axis=1), c1 + c3 + c5 + cp

    x = pool(conv("input", 3, 64, 7, 2))
    x = pool(conv(conv(x, 64, 64, 1), 64, 192, 3))
    c = 192
    for i, spec in enumerate([(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), (192, 96, 208, 16, 48, 64),
                              (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
                              (256, 160, 320, 32, 128, 128), (256, 160, 320, 32, 128, 128),
                              (384, 192, 384, 48, 128, 128)]):
        x, c = inception(x, c, *spec)
        if i in (1, 6):
            x = pool(x)
    g.head(x, c)
    return g.model()


def dcgan_generator():
    g = Graph(64)
    x = "input"
    for cin, cout in [(512, 256), (256, 128), (128, 64), (64, 3)]:
        w = g.weight([cin, cout, 4, 4], 0.02)
        x = g.op("ConvTranspose", [x, w], strides=[2, 2], pads=[1, 1, 1, 1], kernel_shape=[4, 4])
        x = g.op("Tanh" if cout == 3 else "Relu", [x])
    g.nodes[-1].output[0] = "logits"
    graph = helper.make_graph(
        g.nodes, "model", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 512, 4, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 64, 64])], g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="smelt-benches")
    onnx.checker.check_model(m)
    return m


BUILDERS = {"resnet50": resnet50, "efficientnet_b0": efficientnet_b0, "convnext_tiny": convnext_tiny,
            "alexnet": alexnet, "inception_v1": inception_v1, "dcgan_generator": dcgan_generator}


def build(name, out_dir=DEFAULT_OUT):
    """The model file `name` under `out_dir`, built once."""
    out = pathlib.Path(out_dir) / f"{name}.onnx"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(BUILDERS[name](), str(out))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="*", default=list(BUILDERS))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args()
    for name in args.models:
        print(build(name, args.out))


if __name__ == "__main__":
    main()
