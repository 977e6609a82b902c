// RUN: %smelt-opt %s --canonicalize | FileCheck %s
// The exporter's Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain folds to a constant
// target, and the reshape's result type becomes static.

// CHECK-LABEL: func.func @flatten_chain(%arg0: tensor<1x512x1x1xf32>) -> tensor<1x512xf32>
func.func @flatten_chain(%x: tensor<1x512x1x1xf32>) -> tensor<?x?xf32> {
  // CHECK-NEXT: %0 = "smelt.constant"() {value = dense<[1, -1]> : tensor<2xi64>}
  // CHECK-NEXT: %1 = "smelt.reshape"(%arg0, %0) : (tensor<1x512x1x1xf32>, tensor<2xi64>) -> tensor<1x512xf32>
  // CHECK-NEXT: return %1 : tensor<1x512xf32>
  %shape = "smelt.shape"(%x) : (tensor<1x512x1x1xf32>) -> tensor<4xi64>
  %zero = "smelt.constant"() {value = dense<0> : tensor<i64>} : () -> tensor<i64>
  %batch = "smelt.gather"(%shape, %zero) {axis = 0 : i64} : (tensor<4xi64>, tensor<i64>) -> tensor<i64>
  %axes = "smelt.constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>
  %b1 = "smelt.unsqueeze"(%batch, %axes) : (tensor<i64>, tensor<1xi64>) -> tensor<1xi64>
  %minus = "smelt.constant"() {value = dense<-1> : tensor<1xi64>} : () -> tensor<1xi64>
  %target = "smelt.concat"(%b1, %minus) {axis = 0 : i64} : (tensor<1xi64>, tensor<1xi64>) -> tensor<2xi64>
  %r = "smelt.reshape"(%x, %target) : (tensor<1x512x1x1xf32>, tensor<2xi64>) -> tensor<?x?xf32>
  return %r : tensor<?x?xf32>
}
