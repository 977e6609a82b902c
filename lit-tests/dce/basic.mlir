// RUN: %smelt-opt %s --dce | FileCheck %s

// CHECK-LABEL: func.func @chain
func.func @chain(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK-NEXT: return %arg0
  %0 = "smelt.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %1 = "smelt.exp"(%0) : (tensor<4xf32>) -> tensor<4xf32>
  %2 = "smelt.add"(%1, %0) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %x : tensor<4xf32>
}

// An unused kernel goes with everything inside it.
// CHECK-LABEL: func.func @kernel
func.func @kernel(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK-NOT: smelt.kernel
  // CHECK: return %arg0
  %k = "smelt.kernel"(%x) ({
  ^bb0(%a: tensor<4xf32>):
    %r = "smelt.relu"(%a) : (tensor<4xf32>) -> tensor<4xf32>
    "smelt.yield"(%r) : (tensor<4xf32>) -> ()
  }) {pattern = "relu"} : (tensor<4xf32>) -> tensor<4xf32>
  return %x : tensor<4xf32>
}
