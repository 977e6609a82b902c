// RUN: %smelt-opt %s --verify-diagnostics
// A mask may broadcast to the attention scores but not grow them.

func.func @mask_grows_scores(%q: tensor<2x8x4xf32>, %kt: tensor<2x4x8xf32>, %v: tensor<2x8x4xf32>, %m: tensor<3x8x8xf32>) -> tensor<2x8x4xf32> {
  // expected-error @+1 {{'smelt.attention' op shapes do not broadcast: dimension 0 is 2 and 3}}
  %0 = "smelt.attention"(%q, %kt, %v, %m) : (tensor<2x8x4xf32>, tensor<2x4x8xf32>, tensor<2x8x4xf32>, tensor<3x8x8xf32>) -> tensor<2x8x4xf32>
  return %0 : tensor<2x8x4xf32>
}
