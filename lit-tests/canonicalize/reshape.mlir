// RUN: %smelt-opt %s --canonicalize | FileCheck %s

// A reshape of a reshape reads the original input.
// CHECK-LABEL: func.func @chain
func.func @chain(%x: tensor<2x3x4xf32>) -> tensor<4x6xf32> {
  // CHECK: %[[T:.*]] = "smelt.constant"() {value = dense<[4, 6]>
  // CHECK: "smelt.reshape"(%arg0, %[[T]]) : (tensor<2x3x4xf32>, tensor<2xi64>) -> tensor<4x6xf32>
  %a = "smelt.constant"() {value = dense<[6, 4]> : tensor<2xi64>} : () -> tensor<2xi64>
  %b = "smelt.constant"() {value = dense<[4, 6]> : tensor<2xi64>} : () -> tensor<2xi64>
  %0 = "smelt.reshape"(%x, %a) : (tensor<2x3x4xf32>, tensor<2xi64>) -> tensor<6x4xf32>
  %1 = "smelt.reshape"(%0, %b) : (tensor<6x4xf32>, tensor<2xi64>) -> tensor<4x6xf32>
  return %1 : tensor<4x6xf32>
}

// Identity reshapes, casts and expands vanish.
// CHECK-LABEL: func.func @identities
func.func @identities(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // CHECK-NEXT: return %arg0
  %s = "smelt.constant"() {value = dense<[2, 3]> : tensor<2xi64>} : () -> tensor<2xi64>
  %0 = "smelt.reshape"(%x, %s) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<2x3xf32>
  %1 = "smelt.cast"(%0) {to = f32} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %2 = "smelt.expand"(%1, %s) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<2x3xf32>
  %3 = "smelt.identity"(%2) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %4 = "smelt.dropout"(%3) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %4 : tensor<2x3xf32>
}
