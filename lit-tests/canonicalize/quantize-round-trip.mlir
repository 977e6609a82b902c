// RUN: %smelt-opt %s --canonicalize | FileCheck %s
// A quantize-dequantize pair with one scale and zero point becomes float ops that fuse.

// CHECK-LABEL: func.func @per_tensor
func.func @per_tensor(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %s = "smelt.constant"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>
  %z = "smelt.constant"() {value = dense<10> : tensor<ui8>} : () -> tensor<ui8>
  // CHECK-DAG: %[[S:.*]] = "smelt.constant"() {value = dense<0.5> : tensor<f32>}
  // CHECK-DAG: %[[LO:.*]] = "smelt.constant"() {value = dense<-10.0> : tensor<f32>}
  // CHECK-DAG: %[[HI:.*]] = "smelt.constant"() {value = dense<245.0> : tensor<f32>}
  // CHECK: %[[D:.*]] = "smelt.div"(%arg0, %[[S]])
  // CHECK: %[[R:.*]] = "smelt.round"(%[[D]])
  // CHECK: %[[C:.*]] = "smelt.clip"(%[[R]], %[[LO]], %[[HI]])
  // CHECK: %[[Y:.*]] = "smelt.mul"(%[[C]], %[[S]])
  // CHECK-NOT: quantize
  // CHECK: return %[[Y]]
  %q = "smelt.quantize_linear"(%x, %s, %z) : (tensor<1x4xf32>, tensor<f32>, tensor<ui8>) -> tensor<1x4xui8>
  %y = "smelt.dequantize_linear"(%q, %s, %z) : (tensor<1x4xui8>, tensor<f32>, tensor<ui8>) -> tensor<1x4xf32>
  return %y : tensor<1x4xf32>
}

// Per-axis parameters keep the integer round trip.
// CHECK-LABEL: func.func @per_axis
func.func @per_axis(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %s = "smelt.constant"() {value = dense<[0.5, 0.25]> : tensor<2xf32>} : () -> tensor<2xf32>
  %z = "smelt.constant"() {value = dense<0> : tensor<2xi8>} : () -> tensor<2xi8>
  // CHECK: "smelt.quantize_linear"
  // CHECK: "smelt.dequantize_linear"
  %q = "smelt.quantize_linear"(%x, %s, %z) : (tensor<1x2xf32>, tensor<2xf32>, tensor<2xi8>) -> tensor<1x2xi8>
  %y = "smelt.dequantize_linear"(%q, %s, %z) : (tensor<1x2xi8>, tensor<2xf32>, tensor<2xi8>) -> tensor<1x2xf32>
  return %y : tensor<1x2xf32>
}
