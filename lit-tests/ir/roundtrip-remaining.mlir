// RUN: %smelt-opt %s | %smelt-opt | FileCheck %s
// Every registered op round-trips; this file covers the ones the other files do not.

// CHECK-LABEL: func.func @compare_select
func.func @compare_select(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: "smelt.equal"(%arg0, %arg1) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xi1>
  %e = "smelt.equal"(%a, %b) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xi1>
  // CHECK: "smelt.less"
  %l = "smelt.less"(%a, %b) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xi1>
  // CHECK: "smelt.greater"
  %g = "smelt.greater"(%a, %b) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xi1>
  // CHECK: "smelt.not"
  %n = "smelt.not"(%g) : (tensor<4xi1>) -> tensor<4xi1>
  // CHECK: "smelt.where"(%{{.*}}, %arg0, %arg1) : (tensor<4xi1>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %w = "smelt.where"(%n, %a, %b) : (tensor<4xi1>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.prelu"
  %p = "smelt.prelu"(%w, %b) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %p : tensor<4xf32>
}

// CHECK-LABEL: func.func @math
func.func @math(%x: tensor<4xf32>, %lo: tensor<f32>, %hi: tensor<f32>) -> tensor<4xf32> {
  // CHECK: "smelt.abs"
  %0 = "smelt.abs"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.exp"
  %1 = "smelt.exp"(%0) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.log"
  %2 = "smelt.log"(%1) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.reciprocal"
  %3 = "smelt.reciprocal"(%2) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.silu"
  %4 = "smelt.silu"(%3) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.softplus"
  %5 = "smelt.softplus"(%4) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.softsign"
  %6 = "smelt.softsign"(%5) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.elu"(%6) {alpha = 1.0 : f32}
  %7 = "smelt.elu"(%6) {alpha = 1.0 : f32} : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.selu"(%7) {alpha = 1.6732632 : f32, gamma = 1.050701 : f32}
  %8 = "smelt.selu"(%7) {alpha = 1.67326319 : f32, gamma = 1.05070102 : f32} : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.clip"(%8, %arg1, %arg2) : (tensor<4xf32>, tensor<f32>, tensor<f32>) -> tensor<4xf32>
  %9 = "smelt.clip"(%8, %lo, %hi) : (tensor<4xf32>, tensor<f32>, tensor<f32>) -> tensor<4xf32>
  // CHECK: "smelt.identity"
  %10 = "smelt.identity"(%9) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: %11:2 = "smelt.dropout"(%10) : (tensor<4xf32>) -> (tensor<4xf32>, tensor<4xi1>)
  %11:2 = "smelt.dropout"(%10) : (tensor<4xf32>) -> (tensor<4xf32>, tensor<4xi1>)
  return %11#0 : tensor<4xf32>
}

// CHECK-LABEL: func.func @pools_norms
func.func @pools_norms(%x: tensor<1x8x6x6xf32>, %g: tensor<6xf32>) -> (tensor<1x8x3x3xf32>, tensor<1x8x1x1xf32>, tensor<1x8x6x6xf32>, tensor<1x8x6x6xf32>) {
  // CHECK: "smelt.avg_pool"(%arg0) {count_include_pad = false, kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>}
  %0 = "smelt.avg_pool"(%x) {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, count_include_pad = false} : (tensor<1x8x6x6xf32>) -> tensor<1x8x3x3xf32>
  // CHECK: "smelt.global_max_pool"
  %1 = "smelt.global_max_pool"(%x) : (tensor<1x8x6x6xf32>) -> tensor<1x8x1x1xf32>
  // CHECK: "smelt.log_softmax"(%arg0) {axis = 1 : i64}
  %2 = "smelt.log_softmax"(%x) {axis = 1 : i64} : (tensor<1x8x6x6xf32>) -> tensor<1x8x6x6xf32>
  // CHECK: "smelt.layer_norm"(%arg0, %arg1) {epsilon = 1.0e-05 : f32}
  %3 = "smelt.layer_norm"(%x, %g) {epsilon = 1.0e-05 : f32} : (tensor<1x8x6x6xf32>, tensor<6xf32>) -> tensor<1x8x6x6xf32>
  return %0, %1, %2, %3 : tensor<1x8x3x3xf32>, tensor<1x8x1x1xf32>, tensor<1x8x6x6xf32>, tensor<1x8x6x6xf32>
}

