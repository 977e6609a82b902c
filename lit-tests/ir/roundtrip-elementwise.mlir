// RUN: %smelt-opt %s | %smelt-opt | FileCheck %s
// Printing is a fixed point: parse(print(x)) prints as x.

// CHECK-LABEL: func.func @binary(%arg0: tensor<2x3xf32>, %arg1: tensor<3xf32>) -> tensor<2x3xf32>
func.func @binary(%a: tensor<2x3xf32>, %b: tensor<3xf32>) -> tensor<2x3xf32> {
  // CHECK-NEXT: %0 = "smelt.add"(%arg0, %arg1) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %0 = "smelt.add"(%a, %b) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK-NEXT: %1 = "smelt.sub"(%0, %arg1)
  %1 = "smelt.sub"(%0, %b) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK-NEXT: %2 = "smelt.mul"(%1, %0)
  %2 = "smelt.mul"(%1, %0) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK-NEXT: %3 = "smelt.div"(%2, %arg1)
  %3 = "smelt.div"(%2, %b) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK-NEXT: %4 = "smelt.pow"(%3, %arg1)
  %4 = "smelt.pow"(%3, %b) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK-NEXT: %5 = "smelt.max"(%4, %arg0)
  %5 = "smelt.max"(%4, %a) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK-NEXT: %6 = "smelt.min"(%5, %arg0)
  %6 = "smelt.min"(%5, %a) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK-NEXT: return %6 : tensor<2x3xf32>
  return %6 : tensor<2x3xf32>
}

// CHECK-LABEL: func.func @unary
func.func @unary(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: "smelt.relu"
  %0 = "smelt.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.sigmoid"
  %1 = "smelt.sigmoid"(%0) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.tanh"
  %2 = "smelt.tanh"(%1) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.erf"
  %3 = "smelt.erf"(%2) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.sqrt"
  %4 = "smelt.sqrt"(%3) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.gelu"(%4) {approximate = "tanh"}
  %5 = "smelt.gelu"(%4) {approximate = "tanh"} : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.hardswish"
  %6 = "smelt.hardswish"(%5) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.hardsigmoid"(%6) {alpha = 0.2 : f32, beta = 0.5 : f32}
  %7 = "smelt.hardsigmoid"(%6) {alpha = 0.2 : f32, beta = 0.5 : f32} : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.leaky_relu"(%7) {alpha = 0.01 : f32}
  %8 = "smelt.leaky_relu"(%7) {alpha = 0.01 : f32} : (tensor<4xf32>) -> tensor<4xf32>
  return %8 : tensor<4xf32>
}
