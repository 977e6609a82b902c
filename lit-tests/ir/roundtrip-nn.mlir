// RUN: %smelt-opt %s | %smelt-opt | FileCheck %s

// CHECK-LABEL: func.func @conv_block
func.func @conv_block(%x: tensor<1x3x224x224xf32>, %w: tensor<64x3x7x7xf32>, %b: tensor<64xf32>,
                      %s: tensor<64xf32>, %m: tensor<64xf32>, %v: tensor<64xf32>) -> tensor<1x64x56x56xf32> {
  // CHECK: %0 = "smelt.conv2d"(%arg0, %arg1, %arg2) {dilations = array<i64: 1, 1>, group = 1 : i64, pads = array<i64: 3, 3, 3, 3>, strides = array<i64: 2, 2>} : (tensor<1x3x224x224xf32>, tensor<64x3x7x7xf32>, tensor<64xf32>) -> tensor<1x64x112x112xf32>
  %0 = "smelt.conv2d"(%x, %w, %b) {strides = array<i64: 2, 2>, pads = array<i64: 3, 3, 3, 3>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x3x224x224xf32>, tensor<64x3x7x7xf32>, tensor<64xf32>) -> tensor<1x64x112x112xf32>
  // CHECK: %1 = "smelt.batch_norm"(%0, %arg3, %arg2, %arg4, %arg5) {epsilon = 1.0e-05 : f32}
  %1 = "smelt.batch_norm"(%0, %s, %b, %m, %v) {epsilon = 1.0e-05 : f32} : (tensor<1x64x112x112xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<1x64x112x112xf32>
  %2 = "smelt.relu"(%1) : (tensor<1x64x112x112xf32>) -> tensor<1x64x112x112xf32>
  // CHECK: "smelt.max_pool"(%2) {kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>}
  %3 = "smelt.max_pool"(%2) {kernel_shape = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x64x112x112xf32>) -> tensor<1x64x56x56xf32>
  return %3 : tensor<1x64x56x56xf32>
}

// CHECK-LABEL: func.func @head
func.func @head(%x: tensor<1x512x7x7xf32>, %w: tensor<1000x512xf32>, %b: tensor<1000xf32>) -> tensor<1x1000xf32> {
  // CHECK: "smelt.global_avg_pool"(%arg0) : (tensor<1x512x7x7xf32>) -> tensor<1x512x1x1xf32>
  %0 = "smelt.global_avg_pool"(%x) : (tensor<1x512x7x7xf32>) -> tensor<1x512x1x1xf32>
  // CHECK: "smelt.flatten"(%0) {axis = 1 : i64}
  %1 = "smelt.flatten"(%0) {axis = 1 : i64} : (tensor<1x512x1x1xf32>) -> tensor<1x512xf32>
  // CHECK: "smelt.gemm"(%1, %arg1, %arg2) {alpha = 1.0 : f32, beta = 1.0 : f32, trans_b = true}
  %2 = "smelt.gemm"(%1, %w, %b) {alpha = 1.0 : f32, beta = 1.0 : f32, trans_b = true} : (tensor<1x512xf32>, tensor<1000x512xf32>, tensor<1000xf32>) -> tensor<1x1000xf32>
  return %2 : tensor<1x1000xf32>
}

// CHECK-LABEL: func.func @attention
func.func @attention(%q: tensor<1x12x128x64xf32>, %k: tensor<1x12x64x128xf32>, %v: tensor<1x12x128x64xf32>) -> tensor<1x12x128x64xf32> {
  // CHECK: "smelt.matmul"(%arg0, %arg1) : (tensor<1x12x128x64xf32>, tensor<1x12x64x128xf32>) -> tensor<1x12x128x128xf32>
  %0 = "smelt.matmul"(%q, %k) : (tensor<1x12x128x64xf32>, tensor<1x12x64x128xf32>) -> tensor<1x12x128x128xf32>
  // CHECK: "smelt.softmax"(%0) {axis = -1 : i64}
  %1 = "smelt.softmax"(%0) {axis = -1 : i64} : (tensor<1x12x128x128xf32>) -> tensor<1x12x128x128xf32>
  %2 = "smelt.matmul"(%1, %v) : (tensor<1x12x128x128xf32>, tensor<1x12x128x64xf32>) -> tensor<1x12x128x64xf32>
  return %2 : tensor<1x12x128x64xf32>
}