// CHECK-LABEL: func.func @reductions
func.func @reductions(%x: tensor<2x3xf32>, %axes: tensor<1xi64>) -> (tensor<?x?xf32>, tensor<?x?xf32>, tensor<?x?xf32>, tensor<?x?xf32>, tensor<?x?xf32>) {
  // CHECK: "smelt.reduce_mean"(%arg0, %arg1) : (tensor<2x3xf32>, tensor<1xi64>) -> tensor<?x?xf32>
  %0 = "smelt.reduce_mean"(%x, %axes) : (tensor<2x3xf32>, tensor<1xi64>) -> tensor<?x?xf32>
  // CHECK: "smelt.reduce_sum"
  %1 = "smelt.reduce_sum"(%x, %axes) : (tensor<2x3xf32>, tensor<1xi64>) -> tensor<?x?xf32>
  // CHECK: "smelt.reduce_max"
  %2 = "smelt.reduce_max"(%x, %axes) : (tensor<2x3xf32>, tensor<1xi64>) -> tensor<?x?xf32>
  // CHECK: "smelt.reduce_min"
  %3 = "smelt.reduce_min"(%x, %axes) : (tensor<2x3xf32>, tensor<1xi64>) -> tensor<?x?xf32>
  // CHECK: "smelt.reduce_prod"(%arg0, %arg1) {keepdims = true, noop_with_empty_axes = false}
  %4 = "smelt.reduce_prod"(%x, %axes) {keepdims = true, noop_with_empty_axes = false} : (tensor<2x3xf32>, tensor<1xi64>) -> tensor<?x?xf32>
  return %0, %1, %2, %3, %4 : tensor<?x?xf32>, tensor<?x?xf32>, tensor<?x?xf32>, tensor<?x?xf32>, tensor<?x?xf32>
}

// CHECK-LABEL: func.func @data_movement
func.func @data_movement(%x: tensor<1x3x1x4xf32>, %s: tensor<2xi64>, %r: tensor<4xi64>, %p: tensor<8xi64>) -> (tensor<3x4xf32>, tensor<?x?xf32>, tensor<?x?x?x?xf32>, tensor<?x?x?x?xf32>, tensor<4xi64>) {
  // CHECK: "smelt.squeeze"(%arg0) : (tensor<1x3x1x4xf32>) -> tensor<3x4xf32>
  %0 = "smelt.squeeze"(%x) : (tensor<1x3x1x4xf32>) -> tensor<3x4xf32>
  // CHECK: "smelt.expand"(%0, %arg1) : (tensor<3x4xf32>, tensor<2xi64>) -> tensor<?x?xf32>
  %1 = "smelt.expand"(%0, %s) : (tensor<3x4xf32>, tensor<2xi64>) -> tensor<?x?xf32>
  // CHECK: "smelt.tile"(%arg0, %arg2)
  %2 = "smelt.tile"(%x, %r) : (tensor<1x3x1x4xf32>, tensor<4xi64>) -> tensor<?x?x?x?xf32>
  // CHECK: "smelt.pad"(%arg0, %arg3) {mode = "reflect"}
  %3 = "smelt.pad"(%x, %p) {mode = "reflect"} : (tensor<1x3x1x4xf32>, tensor<8xi64>) -> tensor<?x?x?x?xf32>
  // CHECK: "smelt.gather_elements"(%arg0, %{{.*}}) {axis = 3 : i64} : (tensor<1x3x1x4xf32>, tensor<1x3x1x2xi64>) -> tensor<1x3x1x2xf32>
  %idx = "smelt.constant"() {value = dense<1> : tensor<1x3x1x2xi64>} : () -> tensor<1x3x1x2xi64>
  %ge = "smelt.gather_elements"(%x, %idx) {axis = 3 : i64} : (tensor<1x3x1x4xf32>, tensor<1x3x1x2xi64>) -> tensor<1x3x1x2xf32>
  // CHECK: "smelt.shape"(%arg0) : (tensor<1x3x1x4xf32>) -> tensor<4xi64>
  %4 = "smelt.shape"(%x) : (tensor<1x3x1x4xf32>) -> tensor<4xi64>
  return %0, %1, %2, %3, %4 : tensor<3x4xf32>, tensor<?x?xf32>, tensor<?x?x?x?xf32>, tensor<?x?x?x?xf32>, tensor<4xi64>
}

