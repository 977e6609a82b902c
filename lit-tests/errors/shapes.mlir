// RUN: %smelt-opt %s --split-input-file --verify-diagnostics

func.func @f(%a: tensor<3xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'smelt.add' op shapes do not broadcast: dimension 0 is 3 and 4}}
  %0 = "smelt.add"(%a, %b) : (tensor<3xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) -> tensor<2x5xf32> {
  // expected-error @+1 {{'smelt.matmul' op contraction dimensions differ: 3 and 4}}
  %0 = "smelt.matmul"(%a, %b) : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32>
  return %0 : tensor<2x5xf32>
}

// -----

func.func @f(%x: tensor<1x4x8x8xf32>, %w: tensor<8x3x3x3xf32>) -> tensor<1x8x6x6xf32> {
  // expected-error @+1 {{'smelt.conv2d' op input has 4 channels but weight expects 3 x 1 groups}}
  %0 = "smelt.conv2d"(%x, %w) : (tensor<1x4x8x8xf32>, tensor<8x3x3x3xf32>) -> tensor<1x8x6x6xf32>
  return %0 : tensor<1x8x6x6xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<7xf32> {
  %s = "smelt.constant"() {value = dense<7> : tensor<1xi64>} : () -> tensor<1xi64>
  // expected-error @+1 {{'smelt.reshape' op cannot reshape 6 elements into 7}}
  %0 = "smelt.reshape"(%x, %s) : (tensor<2x3xf32>, tensor<1xi64>) -> tensor<7xf32>
  return %0 : tensor<7xf32>
}

// -----

func.func @f(%x: tensor<1x3x2x2xf32>) -> tensor<1x3x1x1xf32> {
  // expected-error @+1 {{'smelt.max_pool' op window of extent 3 does not fit input extent 2 with padding 0}}
  %0 = "smelt.max_pool"(%x) {kernel_shape = array<i64: 3, 3>} : (tensor<1x3x2x2xf32>) -> tensor<1x3x1x1xf32>
  return %0 : tensor<1x3x1x1xf32>
}
