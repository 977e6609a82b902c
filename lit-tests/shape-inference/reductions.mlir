// RUN: %smelt-opt %s --shape-inference | FileCheck %s

// CHECK-LABEL: func.func @reduce
func.func @reduce(%x: tensor<2x3x4xf32>) -> (tensor<*xf32>, tensor<*xf32>, tensor<*xf32>) {
  %axes = "smelt.constant"() {value = dense<[-1]> : tensor<1xi64>} : () -> tensor<1xi64>
  // CHECK: "smelt.reduce_mean"(%arg0, %0) : (tensor<2x3x4xf32>, tensor<1xi64>) -> tensor<2x3x1xf32>
  %0 = "smelt.reduce_mean"(%x, %axes) : (tensor<2x3x4xf32>, tensor<1xi64>) -> tensor<*xf32>
  // CHECK: "smelt.reduce_sum"(%arg0, %0) {keepdims = false} : (tensor<2x3x4xf32>, tensor<1xi64>) -> tensor<2x3xf32>
  %1 = "smelt.reduce_sum"(%x, %axes) {keepdims = false} : (tensor<2x3x4xf32>, tensor<1xi64>) -> tensor<*xf32>
  // No axes: reduce everything.
  // CHECK: "smelt.reduce_max"(%arg0) {keepdims = false} : (tensor<2x3x4xf32>) -> tensor<f32>
  %2 = "smelt.reduce_max"(%x) {keepdims = false} : (tensor<2x3x4xf32>) -> tensor<*xf32>
  return %0, %1, %2 : tensor<*xf32>, tensor<*xf32>, tensor<*xf32>
}

// CHECK-LABEL: func.func @norms
func.func @norms(%x: tensor<1x128x768xf32>, %g: tensor<768xf32>, %b: tensor<768xf32>) -> tensor<*xf32> {
  // CHECK: "smelt.layer_norm"(%arg0, %arg1, %arg2) {axis = -1 : i64, epsilon = 1.0e-12 : f32} : (tensor<1x128x768xf32>, tensor<768xf32>, tensor<768xf32>) -> tensor<1x128x768xf32>
  %0 = "smelt.layer_norm"(%x, %g, %b) {axis = -1 : i64, epsilon = 1.0e-12 : f32} : (tensor<1x128x768xf32>, tensor<768xf32>, tensor<768xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}