// CHECK-LABEL: func.func @resize
func.func @resize(%x: tensor<1x3x8x8xf32>) -> tensor<1x3x16x16xf32> {
  %roi = "smelt.constant"() {value = dense<> : tensor<0xf32>} : () -> tensor<0xf32>
  %scales = "smelt.constant"() {value = dense<[1.0, 1.0, 2.0, 2.0]> : tensor<4xf32>} : () -> tensor<4xf32>
  // CHECK: "smelt.resize"(%arg0, %0, %1) {coordinate_transformation_mode = "half_pixel", mode = "linear"} : (tensor<1x3x8x8xf32>, tensor<0xf32>, tensor<4xf32>) -> tensor<1x3x16x16xf32>
  %0 = "smelt.resize"(%x, %roi, %scales) {mode = "linear", coordinate_transformation_mode = "half_pixel"} : (tensor<1x3x8x8xf32>, tensor<0xf32>, tensor<4xf32>) -> tensor<1x3x16x16xf32>
  return %0 : tensor<1x3x16x16xf32>
}

// CHECK-LABEL: func.func @resize_antialiased
func.func @resize_antialiased(%x: tensor<1x3x8x8xf32>) -> tensor<1x3x3x3xf32> {
  %roi = "smelt.constant"() {value = dense<> : tensor<0xf32>} : () -> tensor<0xf32>
  %scales = "smelt.constant"() {value = dense<[1.0, 1.0, 0.4, 0.4]> : tensor<4xf32>} : () -> tensor<4xf32>
  // CHECK: "smelt.resize"(%arg0, %0, %1) {antialias = true, mode = "cubic"} : (tensor<1x3x8x8xf32>, tensor<0xf32>, tensor<4xf32>) -> tensor<1x3x3x3xf32>
  %0 = "smelt.resize"(%x, %roi, %scales) {mode = "cubic", antialias = true} : (tensor<1x3x8x8xf32>, tensor<0xf32>, tensor<4xf32>) -> tensor<1x3x3x3xf32>
  return %0 : tensor<1x3x3x3xf32>
}

// CHECK-LABEL: func.func @generators
func.func @generators(%start: tensor<i64>, %limit: tensor<i64>, %delta: tensor<i64>, %shape: tensor<2xi64>) -> (tensor<?xi64>, tensor<?x?xf32>) {
  // CHECK: "smelt.range"(%arg0, %arg1, %arg2) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
  %0 = "smelt.range"(%start, %limit, %delta) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
  // CHECK: "smelt.constant_of_shape"(%arg3) {value = dense<0.0> : tensor<1xf32>}
  %1 = "smelt.constant_of_shape"(%shape) {value = dense<0.0> : tensor<1xf32>} : (tensor<2xi64>) -> tensor<?x?xf32>
  return %0, %1 : tensor<?xi64>, tensor<?x?xf32>
}

