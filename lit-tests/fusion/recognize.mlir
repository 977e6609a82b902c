// RUN: %smelt-opt %s --pass-pipeline='builtin.module(fuse)' | FileCheck %s
// Decomposed exporter output is recognized as the ops it spells (GELU, SiLU, LayerNorm,
// Softmax, attention); each recognized op may then anchor or join a kernel.

// CHECK-LABEL: func.func @gelu
// CHECK: "smelt.gelu"(%arg0)
// CHECK-NOT: smelt.erf
func.func @gelu(%x: tensor<2x7xf32>) -> tensor<2x7xf32> {
  %c = "smelt.constant"() {value = dense<1.4142135> : tensor<f32>} : () -> tensor<f32>
  %one = "smelt.constant"() {value = dense<1.0> : tensor<f32>} : () -> tensor<f32>
  %half = "smelt.constant"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>
  %0 = "smelt.div"(%x, %c) : (tensor<2x7xf32>, tensor<f32>) -> tensor<2x7xf32>
  %1 = "smelt.erf"(%0) : (tensor<2x7xf32>) -> tensor<2x7xf32>
  %2 = "smelt.add"(%1, %one) : (tensor<2x7xf32>, tensor<f32>) -> tensor<2x7xf32>
  %3 = "smelt.mul"(%x, %2) : (tensor<2x7xf32>, tensor<2x7xf32>) -> tensor<2x7xf32>
  %4 = "smelt.mul"(%3, %half) : (tensor<2x7xf32>, tensor<f32>) -> tensor<2x7xf32>
  return %4 : tensor<2x7xf32>
}

// CHECK-LABEL: func.func @silu
// CHECK: "smelt.silu"(%arg0)
func.func @silu(%x: tensor<2x7xf32>) -> tensor<2x7xf32> {
  %0 = "smelt.sigmoid"(%x) : (tensor<2x7xf32>) -> tensor<2x7xf32>
  %1 = "smelt.mul"(%x, %0) : (tensor<2x7xf32>, tensor<2x7xf32>) -> tensor<2x7xf32>
  return %1 : tensor<2x7xf32>
}

// CHECK-LABEL: func.func @layer_norm
// CHECK: "smelt.layer_norm"(%arg0, %arg1, %arg2) {axis = -1 : i64, epsilon = 1.0e-05 : f32}
// CHECK-NOT: smelt.reduce_mean
func.func @layer_norm(%x: tensor<2x3x8xf32>, %g: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<2x3x8xf32> {
  %ax = "smelt.constant"() {value = dense<[-1]> : tensor<1xi64>} : () -> tensor<1xi64>
  %two = "smelt.constant"() {value = dense<2.0> : tensor<f32>} : () -> tensor<f32>
  %eps = "smelt.constant"() {value = dense<1.0e-05> : tensor<f32>} : () -> tensor<f32>
  %m = "smelt.reduce_mean"(%x, %ax) : (tensor<2x3x8xf32>, tensor<1xi64>) -> tensor<2x3x1xf32>
  %d = "smelt.sub"(%x, %m) : (tensor<2x3x8xf32>, tensor<2x3x1xf32>) -> tensor<2x3x8xf32>
  %p = "smelt.pow"(%d, %two) : (tensor<2x3x8xf32>, tensor<f32>) -> tensor<2x3x8xf32>
  %v = "smelt.reduce_mean"(%p, %ax) : (tensor<2x3x8xf32>, tensor<1xi64>) -> tensor<2x3x1xf32>
  %ve = "smelt.add"(%v, %eps) : (tensor<2x3x1xf32>, tensor<f32>) -> tensor<2x3x1xf32>
  %s = "smelt.sqrt"(%ve) : (tensor<2x3x1xf32>) -> tensor<2x3x1xf32>
  %n = "smelt.div"(%d, %s) : (tensor<2x3x8xf32>, tensor<2x3x1xf32>) -> tensor<2x3x8xf32>
  %y = "smelt.mul"(%n, %g) : (tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<2x3x8xf32>
  %z = "smelt.add"(%y, %b) : (tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<2x3x8xf32>
  return %z : tensor<2x3x8xf32>
}

// CHECK-LABEL: func.func @softmax
// CHECK: "smelt.softmax"(%arg0) {axis = -1 : i64}
func.func @softmax(%x: tensor<3x9xf32>) -> tensor<3x9xf32> {
  %ax = "smelt.constant"() {value = dense<[1]> : tensor<1xi64>} : () -> tensor<1xi64>
  %m = "smelt.reduce_max"(%x, %ax) : (tensor<3x9xf32>, tensor<1xi64>) -> tensor<3x1xf32>
  %d = "smelt.sub"(%x, %m) : (tensor<3x9xf32>, tensor<3x1xf32>) -> tensor<3x9xf32>
  %e = "smelt.exp"(%d) : (tensor<3x9xf32>) -> tensor<3x9xf32>
  %s = "smelt.reduce_sum"(%e, %ax) : (tensor<3x9xf32>, tensor<1xi64>) -> tensor<3x1xf32>
  %r = "smelt.div"(%e, %s) : (tensor<3x9xf32>, tensor<3x1xf32>) -> tensor<3x9xf32>
  return %r : tensor<3x9xf32>
}

// BERT's spelling: scores scaled by a multiplication, then masked.
// CHECK-LABEL: func.func @attention
// CHECK: "smelt.attention"(%arg0, %arg1, %arg2, %arg3) {scale = 0.125 : f32}
// CHECK-NOT: smelt.softmax
func.func @attention(%q: tensor<1x12x128x64xf32>, %kt: tensor<1x12x64x128xf32>, %v: tensor<1x12x128x64xf32>, %mask: tensor<1x1x128x128xf32>) -> tensor<1x12x128x64xf32> {
  %s = "smelt.constant"() {value = dense<0.125> : tensor<f32>} : () -> tensor<f32>
  %0 = "smelt.matmul"(%q, %kt) : (tensor<1x12x128x64xf32>, tensor<1x12x64x128xf32>) -> tensor<1x12x128x128xf32>
  %1 = "smelt.mul"(%0, %s) : (tensor<1x12x128x128xf32>, tensor<f32>) -> tensor<1x12x128x128xf32>
  %2 = "smelt.add"(%1, %mask) : (tensor<1x12x128x128xf32>, tensor<1x1x128x128xf32>) -> tensor<1x12x128x128xf32>
  %3 = "smelt.softmax"(%2) {axis = 3 : i64} : (tensor<1x12x128x128xf32>) -> tensor<1x12x128x128xf32>
  %4 = "smelt.matmul"(%3, %v) : (tensor<1x12x128x128xf32>, tensor<1x12x128x64xf32>) -> tensor<1x12x128x64xf32>
  return %4 : tensor<1x12x128x64xf32>
}
