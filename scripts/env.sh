# Sourced by the scripts: where LLVM/MLIR 22 live, for melior/mlir-sys and lit.
export MLIR_SYS_220_PREFIX=/usr/lib/llvm-22
export TABLEGEN_220_PREFIX=/usr/lib/llvm-22
export LLVM_BIN_DIR=/usr/lib/llvm-22/bin
export PATH="$HOME/.cargo/bin:$PATH"
