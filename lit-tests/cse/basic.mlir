// RUN: %smelt-opt %s --cse | FileCheck %s

// CHECK-LABEL: func.func @dedup
func.func @dedup(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK-NEXT: %0 = "smelt.relu"(%arg0)
  // CHECK-NEXT: %1 = "smelt.add"(%0, %0)
  // CHECK-NEXT: return %1
  %0 = "smelt.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %1 = "smelt.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %2 = "smelt.add"(%0, %1) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %2 : tensor<4xf32>
}

// Different attributes are different computations.
// CHECK-LABEL: func.func @attrs_differ
func.func @attrs_differ(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  // CHECK: "smelt.leaky_relu"(%arg0) {alpha = 0.1 : f32}
  // CHECK: "smelt.leaky_relu"(%arg0) {alpha = 0.2 : f32}
  %0 = "smelt.leaky_relu"(%x) {alpha = 0.1 : f32} : (tensor<4xf32>) -> tensor<4xf32>
  %1 = "smelt.leaky_relu"(%x) {alpha = 0.2 : f32} : (tensor<4xf32>) -> tensor<4xf32>
  return %0, %1 : tensor<4xf32>, tensor<4xf32>
}

// Equal constants merge.
// CHECK-LABEL: func.func @constants
func.func @constants() -> (tensor<2xi64>, tensor<2xi64>) {
  // CHECK-NEXT: %0 = "smelt.constant"
  // CHECK-NEXT: return %0, %0
  %a = "smelt.constant"() {value = dense<[1, 2]> : tensor<2xi64>} : () -> tensor<2xi64>
  %b = "smelt.constant"() {value = dense<[1, 2]> : tensor<2xi64>} : () -> tensor<2xi64>
  return %a, %b : tensor<2xi64>, tensor<2xi64>
}
