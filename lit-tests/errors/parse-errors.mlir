// RUN: not %smelt-opt %s --split-input-file 2>&1 | FileCheck %s
// Malformed input: every error is located, with the source line and a caret.

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: parse-errors.mlir:[[@LINE+1]]:8: error: unknown operation 'smelt.frobnicate'
  %0 = "smelt.frobnicate"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: parse-errors.mlir:[[@LINE+1]]:21: error: use of undefined value '%y'
  %0 = "smelt.relu"(%y) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: parse-errors.mlir:[[@LINE+1]]:55: error: unknown element type 'f31'
  %0 = "smelt.relu"(%x) : (tensor<4xf32>) -> tensor<4xf31>
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "smelt.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: parse-errors.mlir:[[@LINE+1]]:3: error: redefinition of value '%0'
  %0 = "smelt.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: parse-errors.mlir:[[@LINE+2]]:1: error: expected '}' to close the region
  %0 = "smelt.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
