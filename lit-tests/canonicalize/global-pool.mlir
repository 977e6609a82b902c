// RUN: %smelt-opt %s --canonicalize | FileCheck %s
// A mean over the spatial axes of an NCHW tensor becomes a global average pool.

// CHECK-LABEL: func.func @spatial_mean
func.func @spatial_mean(%x: tensor<1x512x7x7xf32>) -> tensor<1x512x1x1xf32> {
  // CHECK-NEXT: %0 = "smelt.global_avg_pool"(%arg0) : (tensor<1x512x7x7xf32>) -> tensor<1x512x1x1xf32>
  // CHECK-NEXT: return %0
  %axes = "smelt.constant"() {value = dense<[-1, -2]> : tensor<2xi64>} : () -> tensor<2xi64>
  %0 = "smelt.reduce_mean"(%x, %axes) {keepdims = true} : (tensor<1x512x7x7xf32>, tensor<2xi64>) -> tensor<1x512x1x1xf32>
  return %0 : tensor<1x512x1x1xf32>
}

// Other axes, or dropped dimensions, stay reductions.
// CHECK-LABEL: func.func @channel_mean
func.func @channel_mean(%x: tensor<1x512x7x7xf32>) -> (tensor<1x1x7x7xf32>, tensor<1x512xf32>) {
  // CHECK: "smelt.reduce_mean"
  // CHECK: "smelt.reduce_mean"
  %a = "smelt.constant"() {value = dense<1> : tensor<1xi64>} : () -> tensor<1xi64>
  %b = "smelt.constant"() {value = dense<[2, 3]> : tensor<2xi64>} : () -> tensor<2xi64>
  %0 = "smelt.reduce_mean"(%x, %a) : (tensor<1x512x7x7xf32>, tensor<1xi64>) -> tensor<1x1x7x7xf32>
  %1 = "smelt.reduce_mean"(%x, %b) {keepdims = false} : (tensor<1x512x7x7xf32>, tensor<2xi64>) -> tensor<1x512xf32>
  return %0, %1 : tensor<1x1x7x7xf32>, tensor<1x512xf32>
}
