// RUN: %smelt-opt %s --pass-pipeline='builtin.module(fuse)' | FileCheck %s
// Algebraic rewrites: matmul + bias as gemm, transposes composed (or cancelled), reshapes
// collapsed; and the remaining recognitions (tanh GELU, HardSwish).

// CHECK-LABEL: func.func @gemm
// CHECK: "smelt.gemm"(%arg0, %arg1, %arg2)
// CHECK-NOT: smelt.matmul
func.func @gemm(%a: tensor<3x4xf32>, %b: tensor<4x5xf32>, %c: tensor<5xf32>) -> tensor<3x5xf32> {
  %0 = "smelt.matmul"(%a, %b) : (tensor<3x4xf32>, tensor<4x5xf32>) -> tensor<3x5xf32>
  %1 = "smelt.add"(%c, %0) : (tensor<5xf32>, tensor<3x5xf32>) -> tensor<3x5xf32>
  return %1 : tensor<3x5xf32>
}

// CHECK-LABEL: func.func @transposes
// CHECK-NOT: smelt.transpose
// CHECK: return %arg0
func.func @transposes(%x: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  %0 = "smelt.transpose"(%x) {perm = array<i64: 1, 2, 0>} : (tensor<2x3x4xf32>) -> tensor<3x4x2xf32>
  %1 = "smelt.transpose"(%0) {perm = array<i64: 2, 0, 1>} : (tensor<3x4x2xf32>) -> tensor<2x3x4xf32>
  return %1 : tensor<2x3x4xf32>
}

// CHECK-LABEL: func.func @reshapes
// CHECK: "smelt.reshape"(%arg0
// CHECK-NOT: smelt.reshape
func.func @reshapes(%x: tensor<2x6xf32>) -> tensor<3x4xf32> {
  %s1 = "smelt.constant"() {value = dense<[12]> : tensor<1xi64>} : () -> tensor<1xi64>
  %s2 = "smelt.constant"() {value = dense<[3, 4]> : tensor<2xi64>} : () -> tensor<2xi64>
  %0 = "smelt.reshape"(%x, %s1) : (tensor<2x6xf32>, tensor<1xi64>) -> tensor<12xf32>
  %1 = "smelt.reshape"(%0, %s2) : (tensor<12xf32>, tensor<2xi64>) -> tensor<3x4xf32>
  return %1 : tensor<3x4xf32>
}

// CHECK-LABEL: func.func @gelu_tanh
// CHECK: "smelt.gelu"(%arg0) {approximate = "tanh"}
// CHECK-NOT: smelt.tanh
func.func @gelu_tanh(%x: tensor<8xf32>) -> tensor<8xf32> {
  %three = "smelt.constant"() {value = dense<3.0> : tensor<f32>} : () -> tensor<f32>
  %k1 = "smelt.constant"() {value = dense<0.044715> : tensor<f32>} : () -> tensor<f32>
  %k2 = "smelt.constant"() {value = dense<0.7978846> : tensor<f32>} : () -> tensor<f32>
  %one = "smelt.constant"() {value = dense<1.0> : tensor<f32>} : () -> tensor<f32>
  %half = "smelt.constant"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>
  %p = "smelt.pow"(%x, %three) : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %q = "smelt.mul"(%p, %k1) : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %s = "smelt.add"(%x, %q) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  %u = "smelt.mul"(%s, %k2) : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %t = "smelt.tanh"(%u) : (tensor<8xf32>) -> tensor<8xf32>
  %v = "smelt.add"(%t, %one) : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %h = "smelt.mul"(%x, %half) : (tensor<8xf32>, tensor<f32>) -> tensor<8xf32>
  %r = "smelt.mul"(%h, %v) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  return %r : tensor<8xf32>
}

// CHECK-LABEL: func.func @hardswish
// CHECK: "smelt.hardswish"(%arg0)
func.func @hardswish(%x: tensor<8xf32>) -> tensor<8xf32> {
  %0 = "smelt.hardsigmoid"(%x) {alpha = 0.16666667 : f32, beta = 0.5 : f32} : (tensor<8xf32>) -> tensor<8xf32>
  %1 = "smelt.mul"(%x, %0) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  return %1 : tensor<8xf32>
}
