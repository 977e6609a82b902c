#!/usr/bin/env python3
"""Smelt against ONNX Runtime on the same model files, run alternately on this machine.

    python3 benches/compare_onnxruntime.py [--rounds 3] [--iters 20] [--threads 1 2] [MODEL.onnx ...]

Installs onnxruntime, onnx, numpy and onnxconverter-common into target/ort-venv when they are missing (re-executing
itself there). By default it compares the shared ResNet-18 and MobileNet-V2 exports as they are,
copies of them with BatchNormalization folded into the convolutions (ONNX Runtime does not fold
these exports itself), BERT-base and ViT-B/16 with seeded random weights written into a copy
of their graph-only files, and the ResNet-50, EfficientNet-B0 and ConvNeXt-T graphs
`benches/models.py` builds, and fp16 copies of ResNet-18 and EfficientNet-B0 made by
onnxconverter-common, and an int8 QDQ copy of the BN-folded ResNet-18 made by ONNX Runtime's
`quantize_static`: both engines always run the identical file (copies are cached under
target/ort-models).

For each model and thread count it alternates `smelt run --mode both --json` and an ONNX
Runtime session (all graph optimizations on) for `--rounds` rounds, keeps the best median of
each, and prints one Markdown table: median ms, Smelt/ORT ratio, GFLOP/s and % of the FMA peak
of the cores used (threads x one core's peak, measured by `smelt calibrate` in every round; the
best of the rounds).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV = ROOT / "target" / "ort-venv"
COPIES = ROOT / "target" / "ort-models"
MODELS = ROOT.parent / "shared" / "models"


def ensure_onnxruntime():
    try:
        import numpy  # noqa: F401
        import onnx  # noqa: F401
        import onnxconverter_common  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        python = VENV / "bin" / "python"
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "onnxruntime", "onnx", "numpy", "onnxconverter-common"], check=True)
        # A venv's python is a symlink to the system one: compare prefixes, not binaries.
        if pathlib.Path(sys.prefix).resolve() != VENV.resolve():
            os.execv(str(python), [str(python), *sys.argv])
        raise


def peak_gflops_per_core(binary):
    """The vector FMA peak of one core as `smelt calibrate` measures it (independent FMA chains
    at the widest width the CPU has), or None without a vector FMA. Measured in every round, so
    the peak a row divides by saw the same load as the row."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        profile = pathlib.Path(tmp) / "peak.json"
        subprocess.run([binary, "calibrate", "--quick", "--patterns", "none", "--ops", "none", "-o", str(profile)],
                       check=True, capture_output=True)
        peak = json.loads(profile.read_text())["peaks"].get("fma_peak")
    return peak["gflops"] if peak else None


def random_weights_copy(model):
    """A graph-only export with its missing external weights replaced by seeded random values
    written inline, in Smelt's `--weights=random` convention: floats uniform in [-0.05, 0.05),
    1-D ones in [0.5, 1.5) (scales and variances stay positive), integers 0 or 1, random bools."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    out = COPIES / f"{model.stem}.random-weights.onnx"
    if out.exists():
        return out
    m = onnx.load(str(model), load_external_data=False)
    rng = np.random.default_rng(0)
    for init in m.graph.initializer:
        if init.data_location != onnx.TensorProto.EXTERNAL:
            continue
        shape, dtype = tuple(init.dims), helper.tensor_dtype_to_np_dtype(init.data_type)
        if np.issubdtype(dtype, np.floating):
            lo, span = (0.5, 1.0) if len(shape) == 1 else (-0.05, 0.1)
            values = (lo + span * rng.random(shape)).astype(dtype)
        elif dtype == np.bool_:
            values = rng.random(shape) < 0.5
        else:
            values = rng.integers(0, 2, shape).astype(dtype)
        init.CopyFrom(numpy_helper.from_array(values, init.name))
    COPIES.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(out))
    return out


def fp16_copy(model):
    """The export as onnxconverter-common's float16 converter writes it (weights and compute in
    f16, f32 inputs and outputs), the standard way fp16 files are made."""
    import onnx
    from onnxconverter_common import float16

    out = COPIES / f"{model.stem}.fp16.onnx"
    if out.exists():
        return out
    m = float16.convert_float_to_float16(onnx.load(str(model)), keep_io_types=True)
    COPIES.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(out))
    return out


def qdq_copy(model):
    """The export quantized by ONNX Runtime's `quantize_static` to the QDQ form (int8 weights
    per channel, uint8 activations per tensor), calibrated on 8 seeded random inputs (token
    ids below 1000 for integer inputs)."""
    import tempfile

    import numpy as np
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    out = COPIES / f"{model.stem}.qdq.onnx"
    if out.exists():
        return out
    m = onnx.load(str(model))
    rng = np.random.default_rng(0)

    def sample(value):
        shape = [d.dim_value or 1 for d in value.type.tensor_type.shape.dim]
        if value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
            return rng.standard_normal(shape).astype(np.float32)
        # Token ids (BERT's input): a small vocabulary range.
        return rng.integers(0, 1000, shape).astype(onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.left = iter({i.name: sample(i) for i in m.graph.input} for _ in range(8))

        def get_next(self):
            return next(self.left, None)

    with tempfile.TemporaryDirectory() as tmp:
        src = pathlib.Path(tmp) / "f32.onnx"
        onnx.save(m, str(src))
        COPIES.mkdir(parents=True, exist_ok=True)
        quantize_static(str(src), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def bn_folded_copy(model):
    """The export with every BatchNormalization that directly follows a Conv (its only consumer)
    folded into the Conv's weights and bias, as a BN-folded export would ship it."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    out = COPIES / f"{model.stem}.bn-folded.onnx"
    if out.exists():
        return out
    m = onnx.load(str(model))
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    producer = {o: n for n in g.node for o in n.output}

    # Parameters exporters compute from constant subgraphs (a zero bias as Expand(CastLike(0)))
    # are evaluated by running the model once with them as extra outputs.
    pairs = []
    for bn in g.node:
        if bn.op_type != "BatchNormalization":
            continue
        conv = producer.get(bn.input[0])
        if conv is not None and conv.op_type == "Conv" and len(consumers.get(conv.output[0], [])) == 1:
            pairs.append((conv, bn))
    wanted = {n for conv, bn in pairs for n in [*conv.input[1:3], *bn.input[1:5]] if n and n not in inits}
    values = {name: numpy_helper.to_array(t) for name, t in inits.items()}
    if wanted:
        import onnxruntime as ort

        probe = onnx.ModelProto()
        probe.CopyFrom(m)
        probe.graph.output.extend(helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in sorted(wanted))
        session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
        feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
                 for i in session.get_inputs()}
        names = [o.name for o in session.get_outputs()]
        values.update({n: v for n, v in zip(names, session.run(None, feeds)) if n in wanted})

    def constant(name):
        return values.get(name)

    folded = []
    for conv, bn in pairs:
        params = [constant(i) for i in bn.input[1:5]]
        w = constant(conv.input[1])
        b = constant(conv.input[2]) if len(conv.input) > 2 and conv.input[2] else np.zeros(1)
        if any(v is None for v in [*params, w, b]):
            continue
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        scale, beta, mean, var = (v.astype(np.float64) for v in params)
        w, b = w.astype(np.float64), b.astype(np.float64)
        k = scale / np.sqrt(var + eps)
        new_w = (w * k.reshape(-1, 1, 1, 1)).astype(np.float32)
        new_b = ((b - mean) * k + beta).astype(np.float32)
        w_name, b_name = conv.output[0] + "_folded_w", conv.output[0] + "_folded_b"
        g.initializer.extend([numpy_helper.from_array(new_w, w_name), numpy_helper.from_array(new_b, b_name)])
        del conv.input[1:]
        conv.input.extend([w_name, b_name])
        conv.output[0] = bn.output[0]
        folded.append(bn)
    for bn in folded:
        g.node.remove(bn)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    dead = [n for n in g.node if n.op_type == "Constant" and not used & set(n.output)]
    for n in dead:
        g.node.remove(n)
    COPIES.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(out))
    print(f"{out.name}: {len(folded)} BatchNormalizations folded", file=sys.stderr)
    return out


