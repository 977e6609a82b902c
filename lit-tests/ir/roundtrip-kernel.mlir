// RUN: %smelt-opt %s | %smelt-opt | FileCheck %s
// A fused kernel: an isolated region whose block arguments are the kernel inputs.

// CHECK-LABEL: func.func @fused
func.func @fused(%x: tensor<1x8x4x4xf32>, %w: tensor<8x8x1x1xf32>) -> tensor<1x8x4x4xf32> {
  // CHECK: %0 = "smelt.kernel"(%arg0, %arg1) ({
  // CHECK-NEXT: ^bb0(%arg2: tensor<1x8x4x4xf32>, %arg3: tensor<8x8x1x1xf32>):
  // CHECK-NEXT:   %1 = "smelt.conv2d"(%arg2, %arg3)
  // CHECK-NEXT:   %2 = "smelt.relu"(%1)
  // CHECK-NEXT:   "smelt.yield"(%2) : (tensor<1x8x4x4xf32>) -> ()
  // CHECK-NEXT: }) {bytes = 1280 : i64, flops = 2048 : i64, pattern = "conv_relu", predicted_latency_us = 1.5 : f64} : (tensor<1x8x4x4xf32>, tensor<8x8x1x1xf32>) -> tensor<1x8x4x4xf32>
  %k = "smelt.kernel"(%x, %w) ({
  ^bb0(%a: tensor<1x8x4x4xf32>, %b: tensor<8x8x1x1xf32>):
    %c = "smelt.conv2d"(%a, %b) : (tensor<1x8x4x4xf32>, tensor<8x8x1x1xf32>) -> tensor<1x8x4x4xf32>
    %r = "smelt.relu"(%c) : (tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
    "smelt.yield"(%r) : (tensor<1x8x4x4xf32>) -> ()
  }) {pattern = "conv_relu", predicted_latency_us = 1.5 : f64, flops = 2048 : i64, bytes = 1280 : i64} : (tensor<1x8x4x4xf32>, tensor<8x8x1x1xf32>) -> tensor<1x8x4x4xf32>
  return %k : tensor<1x8x4x4xf32>
}
