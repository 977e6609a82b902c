// RUN: %smelt-opt %s --pass-pipeline='builtin.module(fuse)' | FileCheck %s
// Kernel formation: an anchor takes its epilogue chain; a value with two consumers is never
// absorbed (it would be computed twice); a depthwise conv takes the pointwise conv after it; an
// elementwise chain may be recomputed under a broadcast.

// CHECK-LABEL: func.func @linear_bias_gelu
// CHECK: "smelt.kernel"(%arg0, %arg1, %arg2)
// CHECK: pattern = "matmul_add_gelu"
// CHECK-NOT: "smelt.matmul"
func.func @linear_bias_gelu(%x: tensor<1x16x32xf32>, %w: tensor<32x64xf32>, %b: tensor<64xf32>) -> tensor<1x16x64xf32> {
  %0 = "smelt.matmul"(%x, %w) : (tensor<1x16x32xf32>, tensor<32x64xf32>) -> tensor<1x16x64xf32>
  %1 = "smelt.add"(%0, %b) : (tensor<1x16x64xf32>, tensor<64xf32>) -> tensor<1x16x64xf32>
  %2 = "smelt.gelu"(%1) : (tensor<1x16x64xf32>) -> tensor<1x16x64xf32>
  return %2 : tensor<1x16x64xf32>
}

