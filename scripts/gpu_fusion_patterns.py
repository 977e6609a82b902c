#!/usr/bin/env python3
"""Measure the seeds' fusion patterns on a CUDA GPU, fused versus unfused, in the format
`smelt fit-target` reads (the format of ../shared/calibration/h100-fusion-patterns.json).

    python3 scripts/gpu_fusion_patterns.py -o my-gpu.json
    smelt fit-target my-gpu.json --target h100-sxm -o my-gpu.toml
    smelt plan MODEL --target my-gpu.toml

Unfused is PyTorch eager (one kernel per op, cuBLAS/cuDNN); fused is the same function
compiled by `torch.compile` (Inductor fuses the epilogues). Each is timed two ways with CUDA
events: launched op by op from Python (`*_ms`) and replayed from a captured CUDA graph
(`graph_*_ms`, device time without host overhead; what Smelt's plans predict). PyTorch's
default math is kept and recorded: convolutions on TF32 tensor cores, matmuls in full f32.
Needs PyTorch 2.x with CUDA.
"""

import argparse
import json
import math

import torch
import torch.nn.functional as F

LINEAR_SHAPES = [[128, 512, 512], [512, 1024, 1024], [4096, 4096, 4096], [1, 768, 3072], [128, 768, 3072]]
CONV_SHAPES = [[1, 64, 56, 56], [4, 128, 28, 28], [32, 64, 56, 56], [1, 256, 14, 14]]
ATTENTION_SHAPES = [[4, 1, 256, 64], [1, 12, 128, 64], [8, 12, 1024, 64]]


def linear_patterns(m, k, n, dev):
    x = torch.randn(m, k, device=dev)
    r = torch.randn(m, n, device=dev)
    w = torch.randn(n, k, device=dev) / math.sqrt(k)
    b = torch.randn(n, device=dev)
    return [
        ("Linear_Bias", lambda: F.linear(x, w, b)),
        ("Linear_Bias_ReLU", lambda: F.relu(F.linear(x, w, b))),
        ("Linear_Bias_GELU", lambda: F.gelu(F.linear(x, w, b))),
        ("Linear_Bias_Residual_ReLU", lambda: F.relu(F.linear(x, w, b) + r)),
    ]


def conv_patterns(bs, c, h, wd, dev):
    x = torch.randn(bs, c, h, wd, device=dev)
    y = torch.randn(bs, c, h, wd, device=dev)
    w = torch.randn(c, c, 3, 3, device=dev) / math.sqrt(9 * c)
    dw = torch.randn(c, 1, 3, 3, device=dev) / 3.0
    mean, var = torch.randn(c, device=dev), torch.rand(c, device=dev) + 0.5
    gamma, beta = torch.randn(c, device=dev), torch.randn(c, device=dev)

    def bn(t):
        return F.batch_norm(t, mean, var, gamma, beta, training=False)

    return [
        ("Conv2d_ReLU", lambda: F.relu(F.conv2d(x, w, padding=1))),
        ("Conv2d_BatchNorm2d", lambda: bn(F.conv2d(x, w, padding=1))),
        ("Conv2d_BatchNorm2d_ReLU", lambda: F.relu(bn(F.conv2d(x, w, padding=1)))),
        ("DepthwiseConv2d_BatchNorm2d_ReLU6", lambda: F.relu6(bn(F.conv2d(x, dw, padding=1, groups=c)))),
        ("add_ReLU", lambda: F.relu(x + y)),
    ]


def attention_patterns(b, heads, s, d, dev):
    q, k, v = (torch.randn(b, heads, s, d, device=dev) for _ in range(3))
    scale = 1.0 / math.sqrt(d)
    return [
        ("QK^T", lambda: (q @ k.transpose(-1, -2)) * scale),
        ("QK^T_Softmax", lambda: torch.softmax((q @ k.transpose(-1, -2)) * scale, dim=-1)),
        ("FullAttention", lambda: torch.softmax((q @ k.transpose(-1, -2)) * scale, dim=-1) @ v),
    ]


def time_eager(fn, iters):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def time_graph(fn, iters, replays=20):
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(replays):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / replays)
    times.sort()
    return times[len(times) // 2]


def matmul_tflops(dtype, allow_tf32, dev, n=8192, iters=20):
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    ms = time_eager(lambda: a @ b, iters)
    torch.backends.cuda.matmul.allow_tf32 = False
    return 2 * n**3 / (ms * 1e-3) / 1e12


def ceilings(dev):
    n = 256 * 1024 * 1024 // 4
    src, dst = torch.randn(n, device=dev), torch.empty(n, device=dev)
    copy_ms = time_eager(lambda: dst.copy_(src), 20)
    empty = torch.empty(0, device=dev)
    return {
        "fp32_matmul_tflops": matmul_tflops(torch.float32, False, dev),
        "tf32_matmul_tflops": matmul_tflops(torch.float32, True, dev),
        "bf16_matmul_tflops": matmul_tflops(torch.bfloat16, False, dev),
        "copy_GBps_rw": 2 * n * 4 / (copy_ms * 1e-3) / 1e9,
        "empty_kernel_ms": time_eager(lambda: empty.add_(1), 50),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", default="gpu-fusion-patterns.json", help="output JSON file")
    parser.add_argument("--iters", type=int, default=50, help="timed runs per measurement (median kept)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device visible to PyTorch")
    dev = torch.device("cuda")
    torch.backends.cudnn.allow_tf32 = True  # PyTorch's default, recorded below
    torch.backends.cuda.matmul.allow_tf32 = False  # PyTorch's default

    cases = []
    for s in LINEAR_SHAPES:
        cases += [(name, s, fn) for name, fn in linear_patterns(*s, dev)]
    for s in CONV_SHAPES:
        cases += [(name, s, fn) for name, fn in conv_patterns(*s, dev)]
    for s in ATTENTION_SHAPES:
        cases += [(name, s, fn) for name, fn in attention_patterns(*s, dev)]

    patterns = []
    with torch.no_grad():
        for name, shape, unfused in cases:
            fused = torch.compile(unfused, fullgraph=True)
            reference, result = unfused(), fused()
            rel_err = ((result - reference).abs().max() / reference.abs().max().clamp_min(1e-12)).item()
            row = {"pattern": name, "shape": shape}
            row["unfused_ms"] = time_eager(unfused, args.iters)
            row["fused_ms"] = time_eager(fused, args.iters)
            row["speedup"] = row["unfused_ms"] / row["fused_ms"]
            row["graph_unfused_ms"] = time_graph(unfused, args.iters)
            row["graph_fused_ms"] = time_graph(fused, args.iters)
            row["graph_speedup"] = row["graph_unfused_ms"] / row["graph_fused_ms"]
            row["rel_err"] = rel_err
            patterns.append(row)
            print(f"{name:<36} {'x'.join(map(str, shape)):<16} graph unfused {row['graph_unfused_ms'] * 1e3:9.2f} us"
                  f"  fused {row['graph_fused_ms'] * 1e3:9.2f} us")

    document = {
        "patterns": patterns,
        "ceilings": ceilings(dev),
        "gpu": torch.cuda.get_device_name(dev),
        "settings": {"torch": torch.__version__, "cudnn_allow_tf32": True, "matmul_allow_tf32": False},
    }
    with open(args.o, "w") as f:
        json.dump(document, f, indent=1)
    print(f"wrote {args.o}")


if __name__ == "__main__":
    main()
