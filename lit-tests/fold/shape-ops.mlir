// RUN: %smelt-opt %s --fold | FileCheck %s

// CHECK-LABEL: func.func @shape_slices
func.func @shape_slices(%x: tensor<2x3x5x7xf32>) -> (tensor<2xi64>, tensor<4xi64>) {
  // CHECK-DAG: dense<[3, 5]> : tensor<2xi64>
  // CHECK-DAG: dense<[7, 5, 3, 2]> : tensor<4xi64>
  %part = "smelt.shape"(%x) {start = 1 : i64, end = -1 : i64} : (tensor<2x3x5x7xf32>) -> tensor<2xi64>
  %all = "smelt.shape"(%x) : (tensor<2x3x5x7xf32>) -> tensor<4xi64>
  %st = "smelt.constant"() {value = dense<-1> : tensor<1xi64>} : () -> tensor<1xi64>
  %en = "smelt.constant"() {value = dense<-9223372036854775807> : tensor<1xi64>} : () -> tensor<1xi64>
  %ax = "smelt.constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>
  %sp = "smelt.constant"() {value = dense<-1> : tensor<1xi64>} : () -> tensor<1xi64>
  %rev = "smelt.slice"(%all, %st, %en, %ax, %sp) : (tensor<4xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<4xi64>
  return %part, %rev : tensor<2xi64>, tensor<4xi64>
}

// CHECK-LABEL: func.func @generators
func.func @generators() -> (tensor<4xi64>, tensor<2x3xf32>, tensor<2x3xi64>) {
  // CHECK-DAG: dense<[0, 3, 6, 9]> : tensor<4xi64>
  // CHECK-DAG: dense<1.0> : tensor<2x3xf32>
  // CHECK-DAG: dense<{{\[\[}}7, 7, 7], [8, 8, 8]]> : tensor<2x3xi64>
  %s = "smelt.constant"() {value = dense<0> : tensor<i64>} : () -> tensor<i64>
  %l = "smelt.constant"() {value = dense<10> : tensor<i64>} : () -> tensor<i64>
  %d = "smelt.constant"() {value = dense<3> : tensor<i64>} : () -> tensor<i64>
  %r = "smelt.range"(%s, %l, %d) : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<4xi64>
  %shape = "smelt.constant"() {value = dense<[2, 3]> : tensor<2xi64>} : () -> tensor<2xi64>
  %ones = "smelt.constant_of_shape"(%shape) {value = dense<1.0> : tensor<1xf32>} : (tensor<2xi64>) -> tensor<2x3xf32>
  %col = "smelt.constant"() {value = dense<[[7], [8]]> : tensor<2x1xi64>} : () -> tensor<2x1xi64>
  %e = "smelt.expand"(%col, %shape) : (tensor<2x1xi64>, tensor<2xi64>) -> tensor<2x3xi64>
  return %r, %ones, %e : tensor<4xi64>, tensor<2x3xf32>, tensor<2x3xi64>
}

// CHECK-LABEL: func.func @where_cast
func.func @where_cast() -> tensor<3xf32> {
  // CHECK-NEXT: dense<[1.0, 20.0, 3.0]> : tensor<3xf32>
  %c = "smelt.constant"() {value = dense<[true, false, true]> : tensor<3xi1>} : () -> tensor<3xi1>
  %a = "smelt.constant"() {value = dense<[1, 2, 3]> : tensor<3xi64>} : () -> tensor<3xi64>
  %b = "smelt.constant"() {value = dense<[10, 20, 30]> : tensor<3xi64>} : () -> tensor<3xi64>
  %w = "smelt.where"(%c, %a, %b) : (tensor<3xi1>, tensor<3xi64>, tensor<3xi64>) -> tensor<3xi64>
  %f = "smelt.cast"(%w) {to = f32} : (tensor<3xi64>) -> tensor<3xf32>
  %m = "smelt.constant"() {value = dense<[1.0, 1.0, 1.0]> : tensor<3xf32>} : () -> tensor<3xf32>
  %out = "smelt.mul"(%f, %m) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  return %out : tensor<3xf32>
}
