// RUN: %smelt-opt %s | %smelt-opt | FileCheck %s

// CHECK-LABEL: func.func @shapes
func.func @shapes(%x: tensor<2x3x4xf32>) -> (tensor<4x3x2xf32>, tensor<2x12xf32>, tensor<2x1x3x4xf32>) {
  // CHECK: "smelt.transpose"(%arg0) {perm = array<i64: 2, 1, 0>}
  %0 = "smelt.transpose"(%x) {perm = array<i64: 2, 1, 0>} : (tensor<2x3x4xf32>) -> tensor<4x3x2xf32>
  // CHECK: %1 = "smelt.constant"() {value = dense<[2, -1]> : tensor<2xi64>} : () -> tensor<2xi64>
  %s = "smelt.constant"() {value = dense<[2, -1]> : tensor<2xi64>} : () -> tensor<2xi64>
  // CHECK: "smelt.reshape"(%arg0, %1) : (tensor<2x3x4xf32>, tensor<2xi64>) -> tensor<2x12xf32>
  %1 = "smelt.reshape"(%x, %s) : (tensor<2x3x4xf32>, tensor<2xi64>) -> tensor<2x12xf32>
  %a = "smelt.constant"() {value = dense<1> : tensor<1xi64>} : () -> tensor<1xi64>
  // CHECK: "smelt.unsqueeze"(%arg0, %{{.*}}) : (tensor<2x3x4xf32>, tensor<1xi64>) -> tensor<2x1x3x4xf32>
  %2 = "smelt.unsqueeze"(%x, %a) : (tensor<2x3x4xf32>, tensor<1xi64>) -> tensor<2x1x3x4xf32>
  return %0, %1, %2 : tensor<4x3x2xf32>, tensor<2x12xf32>, tensor<2x1x3x4xf32>
}

// CHECK-LABEL: func.func @split_concat
func.func @split_concat(%x: tensor<6x4xf32>) -> tensor<6x4xf32> {
  // CHECK: %0:3 = "smelt.split"(%arg0) {axis = 0 : i64} : (tensor<6x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>)
  %p:3 = "smelt.split"(%x) {axis = 0 : i64} : (tensor<6x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>)
  // CHECK: "smelt.concat"(%0#2, %0#1, %0#0) {axis = 0 : i64}
  %c = "smelt.concat"(%p#2, %p#1, %p#0) {axis = 0 : i64} : (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<6x4xf32>
  return %c : tensor<6x4xf32>
}

// CHECK-LABEL: func.func @gather_slice_cast
func.func @gather_slice_cast(%x: tensor<10x8xf32>, %i: tensor<3xi64>) -> tensor<3x4xf16> {
  %g = "smelt.gather"(%x, %i) {axis = 0 : i64} : (tensor<10x8xf32>, tensor<3xi64>) -> tensor<3x8xf32>
  %st = "smelt.constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>
  %en = "smelt.constant"() {value = dense<8> : tensor<1xi64>} : () -> tensor<1xi64>
  %ax = "smelt.constant"() {value = dense<1> : tensor<1xi64>} : () -> tensor<1xi64>
  %sp = "smelt.constant"() {value = dense<2> : tensor<1xi64>} : () -> tensor<1xi64>
  // CHECK: "smelt.slice"({{.*}}) : (tensor<3x8xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<3x4xf32>
  %s = "smelt.slice"(%g, %st, %en, %ax, %sp) : (tensor<3x8xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<3x4xf32>
  // CHECK: "smelt.cast"(%{{.*}}) {to = f16} : (tensor<3x4xf32>) -> tensor<3x4xf16>
  %c = "smelt.cast"(%s) {to = f16} : (tensor<3x4xf32>) -> tensor<3x4xf16>
  return %c : tensor<3x4xf16>
}
