#!/usr/bin/env bash
# Builds Smelt and compiles the bundled example with smelt-opt's default cleanup pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

cargo build --release --bin smelt-opt --bin smelt
./target/release/smelt-opt examples/resnet-stem.mlir \
  --pass-pipeline='builtin.module(canonicalize,cse)' --timing
