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
