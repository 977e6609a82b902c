#!/usr/bin/env bash
# The whole test suite: unit and integration tests, doctests and examples, the lit suite (real
# lit + FileCheck), real-MLIR verification of printed IR, the `mlir` feature (melior + IRDL),
# the Python package (built from source by pip into a fresh venv, then pytest), a bounded
# run of the graph fuzz target, and Miri.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
source scripts/env.sh

cargo build --workspace --all-targets
cargo test --workspace
cargo test --workspace --features mlir

# The Python package as a user installs it: `pip install ./python` in a fresh environment.
rm -rf target/py-venv
python3 -m venv target/py-venv
target/py-venv/bin/pip install -q --upgrade pip
target/py-venv/bin/pip install -q "./python[test]"
SMELT_BIN="$PWD/target/debug/smelt" target/py-venv/bin/python -m pytest -q python/tests

# The run_graph fuzz target (libFuzzer + AddressSanitizer) for a bounded time: random graphs
# steered by the fuzzer's bytes, run fused, unfused and by the reference, starting from the kept
# regressions. A crash fails the run and leaves its input in fuzz/artifacts/run_graph/.
cargo install --locked --quiet cargo-fuzz
rm -rf target/fuzz-corpus && mkdir -p target/fuzz-corpus
cp fuzz/regressions/run_graph-* target/fuzz-corpus/
(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run run_graph ../target/fuzz-corpus -- \
  -max_total_time="${SMELT_FUZZ_SECONDS:-120}" -rss_limit_mb=4096 -print_final_stats=1)

# Undefined-behaviour check of the runtime's unsafe Rust (GEMM packing, tile edges, prepacked
# slices, the worker split; pooling, depthwise and im2col windows, Winograd) under Miri. The
# JIT-generated code cannot run under Miri; the executor's tests poison its arena instead.
# Ignore leaks: the worker threads live as long as the process, by design.
if command -v rustup >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal --component miri >/dev/null
  cargo +nightly miri setup >/dev/null
  MIRIFLAGS="-Zmiri-ignore-leaks -Zmiri-num-cpus=2" cargo +nightly miri test -p smelt-runtime --lib -- small_ conv:: workers::
  # No CPU here has AVX-512: Miri runs the AVX-512 GEMM kernel instead, enabled at build time.
  RUSTFLAGS="-C target-feature=+avx512f" MIRIFLAGS="-Zmiri-ignore-leaks -Zmiri-num-cpus=2" \
    cargo +nightly miri test -p smelt-runtime --lib --target-dir target/miri-avx512f -- small_
else
  echo "note: no rustup, so no nightly toolchain for Miri; skipping the Miri run" >&2
fi

