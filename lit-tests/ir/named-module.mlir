// RUN: %smelt-opt %s | %smelt-opt | FileCheck %s

// CHECK: module @resnet attributes {smelt.source = "resnet18.onnx"} {
module @resnet attributes {smelt.source = "resnet18.onnx"} {
  // CHECK: func.func @main(%arg0: tensor<*xf32>, %arg1: tensor<?x?xbf16>) -> (tensor<*xf32>, tensor<?x?xbf16>)
  func.func @main(%x: tensor<*xf32>, %y: tensor<?x?xbf16>) -> (tensor<*xf32>, tensor<?x?xbf16>) {
    return %x, %y : tensor<*xf32>, tensor<?x?xbf16>
  }
}
