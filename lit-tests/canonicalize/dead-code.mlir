// RUN: %smelt-opt %s --canonicalize | FileCheck %s

// CHECK-LABEL: func.func @dead
func.func @dead(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK-NOT: smelt.sigmoid
  // CHECK-NOT: smelt.exp
  // CHECK: %0 = "smelt.relu"(%arg0)
  // CHECK-NEXT: return %0
  %0 = "smelt.exp"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %1 = "smelt.sigmoid"(%0) : (tensor<4xf32>) -> tensor<4xf32>
  %2 = "smelt.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %2 : tensor<4xf32>
}
