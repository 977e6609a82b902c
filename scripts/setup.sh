#!/usr/bin/env bash
# Installs what Smelt needs on Debian 12, skipping what is already there. Without arguments:
# what the default build and `scripts/run.sh` need (a Rust toolchain, Debian's rustc-web/
# cargo-web if no cargo is on PATH, and a C toolchain). With `--tests`: also LLVM/MLIR 22 (lit,
# FileCheck, mlir-opt, and the libraries the `mlir` feature links), graphviz, and Python's
# venv for the Python package's tests.
set -euo pipefail

need_apt=()
command -v cargo >/dev/null 2>&1 || need_apt+=(rustc-web cargo-web)
packages=(build-essential pkg-config python3)
if [ "${1:-}" = "--tests" ]; then
  packages+=(llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools libpolly-22-dev libzstd-dev
             libclang1-22 libclang-common-22-dev clang-22 graphviz python3-venv python3-pip)
fi
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done

if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${need_apt[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