// CHECK-LABEL: func.func @mish
func.func @mish(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: "smelt.mish"(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
  %0 = "smelt.mish"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// CHECK-LABEL: func.func @mod
func.func @mod(%a: tensor<3xi64>, %b: tensor<3xi64>, %x: tensor<2x3xf32>, %y: tensor<3xf32>) -> (tensor<3xi64>, tensor<2x3xf32>) {
  // CHECK: "smelt.mod"(%arg0, %arg1) : (tensor<3xi64>, tensor<3xi64>) -> tensor<3xi64>
  %0 = "smelt.mod"(%a, %b) : (tensor<3xi64>, tensor<3xi64>) -> tensor<3xi64>
  // CHECK: "smelt.mod"(%arg2, %arg3) {fmod = 1 : i64} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %1 = "smelt.mod"(%x, %y) {fmod = 1 : i64} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  return %0, %1 : tensor<3xi64>, tensor<2x3xf32>
}

// CHECK-LABEL: func.func @lrn
func.func @lrn(%x: tensor<1x8x5x5xf32>) -> tensor<1x8x5x5xf32> {
  // CHECK: "smelt.lrn"(%arg0) {beta = 0.75 : f32, size = 5 : i64} : (tensor<1x8x5x5xf32>) -> tensor<1x8x5x5xf32>
  %0 = "smelt.lrn"(%x) {size = 5 : i64, beta = 0.75 : f32} : (tensor<1x8x5x5xf32>) -> tensor<1x8x5x5xf32>
  return %0 : tensor<1x8x5x5xf32>
}

// CHECK-LABEL: func.func @max_pool_indices
func.func @max_pool_indices(%x: tensor<1x2x5x5xf32>) -> tensor<1x2x3x3xi64> {
  // CHECK: "smelt.max_pool_indices"(%arg0) {kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, storage_order = 1 : i64, strides = array<i64: 2, 2>} : (tensor<1x2x5x5xf32>) -> tensor<1x2x3x3xi64>
  %0 = "smelt.max_pool_indices"(%x) {kernel_shape = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, storage_order = 1 : i64} : (tensor<1x2x5x5xf32>) -> tensor<1x2x3x3xi64>
  return %0 : tensor<1x2x3x3xi64>
}

// CHECK-LABEL: func.func @group_norm
func.func @group_norm(%x: tensor<2x6x4x4xf32>, %s: tensor<6xf32>, %b: tensor<6xf32>) -> tensor<2x6x4x4xf32> {
  // CHECK: "smelt.group_norm"(%arg0, %arg1, %arg2) {epsilon = 0.001 : f32, num_groups = 3 : i64}
  %0 = "smelt.group_norm"(%x, %s, %b) {num_groups = 3 : i64, epsilon = 1.0e-03 : f32} : (tensor<2x6x4x4xf32>, tensor<6xf32>, tensor<6xf32>) -> tensor<2x6x4x4xf32>
  return %0 : tensor<2x6x4x4xf32>
}

// CHECK-LABEL: func.func @quantization
func.func @quantization(%x: tensor<2x3xf32>, %s: tensor<f32>, %z: tensor<ui8>, %sc: tensor<3xf32>, %zc: tensor<3xi8>) -> (tensor<2x3xf32>, tensor<2x3xi8>, tensor<2x3xf32>) {
  // CHECK: "smelt.quantize_linear"(%arg0, %arg1, %arg2) : (tensor<2x3xf32>, tensor<f32>, tensor<ui8>) -> tensor<2x3xui8>
  %0 = "smelt.quantize_linear"(%x, %s, %z) : (tensor<2x3xf32>, tensor<f32>, tensor<ui8>) -> tensor<2x3xui8>
  // CHECK: "smelt.dequantize_linear"(%0, %arg1, %arg2) : (tensor<2x3xui8>, tensor<f32>, tensor<ui8>) -> tensor<2x3xf32>
  %1 = "smelt.dequantize_linear"(%0, %s, %z) : (tensor<2x3xui8>, tensor<f32>, tensor<ui8>) -> tensor<2x3xf32>
  // CHECK: "smelt.quantize_linear"(%arg0, %arg3, %arg4) : (tensor<2x3xf32>, tensor<3xf32>, tensor<3xi8>) -> tensor<2x3xi8>
  %2 = "smelt.quantize_linear"(%x, %sc, %zc) : (tensor<2x3xf32>, tensor<3xf32>, tensor<3xi8>) -> tensor<2x3xi8>
  // CHECK: "smelt.round"(%arg0) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %3 = "smelt.round"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %1, %2, %3 : tensor<2x3xf32>, tensor<2x3xi8>, tensor<2x3xf32>
}

// CHECK-LABEL: func.func @quantized_products
func.func @quantized_products(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xi8>, %s: tensor<f32>, %z: tensor<ui8>, %ws: tensor<4xf32>, %b: tensor<4xf32>, %a: tensor<2x5x3xf32>, %m: tensor<3x6xi8>, %ms: tensor<6xf32>) -> (tensor<1x4x4x4xf32>, tensor<2x5x6xf32>) {
  // CHECK: "smelt.quantized_conv2d"(%arg0, %arg1, %arg2, %arg3, %arg4, %arg5) {pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xi8>, tensor<f32>, tensor<ui8>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4x4x4xf32>
  %0 = "smelt.quantized_conv2d"(%x, %w, %s, %z, %ws, %b) {pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xi8>, tensor<f32>, tensor<ui8>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4x4x4xf32>
  // CHECK: "smelt.quantized_matmul"(%arg6, %arg7, %arg2, %arg3, %arg8) : (tensor<2x5x3xf32>, tensor<3x6xi8>, tensor<f32>, tensor<ui8>, tensor<6xf32>) -> tensor<2x5x6xf32>
  %1 = "smelt.quantized_matmul"(%a, %m, %s, %z, %ms) : (tensor<2x5x3xf32>, tensor<3x6xi8>, tensor<f32>, tensor<ui8>, tensor<6xf32>) -> tensor<2x5x6xf32>
  return %0, %1 : tensor<1x4x4x4xf32>, tensor<2x5x6xf32>
}

// CHECK-LABEL: func.func @conv_transpose
func.func @conv_transpose(%x: tensor<1x4x3x3xf32>, %w: tensor<4x2x3x3xf32>) -> tensor<1x4x6x6xf32> {
  // CHECK: "smelt.conv_transpose"(%arg0, %arg1) {group = 2 : i64, output_padding = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>}
  %0 = "smelt.conv_transpose"(%x, %w) {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, output_padding = array<i64: 1, 1>, group = 2 : i64} : (tensor<1x4x3x3xf32>, tensor<4x2x3x3xf32>) -> tensor<1x4x6x6xf32>
  return %0 : tensor<1x4x6x6xf32>
}
