// RUN: %smelt-opt %s --pass-pipeline='builtin.module(canonicalize{max-iterations=1})' | FileCheck %s
// One worklist round already reaches the fixed point here: folding revisits users.

// CHECK-LABEL: func.func @f
func.func @f() -> tensor<2xi64> {
  // CHECK-NEXT: dense<[6, 12]>
  %a = "smelt.constant"() {value = dense<[1, 2]> : tensor<2xi64>} : () -> tensor<2xi64>
  %b = "smelt.add"(%a, %a) : (tensor<2xi64>, tensor<2xi64>) -> tensor<2xi64>
  %c = "smelt.add"(%b, %b) : (tensor<2xi64>, tensor<2xi64>) -> tensor<2xi64>
  %d = "smelt.sub"(%c, %a) : (tensor<2xi64>, tensor<2xi64>) -> tensor<2xi64>
  %e = "smelt.add"(%d, %a) : (tensor<2xi64>, tensor<2xi64>) -> tensor<2xi64>
  %f = "smelt.add"(%e, %b) : (tensor<2xi64>, tensor<2xi64>) -> tensor<2xi64>
  return %f : tensor<2xi64>
}
