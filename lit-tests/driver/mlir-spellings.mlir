// mlir-opt's spellings: one-dash long options, pass options inline, --mlir-timing and the
// --mlir-print-ir-* dumps; the old spellings stay as aliases.
// RUN: %smelt-opt %s -canonicalize=max-iterations=1 -cse | FileCheck %s
// RUN: %smelt-opt %s --canonicalize="max-iterations=2" -mlir-timing 2>&1 >/dev/null | FileCheck %s --check-prefix=TIMING
// RUN: %smelt-opt %s -mlir-print-ir-before-all -canonicalize -cse 2>&1 >/dev/null | FileCheck %s --check-prefix=BEFORE
// RUN: %smelt-opt %s --print-ir-after-all --cse 2>&1 >/dev/null | FileCheck %s --check-prefix=AFTER
// RUN: not %smelt-opt %s -canonicalize=max-rounds=1 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: %smelt-opt --help | FileCheck %s --check-prefix=HELP

// CHECK-LABEL: func.func @f
// CHECK: %[[R:.*]] = "smelt.relu"
// CHECK-NOT: smelt.relu
// CHECK: return %[[R]], %[[R]]
func.func @f(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %0 = "smelt.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %1 = "smelt.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %0, %1 : tensor<4xf32>, tensor<4xf32>
}

// TIMING: Execution time report
// TIMING: canonicalize
// BEFORE: IR Dump Before canonicalize
// BEFORE: IR Dump Before cse
// AFTER: IR Dump After cse
// BAD: error: pass 'canonicalize' has no option 'max-rounds'
// HELP: --mlir-timing
// HELP: --canonicalize[=<OPTIONS>]{{.*}}options: max-iterations=10
