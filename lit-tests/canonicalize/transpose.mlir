// RUN: %smelt-opt %s --canonicalize | FileCheck %s

// Two transposes compose into one; an identity permutation disappears.
// CHECK-LABEL: func.func @compose
func.func @compose(%x: tensor<2x3x4xf32>) -> tensor<3x4x2xf32> {
  // CHECK-NEXT: %0 = "smelt.transpose"(%arg0) {perm = array<i64: 1, 2, 0>}
  // CHECK-NEXT: return %0
  %0 = "smelt.transpose"(%x) {perm = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  %1 = "smelt.transpose"(%0) {perm = array<i64: 2, 0, 1>} : (tensor<4x2x3xf32>) -> tensor<3x4x2xf32>
  return %1 : tensor<3x4x2xf32>
}

// CHECK-LABEL: func.func @cancel
func.func @cancel(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // CHECK-NEXT: return %arg0
  %0 = "smelt.transpose"(%x) {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  %1 = "smelt.transpose"(%0) {perm = array<i64: 1, 0>} : (tensor<3x2xf32>) -> tensor<2x3xf32>
  return %1 : tensor<2x3xf32>
}

// Constant weights are transposed at compile time.
// CHECK-LABEL: func.func @constant
func.func @constant() -> tensor<3x2xi64> {
  // CHECK-NEXT: dense<{{\[\[}}1, 4], [2, 5], [3, 6]]> : tensor<3x2xi64>
  %c = "smelt.constant"() {value = dense<[[1, 2, 3], [4, 5, 6]]> : tensor<2x3xi64>} : () -> tensor<2x3xi64>
  %t = "smelt.transpose"(%c) {perm = array<i64: 1, 0>} : (tensor<2x3xi64>) -> tensor<3x2xi64>
  return %t : tensor<3x2xi64>
}
