// RUN: %smelt-opt %s | %smelt-opt | FileCheck %s

// CHECK: func.func @types(%arg0: tensor<1xf16>, %arg1: tensor<1xbf16>, %arg2: tensor<1xf64>, %arg3: tensor<1xi1>, %arg4: tensor<1xi8>, %arg5: tensor<1xi32>, %arg6: tensor<1xi64>, %arg7: tensor<1xui8>)
func.func @types(%a: tensor<1xf16>, %b: tensor<1xbf16>, %c: tensor<1xf64>, %d: tensor<1xi1>, %e: tensor<1xi8>, %f: tensor<1xi32>, %g: tensor<1xi64>, %h: tensor<1xui8>) {
  return
}
