#!/usr/bin/env bash
# Builds Smelt, then imports the bundled ResNet-18 (../shared/models, or the bundled .mlir
# example when the models are absent), cleans it up, fuses it, characterizes it and runs it
# with the JIT executor, fused against unfused.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

cargo build --release --bin smelt-opt --bin smelt
model=../shared/models/resnet18.onnx
if [ -f "$model" ]; then
  ./target/release/smelt-opt "$model" --timing -o target/resnet18.mlir
  echo "wrote target/resnet18.mlir ($(grep -c '"smelt\.' target/resnet18.mlir) ops)"
  ./target/release/smelt report "$model"
  ./target/release/smelt run "$model" --mode both --iters 10
else
  ./target/release/smelt-opt examples/resnet-stem.mlir --pass-pipeline='builtin.module(canonicalize,cse,fuse)' --timing
fi
