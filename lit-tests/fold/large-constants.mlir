// RUN: %smelt-opt %s --fold | FileCheck %s
// Folded constants above 16 elements are stored as resources, not printed.

// CHECK-LABEL: func.func @big
func.func @big() -> tensor<32xi64> {
  // CHECK-NEXT: %0 = "smelt.constant"() {value = dense_resource<folded> : tensor<32xi64>}
  %s = "smelt.constant"() {value = dense<0> : tensor<i64>} : () -> tensor<i64>
  %l = "smelt.constant"() {value = dense<32> : tensor<i64>} : () -> tensor<i64>
  %d = "smelt.constant"() {value = dense<1> : tensor<i64>} : () -> tensor<i64>
  %r = "smelt.range"(%s, %l, %d) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<32xi64>
  return %r : tensor<32xi64>
}
