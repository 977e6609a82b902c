// RUN: %smelt-opt %s --fold | FileCheck %s

// CHECK-LABEL: func.func @ints
func.func @ints() -> (tensor<3xi64>, tensor<3xi64>, tensor<3xi1>) {
  // CHECK-DAG: dense<[5, 7, 9]> : tensor<3xi64>
  // CHECK-DAG: dense<[-2, -1, 0]> : tensor<3xi64>
  // CHECK-DAG: dense<[false, false, true]> : tensor<3xi1>
  %a = "smelt.constant"() {value = dense<[1, 2, 3]> : tensor<3xi64>} : () -> tensor<3xi64>
  %b = "smelt.constant"() {value = dense<[4, 5, 6]> : tensor<3xi64>} : () -> tensor<3xi64>
  %c = "smelt.constant"() {value = dense<3> : tensor<i64>} : () -> tensor<i64>
  %sum = "smelt.add"(%a, %b) : (tensor<3xi64>, tensor<3xi64>) -> tensor<3xi64>
  %diff = "smelt.sub"(%a, %c) : (tensor<3xi64>, tensor<i64>) -> tensor<3xi64>
  %eq = "smelt.equal"(%a, %c) : (tensor<3xi64>, tensor<i64>) -> tensor<3xi1>
  return %sum, %diff, %eq : tensor<3xi64>, tensor<3xi64>, tensor<3xi1>
}

// Integer division by zero is left for run time, never folded.
// CHECK-LABEL: func.func @div_zero
func.func @div_zero() -> tensor<1xi64> {
  // CHECK: "smelt.div"
  %a = "smelt.constant"() {value = dense<1> : tensor<1xi64>} : () -> tensor<1xi64>
  %z = "smelt.constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>
  %d = "smelt.div"(%a, %z) : (tensor<1xi64>, tensor<1xi64>) -> tensor<1xi64>
  return %d : tensor<1xi64>
}

// CHECK-LABEL: func.func @floats
func.func @floats() -> tensor<2xf32> {
  // CHECK-NEXT: dense<[1.5, 2.0]> : tensor<2xf32>
  %a = "smelt.constant"() {value = dense<[2.25, 4.0]> : tensor<2xf32>} : () -> tensor<2xf32>
  %s = "smelt.sqrt"(%a) : (tensor<2xf32>) -> tensor<2xf32>
  return %s : tensor<2xf32>
}
