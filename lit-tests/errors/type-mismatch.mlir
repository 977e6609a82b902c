// RUN: not %smelt-opt %s --split-input-file 2>&1 | FileCheck %s

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: type-mismatch.mlir:[[@LINE+3]]:21: error: type mismatch: '%x' has type tensor<4xf32> but 'smelt.relu' declares tensor<4xf16>
  // CHECK-NEXT: {{^}}  %0 = "smelt.relu"(%x) : (tensor<4xf16>) -> tensor<4xf16>
  // CHECK-NEXT: {{^}}                    ^
  %0 = "smelt.relu"(%x) : (tensor<4xf16>) -> tensor<4xf16>
  return %x : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: type-mismatch.mlir:[[@LINE+1]]:8: error: 'smelt.relu' op result #0 is declared tensor<5xf32> but the operands imply tensor<4xf32>
  %0 = "smelt.relu"(%x) : (tensor<4xf32>) -> tensor<5xf32>
  return %x : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: error: 'func.return' op returns (tensor<4xi64>) but the function signature says (tensor<4xf32>)
  %0 = "smelt.cast"(%x) {to = i64} : (tensor<4xf32>) -> tensor<4xi64>
  return %0 : tensor<4xi64>
}
