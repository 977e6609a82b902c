// RUN: %smelt-opt %s | FileCheck %s
// Weights are held by handle and never printed: `dense_resource<name>`, as MLIR elides them.

// CHECK-LABEL: func.func @weights
func.func @weights(%x: tensor<1x4xf32>) -> tensor<1x8xf32> {
  // CHECK: "smelt.constant"() {value = dense_resource<fc.weight> : tensor<8x4xf32>}
  %w = "smelt.constant"() {value = dense_resource<fc.weight> : tensor<8x4xf32>} : () -> tensor<8x4xf32>
  %0 = "smelt.gemm"(%x, %w) {trans_b = true} : (tensor<1x4xf32>, tensor<8x4xf32>) -> tensor<1x8xf32>
  return %0 : tensor<1x8xf32>
}
