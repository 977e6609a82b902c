// RUN: %smelt-opt %s --pass-pipeline='builtin.module(fuse)' | FileCheck %s
// BatchNorm with constant statistics folds into the conv's weights and bias (evaluated at
// compile time); with statistics known only at run time it stays, as the kernel's per-channel
// affine epilogue.

// CHECK-LABEL: func.func @folded
// CHECK-NOT: smelt.batch_norm
// CHECK: %[[K:.*]] = "smelt.kernel"(%arg0, %{{.*}}, %{{.*}}) ({
// CHECK: "smelt.conv2d"
// CHECK-NEXT: "smelt.relu"
// CHECK: pattern = "conv_relu"
// CHECK-NOT: smelt.batch_norm
func.func @folded(%x: tensor<1x2x5x5xf32>) -> tensor<1x3x5x5xf32> {
  %w = "smelt.constant"() {value = dense<[[[[0.5]], [[-1.0]]], [[[2.0]], [[0.25]]], [[[1.5]], [[-0.75]]]]> : tensor<3x2x1x1xf32>} : () -> tensor<3x2x1x1xf32>
  %g = "smelt.constant"() {value = dense<[1.5, 0.5, -2.0]> : tensor<3xf32>} : () -> tensor<3xf32>
  %b = "smelt.constant"() {value = dense<[0.1, -0.2, 0.3]> : tensor<3xf32>} : () -> tensor<3xf32>
  %m = "smelt.constant"() {value = dense<[0.3, 0.0, -1.0]> : tensor<3xf32>} : () -> tensor<3xf32>
  %v = "smelt.constant"() {value = dense<[2.0, 0.5, 1.0]> : tensor<3xf32>} : () -> tensor<3xf32>
  %0 = "smelt.conv2d"(%x, %w) : (tensor<1x2x5x5xf32>, tensor<3x2x1x1xf32>) -> tensor<1x3x5x5xf32>
  %1 = "smelt.batch_norm"(%0, %g, %b, %m, %v) {epsilon = 1.0e-05 : f32} : (tensor<1x3x5x5xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<1x3x5x5xf32>
  %2 = "smelt.relu"(%1) : (tensor<1x3x5x5xf32>) -> tensor<1x3x5x5xf32>
  return %2 : tensor<1x3x5x5xf32>
}

// CHECK-LABEL: func.func @runtime_statistics
// CHECK: "smelt.kernel"
// CHECK: "smelt.conv2d"
// CHECK-NEXT: "smelt.batch_norm"
// CHECK-NEXT: "smelt.relu"
// CHECK: pattern = "conv_bn_relu"
func.func @runtime_statistics(%x: tensor<1x2x4x4xf32>, %w: tensor<2x2x1x1xf32>, %s: tensor<2xf32>) -> tensor<1x2x4x4xf32> {
  %0 = "smelt.conv2d"(%x, %w) : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %1 = "smelt.batch_norm"(%0, %s, %s, %s, %s) : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %2 = "smelt.relu"(%1) : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %2 : tensor<1x2x4x4xf32>
}
