// RUN: %smelt-opt %s --split-input-file --verify-diagnostics

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'smelt.concat' op requires attribute 'axis'}}
  %0 = "smelt.concat"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<3x2xf32> {
  // expected-error @+1 {{'smelt.transpose' op attribute 'perm' must be an array<i64: ...>, got array}}
  %0 = "smelt.transpose"(%x) {perm = [1, 0]} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return %0 : tensor<3x2xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'smelt.relu' op has unknown attribute 'alpha'}}
  %0 = "smelt.relu"(%x) {alpha = 1.0 : f32} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<3x2xf32> {
  // expected-error @+1 {{'smelt.transpose' op `perm` [0, 0] is not a permutation of 0..2}}
  %0 = "smelt.transpose"(%x) {perm = array<i64: 0, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return %0 : tensor<3x2xf32>
}

// -----

func.func @f() -> tensor<3xi64> {
  // expected-error @+1 {{literal has 2 elements but tensor<3xi64> holds 3}}
  %0 = "smelt.constant"() {value = dense<[1, 2]> : tensor<3xi64>} : () -> tensor<3xi64>
  return %0 : tensor<3xi64>
}

// -----

// expected-error @+1 {{attribute 'a' occurs more than once}}
func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> attributes {a = 1, a = 2} {
  return %x : tensor<2xf32>
}
