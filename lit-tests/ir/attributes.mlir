// RUN: %smelt-opt %s | %smelt-opt | FileCheck %s
// Attribute spellings survive the round trip exactly.

// CHECK-LABEL: func.func @attrs
func.func @attrs() -> (tensor<2x2xi64>, tensor<3xf32>, tensor<i1>, tensor<2xf32>, tensor<0xi64>) {
  // CHECK: dense<{{\[\[}}1, 2], [3, 4]]> : tensor<2x2xi64>
  %0 = "smelt.constant"() {value = dense<[[1, 2], [3, 4]]> : tensor<2x2xi64>} : () -> tensor<2x2xi64>
  // CHECK: dense<0.5> : tensor<3xf32>
  %1 = "smelt.constant"() {value = dense<0.5> : tensor<3xf32>} : () -> tensor<3xf32>
  // CHECK: dense<true> : tensor<i1>
  %2 = "smelt.constant"() {value = dense<true> : tensor<i1>} : () -> tensor<i1>
  // Non-finite floats are spelled as bit patterns, like MLIR does.
  // CHECK: dense<[0x7F800000, -1.0e-20]> : tensor<2xf32>
  %3 = "smelt.constant"() {value = dense<[0x7F800000, -1.0e-20]> : tensor<2xf32>} : () -> tensor<2xf32>
  // CHECK: dense<> : tensor<0xi64>
  %4 = "smelt.constant"() {value = dense<> : tensor<0xi64>} : () -> tensor<0xi64>
  return %0, %1, %2, %3, %4 : tensor<2x2xi64>, tensor<3xf32>, tensor<i1>, tensor<2xf32>, tensor<0xi64>
}

// Discardable attributes (with a dialect prefix) are kept; strings are escaped.
// CHECK-LABEL: func.func @discardable
func.func @discardable(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: {smelt.note = "tab\09 \"quoted\"", smelt.tags = [1 : i64, "a", unit, {k = 2 : i32}]}
  %0 = "smelt.relu"(%x) {smelt.note = "tab\09 \"quoted\"", smelt.tags = [1, "a", unit, {k = 2 : i32}]} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
