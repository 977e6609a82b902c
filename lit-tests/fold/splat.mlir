// RUN: %smelt-opt %s --canonicalize | FileCheck %s
// A splat through a fill, broadcast or reshape stays one stored value, however large: a
// generated weight is folded once at compile time, never materialized per element in the IR
// nor generated per run.

// CHECK-LABEL: func.func @generated_weight
// CHECK: "smelt.constant"() {value = dense<0.5> : tensor<2048x1024xf32>}
// CHECK-NOT: smelt.constant_of_shape
// CHECK: "smelt.matmul"
func.func @generated_weight(%x: tensor<1x2048xf32>) -> tensor<1x1024xf32> {
  %s = "smelt.constant"() {value = dense<[2048, 1024]> : tensor<2xi64>} : () -> tensor<2xi64>
  %w = "smelt.constant_of_shape"(%s) {value = dense<0.5> : tensor<1xf32>} : (tensor<2xi64>) -> tensor<2048x1024xf32>
  %y = "smelt.matmul"(%x, %w) : (tensor<1x2048xf32>, tensor<2048x1024xf32>) -> tensor<1x1024xf32>
  return %y : tensor<1x1024xf32>
}

// CHECK-LABEL: func.func @broadcast_splat
// CHECK: "smelt.constant"() {value = dense<3.0> : tensor<64x4096xf32>}
// CHECK-NOT: smelt.expand
func.func @broadcast_splat() -> tensor<64x4096xf32> {
  %c = "smelt.constant"() {value = dense<3.0> : tensor<1x1xf32>} : () -> tensor<1x1xf32>
  %s = "smelt.constant"() {value = dense<[64, 4096]> : tensor<2xi64>} : () -> tensor<2xi64>
  %e = "smelt.expand"(%c, %s) : (tensor<1x1xf32>, tensor<2xi64>) -> tensor<64x4096xf32>
  return %e : tensor<64x4096xf32>
}
