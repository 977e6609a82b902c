#!/usr/bin/env python3
"""Smelt against ONNX Runtime on the same model files, run alternately on this machine.

    python3 benches/compare_onnxruntime.py [--rounds 3] [--iters 20] [--threads 1 2] [MODEL.onnx ...]

Installs onnxruntime and numpy into target/ort-venv when they are missing (re-executing itself
there). For each model and thread count it alternates `smelt run --mode both --json` and an ONNX
Runtime session (all graph optimizations on) for `--rounds` rounds, keeps the best median of
each, and prints one Markdown table: median ms, Smelt/ORT ratio, GFLOP/s and % of the machine's
single-precision FMA peak (cores x clock x FLOPs per cycle, from lscpu and the ISA).
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
MODELS = ROOT.parent / "shared" / "models"


def ensure_onnxruntime():
    try:
        import numpy  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        python = VENV / "bin" / "python"
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "onnxruntime", "numpy"], check=True)
        # A venv's python is a symlink to the system one: compare prefixes, not binaries.
        if pathlib.Path(sys.prefix).resolve() != VENV.resolve():
            os.execv(str(python), [str(python), *sys.argv])
        raise


def peak_gflops_per_core():
    """FMA peak of one core: clock x (2 FMA units x lanes x 2 FLOPs). The clock is lscpu's
    maximum where it reports one, else /proc/cpuinfo's current value."""
    info = pathlib.Path("/proc/cpuinfo").read_text()
    lanes = 16 if " avx512f" in info else 8 if " avx2" in info else 4
    mhz = 0.0
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("CPU max MHz"):
            mhz = float(line.split(":")[1])
    if mhz == 0.0:
        mhz = next((float(l.split(":")[1]) for l in info.splitlines() if l.startswith("cpu MHz")), 0.0)
    return mhz / 1000.0 * 2 * lanes * 2


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
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        feeds[i.name] = np.random.default_rng(0).random(shape, dtype=np.float32)
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
    parser.add_argument("models", nargs="*", default=[MODELS / "resnet18.onnx", MODELS / "mobilenet_v2.onnx"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    binary = str(ROOT / "target" / "release" / "smelt")
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "smelt"], cwd=ROOT, check=True)
    peak = peak_gflops_per_core()
    print(f"ONNX Runtime {ort.__version__}; FMA peak {peak:.0f} GFLOP/s per core; "
          f"best of {args.rounds} alternating rounds of {args.iters}-run medians\n")
    print("| model | threads | Smelt fused ms | Smelt unfused ms | ORT ms | Smelt/ORT | Smelt GFLOP/s | % of peak |")
    print("|---|---|---|---|---|---|---|---|")
    for model in map(pathlib.Path, args.models):
        total = flops(binary, model)
        for threads in args.threads:
            fused, unfused, reference = [], [], []
            for _ in range(args.rounds):
                s = smelt(binary, model, threads, args.iters)
                fused.append(s["fused_ms"])
                unfused.append(s["unfused_ms"])
                reference.append(onnxruntime_ms(model, threads, args.iters))
            f, u, r = min(fused), min(unfused), min(reference)
            gflops = total / (f * 1e-3) / 1e9
            print(f"| {model.name} | {threads} | {f:.2f} | {u:.2f} | {r:.2f} | {f / r:.2f} | "
                  f"{gflops:.1f} | {100 * gflops / (peak * threads):.0f}% |" if peak else f"{gflops:.1f} | ? |")


if __name__ == "__main__":
    main()
