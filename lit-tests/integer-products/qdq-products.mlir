// RUN: %smelt-opt %s --integer-products | FileCheck %s
// A QDQ convolution (8-bit activation grid, int8 weights scaled per output channel) becomes
// smelt.quantized_conv2d on the float input, its int8 weights and both grids.

// CHECK-LABEL: func.func @per_channel
func.func @per_channel(%x: tensor<1x1x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %s = "smelt.constant"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>
  %z = "smelt.constant"() {value = dense<10> : tensor<ui8>} : () -> tensor<ui8>
  %w = "smelt.constant"() {value = dense<[[[[3]]], [[[-7]]]]> : tensor<2x1x1x1xi8>} : () -> tensor<2x1x1x1xi8>
  %ws = "smelt.constant"() {value = dense<[0.25, 0.125]> : tensor<2xf32>} : () -> tensor<2xf32>
  %wz = "smelt.constant"() {value = dense<0> : tensor<2xi8>} : () -> tensor<2xi8>
  %b = "smelt.constant"() {value = dense<[1.0, -1.0]> : tensor<2xf32>} : () -> tensor<2xf32>
  // CHECK: %[[Y:.*]] = "smelt.quantized_conv2d"(%arg0, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) {{.*}}strides = array<i64: 1, 1>
  // CHECK-NOT: "smelt.conv2d"
  // CHECK: return %[[Y]]
  %q = "smelt.quantize_linear"(%x, %s, %z) : (tensor<1x1x2x2xf32>, tensor<f32>, tensor<ui8>) -> tensor<1x1x2x2xui8>
  %dq = "smelt.dequantize_linear"(%q, %s, %z) : (tensor<1x1x2x2xui8>, tensor<f32>, tensor<ui8>) -> tensor<1x1x2x2xf32>
  %dw = "smelt.dequantize_linear"(%w, %ws, %wz) {axis = 0 : i64} : (tensor<2x1x1x1xi8>, tensor<2xf32>, tensor<2xi8>) -> tensor<2x1x1x1xf32>
  %y = "smelt.conv2d"(%dq, %dw, %b) {strides = array<i64: 1, 1>} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  return %y : tensor<1x2x2x2xf32>
}

// When the rounded activation has other readers, the convolution reads it (still on the grid).
// CHECK-LABEL: func.func @shared_round_trip
func.func @shared_round_trip(%x: tensor<1x1x2x2xf32>) -> (tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>) {
  %s = "smelt.constant"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>
  %z = "smelt.constant"() {value = dense<-3> : tensor<i8>} : () -> tensor<i8>
  %w = "smelt.constant"() {value = dense<5> : tensor<1x1x1x1xi8>} : () -> tensor<1x1x1x1xi8>
  %ws = "smelt.constant"() {value = dense<0.25> : tensor<f32>} : () -> tensor<f32>
  %wz = "smelt.constant"() {value = dense<0> : tensor<i8>} : () -> tensor<i8>
  // CHECK: %[[DQ:.*]] = "smelt.dequantize_linear"
  // CHECK: "smelt.quantized_conv2d"(%[[DQ]],
  %q = "smelt.quantize_linear"(%x, %s, %z) : (tensor<1x1x2x2xf32>, tensor<f32>, tensor<i8>) -> tensor<1x1x2x2xi8>
  %dq = "smelt.dequantize_linear"(%q, %s, %z) : (tensor<1x1x2x2xi8>, tensor<f32>, tensor<i8>) -> tensor<1x1x2x2xf32>
  %dw = "smelt.dequantize_linear"(%w, %ws, %wz) : (tensor<1x1x1x1xi8>, tensor<f32>, tensor<i8>) -> tensor<1x1x1x1xf32>
  %y = "smelt.conv2d"(%dq, %dw) : (tensor<1x1x2x2xf32>, tensor<1x1x1x1xf32>) -> tensor<1x1x2x2xf32>
  return %y, %dq : tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>
}

// Weights with a nonzero zero point keep the float convolution.
// CHECK-LABEL: func.func @weight_zero_point
func.func @weight_zero_point(%x: tensor<1x1x2x2xf32>) -> tensor<1x1x2x2xf32> {
  %s = "smelt.constant"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>
  %z = "smelt.constant"() {value = dense<10> : tensor<ui8>} : () -> tensor<ui8>
  %w = "smelt.constant"() {value = dense<5> : tensor<1x1x1x1xi8>} : () -> tensor<1x1x1x1xi8>
  %ws = "smelt.constant"() {value = dense<0.25> : tensor<f32>} : () -> tensor<f32>
  %wz = "smelt.constant"() {value = dense<1> : tensor<i8>} : () -> tensor<i8>
  // CHECK: "smelt.conv2d"
  // CHECK-NOT: quantized_conv2d
  %q = "smelt.quantize_linear"(%x, %s, %z) : (tensor<1x1x2x2xf32>, tensor<f32>, tensor<ui8>) -> tensor<1x1x2x2xui8>
  %dq = "smelt.dequantize_linear"(%q, %s, %z) : (tensor<1x1x2x2xui8>, tensor<f32>, tensor<ui8>) -> tensor<1x1x2x2xf32>
  %dw = "smelt.dequantize_linear"(%w, %ws, %wz) : (tensor<1x1x1x1xi8>, tensor<f32>, tensor<i8>) -> tensor<1x1x1x1xf32>
  %y = "smelt.conv2d"(%dq, %dw) : (tensor<1x1x2x2xf32>, tensor<1x1x1x1xf32>) -> tensor<1x1x2x2xf32>
  return %y : tensor<1x1x2x2xf32>
}

