// RUN: not %smelt-opt %s --split-input-file 2>&1 | FileCheck %s
// Regressions from the robustness tests: malformed attributes are errors, not crashes.

// CHECK: attribute-syntax.mlir:[[@LINE+2]]:33: error: expected an attribute, found '-)'
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "smelt.elu"(%x) {alpha = -) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// CHECK: error: tensor type is too large (at most 32 dimensions and 2^48 elements)
func.func @f(%x: tensor<99999999x99999999x99999999xf32>) {
  return
}

// -----

func.func @f(%x: tensor<1x1x8x8xf32>) -> tensor<1x1x8x8xf32> {
  // CHECK: error: 'smelt.max_pool' op window extents, dilations and padding are out of range
  %0 = "smelt.max_pool"(%x) {kernel_shape = array<i64: 3, 3>, dilations = array<i64: 9223372036854775807, 1>} : (tensor<1x1x8x8xf32>) -> tensor<1x1x8x8xf32>
  return %0 : tensor<1x1x8x8xf32>
}