// The sum feeds both the ReLU and the result, so no kernel absorbs it; the product and its
// bias become one gemm.
// CHECK-LABEL: func.func @shared_value
// CHECK: %[[SUM:.*]] = "smelt.gemm"(%arg0, %arg1, %arg2)
// CHECK-NEXT: "smelt.relu"(%[[SUM]])
// CHECK-NEXT: return %[[SUM]]
func.func @shared_value(%x: tensor<8x32xf32>, %w: tensor<32x32xf32>, %r: tensor<8x32xf32>) -> (tensor<8x32xf32>, tensor<8x32xf32>) {
  %0 = "smelt.matmul"(%x, %w) : (tensor<8x32xf32>, tensor<32x32xf32>) -> tensor<8x32xf32>
  %1 = "smelt.add"(%0, %r) : (tensor<8x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  %2 = "smelt.relu"(%1) : (tensor<8x32xf32>) -> tensor<8x32xf32>
  return %1, %2 : tensor<8x32xf32>, tensor<8x32xf32>
}

// CHECK-LABEL: func.func @separable
// CHECK: "smelt.kernel"
// CHECK: "smelt.conv2d"{{.*}}group = 8
// CHECK-NEXT: "smelt.clip"
// CHECK-NEXT: "smelt.conv2d"{{.*}}group = 1
// CHECK: pattern = "dwconv_relu6_conv"
func.func @separable(%x: tensor<1x8x10x10xf32>, %dw: tensor<8x1x3x3xf32>, %pw: tensor<16x8x1x1xf32>) -> tensor<1x16x10x10xf32> {
  %lo = "smelt.constant"() {value = dense<0.0> : tensor<f32>} : () -> tensor<f32>
  %hi = "smelt.constant"() {value = dense<6.0> : tensor<f32>} : () -> tensor<f32>
  %w1 = "smelt.constant"() {value = dense<0.5> : tensor<8x1x3x3xf32>} : () -> tensor<8x1x3x3xf32>
  %w2 = "smelt.constant"() {value = dense<0.25> : tensor<16x8x1x1xf32>} : () -> tensor<16x8x1x1xf32>
  %0 = "smelt.conv2d"(%x, %w1) {group = 8 : i64, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x10x10xf32>, tensor<8x1x3x3xf32>) -> tensor<1x8x10x10xf32>
  %1 = "smelt.clip"(%0, %lo, %hi) : (tensor<1x8x10x10xf32>, tensor<f32>, tensor<f32>) -> tensor<1x8x10x10xf32>
  %2 = "smelt.conv2d"(%1, %w2) {group = 1 : i64} : (tensor<1x8x10x10xf32>, tensor<16x8x1x1xf32>) -> tensor<1x16x10x10xf32>
  return %2 : tensor<1x16x10x10xf32>
}

// CHECK-LABEL: func.func @elementwise_chain
// CHECK: "smelt.kernel"(%arg0, %arg1)
// CHECK: pattern = "add_tanh_scale"
func.func @elementwise_chain(%x: tensor<4x4xf32>, %y: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %c = "smelt.constant"() {value = dense<3.0> : tensor<f32>} : () -> tensor<f32>
  %0 = "smelt.add"(%x, %y) : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  %1 = "smelt.tanh"(%0) : (tensor<4x4xf32>) -> tensor<4x4xf32>
  %2 = "smelt.mul"(%1, %c) : (tensor<4x4xf32>, tensor<f32>) -> tensor<4x4xf32>
  return %2 : tensor<4x4xf32>
}

// Squeeze-excite: pool, two pointwise convs, the gate, and the scaling of the pooled input.
// CHECK-LABEL: func.func @squeeze_excite
// CHECK: "smelt.kernel"(%arg0)
// CHECK: pattern = "gap_conv_relu_conv_sigmoid_mul"
// CHECK-NOT: "smelt.global_avg_pool"
func.func @squeeze_excite(%x: tensor<1x8x6x6xf32>) -> tensor<1x8x6x6xf32> {
  %w1 = "smelt.constant"() {value = dense<0.25> : tensor<2x8x1x1xf32>} : () -> tensor<2x8x1x1xf32>
  %b1 = "smelt.constant"() {value = dense<0.1> : tensor<2xf32>} : () -> tensor<2xf32>
  %w2 = "smelt.constant"() {value = dense<-0.5> : tensor<8x2x1x1xf32>} : () -> tensor<8x2x1x1xf32>
  %b2 = "smelt.constant"() {value = dense<0.2> : tensor<8xf32>} : () -> tensor<8xf32>
  %0 = "smelt.global_avg_pool"(%x) : (tensor<1x8x6x6xf32>) -> tensor<1x8x1x1xf32>
  %1 = "smelt.conv2d"(%0, %w1, %b1) : (tensor<1x8x1x1xf32>, tensor<2x8x1x1xf32>, tensor<2xf32>) -> tensor<1x2x1x1xf32>
  %2 = "smelt.relu"(%1) : (tensor<1x2x1x1xf32>) -> tensor<1x2x1x1xf32>
  %3 = "smelt.conv2d"(%2, %w2, %b2) : (tensor<1x2x1x1xf32>, tensor<8x2x1x1xf32>, tensor<8xf32>) -> tensor<1x8x1x1xf32>
  %4 = "smelt.sigmoid"(%3) : (tensor<1x8x1x1xf32>) -> tensor<1x8x1x1xf32>
  %5 = "smelt.mul"(%x, %4) : (tensor<1x8x6x6xf32>, tensor<1x8x1x1xf32>) -> tensor<1x8x6x6xf32>
  return %5 : tensor<1x8x6x6xf32>
}

// The scores' rows are whole in a contraction's output, so softmax can follow it (QK^T +
// softmax when the rest of attention is not fused).
// CHECK-LABEL: func.func @scores_softmax
// CHECK: "smelt.kernel"(%arg0, %arg1)
// CHECK: pattern = "matmul_scale_softmax"
func.func @scores_softmax(%q: tensor<2x16x8xf32>, %kt: tensor<2x8x16xf32>) -> tensor<2x16x16xf32> {
  %s = "smelt.constant"() {value = dense<0.35> : tensor<f32>} : () -> tensor<f32>
  %0 = "smelt.matmul"(%q, %kt) : (tensor<2x16x8xf32>, tensor<2x8x16xf32>) -> tensor<2x16x16xf32>
  %1 = "smelt.mul"(%0, %s) : (tensor<2x16x16xf32>, tensor<f32>) -> tensor<2x16x16xf32>
  %2 = "smelt.softmax"(%1) {axis = -1 : i64} : (tensor<2x16x16xf32>) -> tensor<2x16x16xf32>
  return %2 : tensor<2x16x16xf32>
}

// A gate computed on one row and broadcast over many: the roofline counts the gate's few
// FLOPs per recomputed element as free beside the traffic, so it fuses the chain into the
// broadcasting product (recomputing it per row). Measured, that is slower; `smelt tune` flips
// it (tests/calibration.rs).
// CHECK-LABEL: func.func @recompute_under_broadcast
// CHECK: "smelt.kernel"(%arg0, %arg1)
// CHECK: "smelt.sigmoid"{{.*}} -> tensor<1x64xf32>
// CHECK-NEXT: "smelt.mul"{{.*}} -> tensor<32x64xf32>
// CHECK: pattern = "sigmoid_mul"
func.func @recompute_under_broadcast(%x: tensor<1x64xf32>, %y: tensor<32x64xf32>) -> tensor<32x64xf32> {
  %0 = "smelt.sigmoid"(%x) : (tensor<1x64xf32>) -> tensor<1x64xf32>
  %1 = "smelt.mul"(%y, %0) : (tensor<32x64xf32>, tensor<1x64xf32>) -> tensor<32x64xf32>
  return %1 : tensor<32x64xf32>
}

// A recognized composite's decomposed readers do not count: `x * sigmoid(x)` reads the
// convolution twice, but as `silu(x)` the sigmoid is dead, so the convolution joins the SiLU
// kernel (EfficientNet's blocks as PyTorch exports them).
// CHECK-LABEL: func.func @conv_silu_decomposed
// CHECK: "smelt.kernel"
// CHECK: "smelt.conv2d"
// CHECK-NEXT: "smelt.silu"
// CHECK: pattern = "conv_silu"
// CHECK-NOT: "smelt.sigmoid"
func.func @conv_silu_decomposed(%x: tensor<1x8x10x10xf32>, %w: tensor<16x8x1x1xf32>) -> tensor<1x16x10x10xf32> {
  %0 = "smelt.conv2d"(%x, %w) : (tensor<1x8x10x10xf32>, tensor<16x8x1x1xf32>) -> tensor<1x16x10x10xf32>
  %1 = "smelt.sigmoid"(%0) : (tensor<1x16x10x10xf32>) -> tensor<1x16x10x10xf32>
  %2 = "smelt.mul"(%0, %1) : (tensor<1x16x10x10xf32>, tensor<1x16x10x10xf32>) -> tensor<1x16x10x10xf32>
  return %2 : tensor<1x16x10x10xf32>
}

// The sigmoid is also a result: the convolution has a reader outside the kernel and stays.
// CHECK-LABEL: func.func @conv_silu_shared
// CHECK: "smelt.conv2d"
// CHECK-NOT: "smelt.kernel"
// CHECK: return
func.func @conv_silu_shared(%x: tensor<1x8x10x10xf32>, %w: tensor<16x8x1x1xf32>) -> (tensor<1x16x10x10xf32>, tensor<1x16x10x10xf32>) {
  %0 = "smelt.conv2d"(%x, %w) : (tensor<1x8x10x10xf32>, tensor<16x8x1x1xf32>) -> tensor<1x16x10x10xf32>
  %1 = "smelt.sigmoid"(%0) : (tensor<1x16x10x10xf32>) -> tensor<1x16x10x10xf32>
  %2 = "smelt.mul"(%0, %1) : (tensor<1x16x10x10xf32>, tensor<1x16x10x10xf32>) -> tensor<1x16x10x10xf32>
  return %1, %2 : tensor<1x16x10x10xf32>, tensor<1x16x10x10xf32>
}
