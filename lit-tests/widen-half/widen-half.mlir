// RUN: %smelt-opt %s --widen-half | FileCheck %s
// Half-precision values inside a function become f32; the signature keeps its types.

// CHECK-LABEL: func.func @half_io
// CHECK-SAME: (%arg0: tensor<2x3xf16>) -> tensor<2x3xf16>
func.func @half_io(%x: tensor<2x3xf16>) -> tensor<2x3xf16> {
  // CHECK: %[[W:.*]] = "smelt.cast"(%arg0) {to = f32} : (tensor<2x3xf16>) -> tensor<2x3xf32>
  // CHECK: %[[C:.*]] = "smelt.constant"() {value = dense<[1.5, -2.0, 0.25]> : tensor<3xf32>} : () -> tensor<3xf32>
  %c = "smelt.constant"() {value = dense<[1.5, -2.0, 0.25]> : tensor<3xf16>} : () -> tensor<3xf16>
  // CHECK: %[[A:.*]] = "smelt.add"(%[[W]], %[[C]]) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %0 = "smelt.add"(%x, %c) : (tensor<2x3xf16>, tensor<3xf16>) -> tensor<2x3xf16>
  // CHECK: %[[R:.*]] = "smelt.relu"(%[[A]]) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %1 = "smelt.relu"(%0) : (tensor<2x3xf16>) -> tensor<2x3xf16>
  // CHECK: %[[N:.*]] = "smelt.cast"(%[[R]]) {to = f16} : (tensor<2x3xf32>) -> tensor<2x3xf16>
  // CHECK: return %[[N]] : tensor<2x3xf16>
  return %1 : tensor<2x3xf16>
}

// The converter's form: f32 inputs and outputs, casts to and from f16 around the body. The
// casts become f32 -> f32 (canonicalize folds them away); bf16 the same.
// CHECK-LABEL: func.func @f32_io
// CHECK-SAME: (%arg0: tensor<4xf32>) -> tensor<4xf32>
func.func @f32_io(%x: tensor<4xf32>) -> tensor<4xf32> {
  // CHECK: "smelt.cast"(%arg0) {to = f32} : (tensor<4xf32>) -> tensor<4xf32>
  %0 = "smelt.cast"(%x) {to = bf16} : (tensor<4xf32>) -> tensor<4xbf16>
  // CHECK: "smelt.sigmoid"(%{{.*}}) : (tensor<4xf32>) -> tensor<4xf32>
  %1 = "smelt.sigmoid"(%0) : (tensor<4xbf16>) -> tensor<4xbf16>
  // CHECK: "smelt.cast"(%{{.*}}) {to = f32} : (tensor<4xf32>) -> tensor<4xf32>
  %2 = "smelt.cast"(%1) {to = f32} : (tensor<4xbf16>) -> tensor<4xf32>
  // CHECK-NOT: bf16
  return %2 : tensor<4xf32>
}