def smelt(binary, model, threads, iters):
    out = subprocess.run(
        [binary, "run", str(model), "--mode", "both", "--iters", str(iters), "--threads", str(threads), "--json"],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)


def flops(binary, model):
    out = subprocess.run([binary, "report", str(model), "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["flops_total"]


def onnxruntime_ms(model, threads, iters):
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    feeds = {}
    rng = np.random.default_rng(0)
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        if "int" in i.type:
            feeds[i.name] = rng.integers(0, 2, shape).astype(np.int64 if "int64" in i.type else np.int32)
        else:
            feeds[i.name] = rng.random(shape, dtype=np.float32)
    for _ in range(3):
        session.run(None, feeds)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]


def main():
    ensure_onnxruntime()
    import onnxruntime as ort

    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="*", help="default: the shared models and their folded / random-weight copies")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    binary = str(ROOT / "target" / "release" / "smelt")
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "smelt"], cwd=ROOT, check=True)
    print(f"ONNX Runtime {ort.__version__}; best of {args.rounds} alternating rounds of {args.iters}-run medians; "
          "% of peak divides by threads x the measured FMA peak of one core (in brackets)\n")
    print("| model | threads | Smelt fused ms | Smelt unfused ms | ORT ms | Smelt/ORT | Smelt GFLOP/s | % of peak |")
    print("|---|---|---|---|---|---|---|---|")
    models = list(map(pathlib.Path, args.models))
    if not models:
        vision = [MODELS / "resnet18.onnx", MODELS / "mobilenet_v2.onnx"]
        models = [m for v in vision for m in (v, bn_folded_copy(v))]
        models += [random_weights_copy(MODELS / f) for f in ["bert_base.graph-only.onnx", "vit_b_16.graph-only.onnx"]]
        sys.path.insert(0, str(ROOT / "benches"))
        import models as builders  # noqa: E402  (benches/models.py: ResNet-50, EfficientNet-B0, ConvNeXt-T)

        models += [builders.build(name, COPIES) for name in builders.BUILDERS]
        models += [fp16_copy(m) for m in [MODELS / "resnet18.onnx", COPIES / "efficientnet_b0.onnx"]]
        models += [qdq_copy(COPIES / "resnet18.bn-folded.onnx")]
    for model in models:
        total = flops(binary, model)
        for threads in args.threads:
            fused, unfused, reference, peaks = [], [], [], []
            for _ in range(args.rounds):
                peaks.append(peak_gflops_per_core(binary))
                s = smelt(binary, model, threads, args.iters)
                fused.append(s["fused_ms"])
                unfused.append(s["unfused_ms"])
                reference.append(onnxruntime_ms(model, threads, args.iters))
            f, u, r = min(fused), min(unfused), min(reference)
            gflops = total / (f * 1e-3) / 1e9
            peak = max(peaks) if all(peaks) else None
            share = f"{100 * gflops / (peak * threads):.0f}% ({peak:.0f})" if peak else "?"
            print(f"| {model.name} | {threads} | {f:.2f} | {u:.2f} | {r:.2f} | {f / r:.2f} | {gflops:.1f} | {share} |")


if __name__ == "__main__":
    main()