// A QDQ gemm whose int8 weights are transposed ([N, K], scales per output): the product
// takes them transposed once to [K, N], and the bias follows as an add.
// CHECK-LABEL: func.func @gemm_transposed
func.func @gemm_transposed(%x: tensor<2x3xf32>) -> tensor<2x2xf32> {
  %s = "smelt.constant"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>
  %z = "smelt.constant"() {value = dense<10> : tensor<ui8>} : () -> tensor<ui8>
  %w = "smelt.constant"() {value = dense<[[1, 2, 3], [-4, -5, -6]]> : tensor<2x3xi8>} : () -> tensor<2x3xi8>
  %ws = "smelt.constant"() {value = dense<[0.25, 0.125]> : tensor<2xf32>} : () -> tensor<2xf32>
  %wz = "smelt.constant"() {value = dense<0> : tensor<2xi8>} : () -> tensor<2xi8>
  %b = "smelt.constant"() {value = dense<[1.0, -1.0]> : tensor<2xf32>} : () -> tensor<2xf32>
  // CHECK-DAG: %[[WT:.*]] = "smelt.constant"() {value = dense<{{\[}}[1, -4], [2, -5], [3, -6]]> : tensor<3x2xi8>}
  // CHECK: %[[P:.*]] = "smelt.quantized_matmul"(%arg0, %[[WT]], %{{.*}}, %{{.*}}, %{{.*}}) : (tensor<2x3xf32>, tensor<3x2xi8>, tensor<f32>, tensor<ui8>, tensor<2xf32>) -> tensor<2x2xf32>
  // CHECK: %[[Y:.*]] = "smelt.add"(%[[P]], %{{.*}})
  // CHECK: return %[[Y]]
  %q = "smelt.quantize_linear"(%x, %s, %z) : (tensor<2x3xf32>, tensor<f32>, tensor<ui8>) -> tensor<2x3xui8>
  %dq = "smelt.dequantize_linear"(%q, %s, %z) : (tensor<2x3xui8>, tensor<f32>, tensor<ui8>) -> tensor<2x3xf32>
  %dw = "smelt.dequantize_linear"(%w, %ws, %wz) {axis = 0 : i64} : (tensor<2x3xi8>, tensor<2xf32>, tensor<2xi8>) -> tensor<2x3xf32>
  %y = "smelt.gemm"(%dq, %dw, %b) {trans_b = true} : (tensor<2x3xf32>, tensor<2x3xf32>, tensor<2xf32>) -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}

// A matmul's int8 weights [K, N] are scaled per column (axis 1).
// CHECK-LABEL: func.func @matmul_per_column
func.func @matmul_per_column(%x: tensor<4x3xf32>) -> tensor<4x2xf32> {
  %s = "smelt.constant"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>
  %z = "smelt.constant"() {value = dense<0> : tensor<i8>} : () -> tensor<i8>
  %w = "smelt.constant"() {value = dense<[[1, 2], [3, 4], [5, 6]]> : tensor<3x2xi8>} : () -> tensor<3x2xi8>
  %ws = "smelt.constant"() {value = dense<[0.25, 0.125]> : tensor<2xf32>} : () -> tensor<2xf32>
  %wz = "smelt.constant"() {value = dense<0> : tensor<2xi8>} : () -> tensor<2xi8>
  // CHECK: "smelt.quantized_matmul"(%arg0, %{{.*}}) : (tensor<4x3xf32>, tensor<3x2xi8>
  %q = "smelt.quantize_linear"(%x, %s, %z) : (tensor<4x3xf32>, tensor<f32>, tensor<i8>) -> tensor<4x3xi8>
  %dq = "smelt.dequantize_linear"(%q, %s, %z) : (tensor<4x3xi8>, tensor<f32>, tensor<i8>) -> tensor<4x3xf32>
  %dw = "smelt.dequantize_linear"(%w, %ws, %wz) {axis = 1 : i64} : (tensor<3x2xi8>, tensor<2xf32>, tensor<2xi8>) -> tensor<3x2xf32>
  %y = "smelt.matmul"(%dq, %dw) : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
  return %y : tensor<4x2xf32>
}

// A depthwise (grouped) QDQ convolution keeps the f32 kernels.
// CHECK-LABEL: func.func @depthwise
func.func @depthwise(%x: tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32> {
  %s = "smelt.constant"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>
  %z = "smelt.constant"() {value = dense<10> : tensor<ui8>} : () -> tensor<ui8>
  %w = "smelt.constant"() {value = dense<[[[[1]]], [[[-2]]]]> : tensor<2x1x1x1xi8>} : () -> tensor<2x1x1x1xi8>
  %ws = "smelt.constant"() {value = dense<[0.25, 0.125]> : tensor<2xf32>} : () -> tensor<2xf32>
  %wz = "smelt.constant"() {value = dense<0> : tensor<2xi8>} : () -> tensor<2xi8>
  // CHECK: "smelt.conv2d"
  // CHECK-NOT: quantized_conv2d
  %q = "smelt.quantize_linear"(%x, %s, %z) : (tensor<1x2x3x3xf32>, tensor<f32>, tensor<ui8>) -> tensor<1x2x3x3xui8>
  %dq = "smelt.dequantize_linear"(%q, %s, %z) : (tensor<1x2x3x3xui8>, tensor<f32>, tensor<ui8>) -> tensor<1x2x3x3xf32>
  %dw = "smelt.dequantize_linear"(%w, %ws, %wz) {axis = 0 : i64} : (tensor<2x1x1x1xi8>, tensor<2xf32>, tensor<2xi8>) -> tensor<2x1x1x1xf32>
  %y = "smelt.conv2d"(%dq, %dw) {group = 2 : i64} : (tensor<1x2x3x3xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x3x3xf32>
  return %y : tensor<1x2x3x3xf32>
}
