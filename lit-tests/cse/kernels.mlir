// RUN: %smelt-opt %s --cse | FileCheck %s
// CSE works inside kernel bodies but never across their isolation boundary.

// CHECK-LABEL: func.func @inside
func.func @inside(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: %0 = "smelt.exp"(%arg0)
  %outer = "smelt.exp"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK: "smelt.kernel"
  %k = "smelt.kernel"(%outer) ({
  ^bb0(%a: tensor<4xf32>):
    // CHECK: %2 = "smelt.exp"(%arg1)
    // CHECK-NEXT: %3 = "smelt.mul"(%2, %2)
    %e1 = "smelt.exp"(%a) : (tensor<4xf32>) -> tensor<4xf32>
    %e2 = "smelt.exp"(%a) : (tensor<4xf32>) -> tensor<4xf32>
    %m = "smelt.mul"(%e1, %e2) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    "smelt.yield"(%m) : (tensor<4xf32>) -> ()
  }) {pattern = "exp_mul"} : (tensor<4xf32>) -> tensor<4xf32>
  return %k : tensor<4xf32>
}
