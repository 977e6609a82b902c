#!/usr/bin/env bash
# The whole test suite: unit and integration tests, the lit suite (real lit + FileCheck),
# real-MLIR verification of printed IR, and the `mlir` feature (melior + IRDL).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

cargo build --workspace --all-targets
cargo test --workspace
cargo test --workspace --features mlir

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

