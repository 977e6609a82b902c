// RUN: %smelt-opt %s --verify-each=false --canonicalize | FileCheck %s
// RUN: %smelt-opt %s --verify-each --canonicalize | FileCheck %s
// CHECK: return %arg0
func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "smelt.identity"(%x) : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}
