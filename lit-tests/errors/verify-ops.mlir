// RUN: %smelt-opt %s --split-input-file --verify-diagnostics
// Op-specific verifiers.

func.func @f(%x: tensor<4xf32>, %lo: tensor<2xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'smelt.clip' op `min` must be a one-element tensor of f32, got tensor<2xf32>}}
  %0 = "smelt.clip"(%x, %lo) : (tensor<4xf32>, tensor<2xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%c: tensor<4xf32>, %x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'smelt.where' op condition must be a tensor of i1, got f32}}
  %0 = "smelt.where"(%c, %x, %x) : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<6xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %s = "smelt.constant"() {value = dense<[4, 4]> : tensor<2xi64>} : () -> tensor<2xi64>
  // expected-error @+1 {{'smelt.split' op split sizes [4, 4] do not add up to 6}}
  %0:2 = "smelt.split"(%x, %s) : (tensor<6xf32>, tensor<2xi64>) -> (tensor<4xf32>, tensor<4xf32>)
  return %0#0, %0#1 : tensor<4xf32>, tensor<4xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>, %i: tensor<2xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'smelt.gather' op indices must be integers, got f32}}
  %0 = "smelt.gather"(%x, %i) : (tensor<2x3xf32>, tensor<2xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'smelt.softmax' op axis 2 is out of range for rank 2}}
  %0 = "smelt.softmax"(%x) {axis = 2 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f() -> tensor<4xf32> {
  // expected-error @+1 {{'smelt.constant' op constant type tensor<?xf32> must be static}}
  %0 = "smelt.constant"() {value = dense_resource<w> : tensor<?xf32>} : () -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>, %y: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'smelt.mod' op a floating-point remainder needs `fmod = 1` (as ONNX requires)}}
  %0 = "smelt.mod"(%x, %y) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{'smelt.lrn' op expects an input of rank 3 or more (N, C, spatial...), got rank 2}}
  %0 = "smelt.lrn"(%x) {size = 3 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}

// -----

func.func @f(%x: tensor<1x4x2xf32>) -> tensor<1x4x2xf32> {
  // expected-error @+1 {{'smelt.lrn' op `size` must be at least 1, got 0}}
  %0 = "smelt.lrn"(%x) {size = 0 : i64} : (tensor<1x4x2xf32>) -> tensor<1x4x2xf32>
  return %0 : tensor<1x4x2xf32>
}

// -----

func.func @f(%x: tensor<1x6x2x2xf32>, %s: tensor<6xf32>) -> tensor<1x6x2x2xf32> {
  // expected-error @+1 {{'smelt.group_norm' op `num_groups` 4 must be positive and divide the 6 channels}}
  %0 = "smelt.group_norm"(%x, %s, %s) {num_groups = 4 : i64} : (tensor<1x6x2x2xf32>, tensor<6xf32>, tensor<6xf32>) -> tensor<1x6x2x2xf32>
  return %0 : tensor<1x6x2x2xf32>
}
