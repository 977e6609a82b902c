// RUN: %smelt-opt %s --shape-inference | FileCheck %s

// Unknown extents become known, in program order, and the signature follows.
// CHECK-LABEL: func.func @refine(%arg0: tensor<1x3x32x32xf32>, %arg1: tensor<16x3x3x3xf32>) -> tensor<1x16x16x16xf32>
func.func @refine(%x: tensor<1x3x32x32xf32>, %w: tensor<16x3x3x3xf32>) -> tensor<?x?x?x?xf32> {
  // CHECK-NEXT: "smelt.conv2d"(%arg0, %arg1) {pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>} : (tensor<1x3x32x32xf32>, tensor<16x3x3x3xf32>) -> tensor<1x16x16x16xf32>
  %0 = "smelt.conv2d"(%x, %w) {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x3x32x32xf32>, tensor<16x3x3x3xf32>) -> tensor<*xf32>
  // CHECK-NEXT: "smelt.relu"(%0) : (tensor<1x16x16x16xf32>) -> tensor<1x16x16x16xf32>
  %1 = "smelt.relu"(%0) : (tensor<*xf32>) -> tensor<?x?x?x?xf32>
  return %1 : tensor<?x?x?x?xf32>
}

// CHECK-LABEL: func.func @broadcast
func.func @broadcast(%a: tensor<8x1x6x1xf32>, %b: tensor<7x1x5xf32>) -> tensor<*xf32> {
  // CHECK-NEXT: "smelt.add"{{.*}} -> tensor<8x7x6x5xf32>
  %0 = "smelt.add"(%a, %b) : (tensor<8x1x6x1xf32>, tensor<7x1x5xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK-LABEL: func.func @matmul_batch
func.func @matmul_batch(%a: tensor<2x1x4x8xf32>, %b: tensor<3x8x5xf32>) -> tensor<*xf32> {
  // CHECK-NEXT: "smelt.matmul"{{.*}} -> tensor<2x3x4x5xf32>
  %0 = "smelt.matmul"(%a, %b) : (tensor<2x1x4x8xf32>, tensor<3x8x5xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK-LABEL: func.func @pooling_ceil
func.func @pooling_ceil(%x: tensor<1x1x4x4xf32>) -> tensor<*xf32> {
  // CHECK-NEXT: "smelt.max_pool"{{.*}} -> tensor<1x1x2x2xf32>
  %0 = "smelt.max_pool"(%x) {kernel_shape = array<i64: 3, 3>, strides = array<i64: 2, 2>, ceil_mode = true} : (tensor<1x1x4x4xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}
