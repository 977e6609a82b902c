// RUN: %smelt-opt %s --pass-pipeline='builtin.module(cse,canonicalize)' | FileCheck %s
// RUN: %smelt-opt %s --pass-pipeline='cse, canonicalize' | FileCheck %s
// RUN: %smelt-opt %s --cse --canonicalize | FileCheck %s
// RUN: %smelt-opt %s --cse --canonicalize --print-ir-after-all 2>&1 >/dev/null | FileCheck %s --check-prefix=DUMP
// RUN: %smelt-opt %s --canonicalize --print-ir-before=canonicalize 2>&1 >/dev/null | FileCheck %s --check-prefix=BEFORE
// RUN: %smelt-opt %s --cse --timing 2>&1 >/dev/null | FileCheck %s --check-prefix=TIMING

// CHECK-LABEL: func.func @f
// CHECK-NEXT: %0 = "smelt.relu"(%arg0)
// CHECK-NEXT: %1 = "smelt.add"(%0, %0)
// CHECK-NEXT: return %1
// DUMP: // -----// IR Dump After cse //----- //
// DUMP: // -----// IR Dump After canonicalize //----- //
// BEFORE: // -----// IR Dump Before canonicalize //----- //
// BEFORE: "smelt.exp"
// TIMING: Execution time report
// TIMING: Total Execution Time:
// TIMING: cse
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "smelt.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %1 = "smelt.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %2 = "smelt.exp"(%1) : (tensor<4xf32>) -> tensor<4xf32>
  %3 = "smelt.add"(%0, %1) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %3 : tensor<4xf32>
}
