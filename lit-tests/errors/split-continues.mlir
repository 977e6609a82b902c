// RUN: not %smelt-opt %s --split-input-file 2>%t.err | FileCheck %s
// RUN: FileCheck %s --check-prefix=ERR < %t.err
// One bad chunk does not stop the others; the exit code still reports the failure.

// ERR: split-continues.mlir:[[@LINE+2]]:8: error: 'smelt.relu' op result #0 is declared tensor<3xf32> but the operands imply tensor<2xf32>
func.func @bad(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "smelt.relu"(%x) : (tensor<2xf32>) -> tensor<3xf32>
  return %x : tensor<2xf32>
}

// -----

// CHECK: func.func @good
func.func @good() {
  return
}
