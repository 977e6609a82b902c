// RUN: not %smelt-opt %s -split-input-file -verify-diagnostics 2>&1 | FileCheck %s
// An expectation on the wrong line fails naming both lines; a diagnostic nobody expected
// fails naming its own; chunks whose expectations hold print nothing.

func.func @f(%x: tensor<3xf32>, %y: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{shapes do not broadcast}}
  // CHECK: verify-diagnostics.mlir:[[@LINE+1]]: error: unexpected error: 'smelt.add' op shapes do not broadcast: dimension 0 is 3 and 4
  %0 = "smelt.add"(%x, %y) : (tensor<3xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
// CHECK: verify-diagnostics.mlir:6: error: expected error "shapes do not broadcast" on line 7 was not produced

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{'smelt.relu' op expects 1 results, got 2}}
  %0:2 = "smelt.relu"(%x) : (tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>)
  return %0#0 : tensor<4xf32>
}

// -----

// CHECK: verify-diagnostics.mlir:[[@LINE+1]]: error: expected warning "never said" on line 25 was not produced
// expected-warning @below {{never said}}
func.func @g(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}
// CHECK-NOT: error
