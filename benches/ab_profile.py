#!/usr/bin/env python3
"""Is a tuned profile faster than none? `smelt run` with and without `--cost-profile`, run
in alternation, each run a fresh process (its own compilation, so its own placement in
memory), the pairs' time ratios summarized by their median and a 95% confidence interval.

    python3 benches/ab_profile.py MODEL PROFILE [--target host] [--pairs 20] [--iters 20] [--threads 1]

`smelt tune` checks its own program the same way inside one process; this is the check from
outside, as a user would run the two. Prints the CPU model beside the numbers.
"""

import argparse
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def median_interval(samples):
    """The median and its 95% interval from order statistics (binomial ranks), as
    `smelt_hardware::stats::Interval` computes it."""
    s = sorted(samples)
    n = len(s)
    median = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    cumulative, j = 0.0, 0
    for k in range(n // 2):
        cumulative += math.comb(n, k) / 2**n
        if cumulative > 0.025:
            break
        j = k
    return median, s[j], s[n - 1 - j]


def fused_ms(smelt, model, target, threads, iters, profile):
    cmd = [smelt, "run", model, "--target", target, "--threads", str(threads), "--iters", str(iters), "--json"]
    if profile:
        cmd += ["--cost-profile", profile]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["fused_ms"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("profile")
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--target", default="host", help="the target the profile was tuned for")
    ap.add_argument("--smelt", default=os.path.join(ROOT, "target", "release", "smelt"))
    a = ap.parse_args()
    without, with_profile, ratios = [], [], []
    for i in range(a.pairs):
        # The order alternates too, so neither side always runs second.
        first_with = i % 2 == 1
        t = {}
        for use in ([True, False] if first_with else [False, True]):
            t[use] = fused_ms(a.smelt, a.model, a.target, a.threads, a.iters, a.profile if use else None)
        without.append(t[False])
        with_profile.append(t[True])
        ratios.append(t[True] / t[False])
    print(f"{cpu_model()}, {a.threads} thread(s), {a.pairs} alternating pairs of fresh processes")
    for name, xs in [("without the profile", without), ("with the profile", with_profile)]:
        m, lo, hi = median_interval(xs)
        print(f"  {name:20} {m:8.3f} ms [{lo:.3f}, {hi:.3f}]")
    m, lo, hi = median_interval(ratios)
    print(f"  with / without       {m:8.3f}    [{lo:.3f}, {hi:.3f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
